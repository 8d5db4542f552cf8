import type { Redis } from 'ioredis';
import {
  finalStates,
  jobStates,
  type EpochSummary,
  type Job,
  type JobProgress,
  type JobState,
  type JobSummary,
  type LossLogLine,
} from '../contract/job.ts';
import type { RewindEvent } from '../contract/events.ts';
import type { JobSettings } from '../contract/job-request.ts';
import type { WebhookDelivery, WebhookRequest } from '../contract/webhook.ts';
import { EventLog } from './event-log.ts';
import { JobKeys } from './keys.ts';
import { JobLifecycle } from './lifecycle.ts';
import { indexPage } from './pages.ts';
import { decodeEntries, decodeSummary, parseState } from './records.ts';
import { defineScripts, runScript } from './scripts.ts';
import { appendWebhookDelivery, readWebhookTarget, type WebhookRecords, type WebhookTarget } from './webhook-record.ts';

/** `full`: too many jobs queued or running in all; `ownerFull`: too many of the owner's. */
export type CreateOutcome = 'created' | 'full' | 'ownerFull';

/** Most jobs queued or running at once: in all, and of one owner. */
export interface ActiveJobLimits {
  readonly total: number;
  readonly perOwner: number;
}

const unlimited: ActiveJobLimits = { total: Number.MAX_SAFE_INTEGER, perOwner: Number.MAX_SAFE_INTEGER };

/** Jobs' records, progress, loss logs and results in Redis: the one place API and workers share. */
export class JobStore implements WebhookRecords {
  /** The names of the Redis keys this store uses. */
  readonly keys: JobKeys;
  /** The job event streams and the stream of ended jobs that this store's writes append to. */
  readonly events: EventLog;
  /** The verbs that change a job's state (start, cancel, handBack, complete, fail, giveUp). */
  readonly lifecycle: JobLifecycle;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new JobKeys(prefix);
    defineScripts(redis);
    this.events = new EventLog(redis, this.keys);
    this.lifecycle = new JobLifecycle(redis, this.keys);
  }

  /**
   * Deletes an ended job's record, history, event stream and index entries, in one step (see
   * scripts/remove.lua); a queued or running job is left as it is and its state answered (null:
   * no such job). Its files (model, checkpoint) are the caller's: see api/job-removal.ts.
   */
  async remove(id: string): Promise<{ ok: true; state: JobState } | { ok: false; current: JobState | null }> {
    return this.removeIn(id, finalStates);
  }

  /**
   * Deletes a job that was recorded but never queued (a run of an experiment refused as a whole):
   * only while it is still queued, which no worker can have changed, since no worker has seen it.
   */
  async discardUnqueued(id: string): Promise<boolean> {
    return (await this.removeIn(id, ['queued'])).ok;
  }

  private async removeIn(
    id: string,
    states: readonly JobState[],
  ): Promise<{ ok: true; state: JobState } | { ok: false; current: JobState | null }> {
    const reply = (await runScript(
      this.redis,
      'remove',
      [this.keys.job(id), this.keys.finished(), ...this.keys.ofJob(id)],
      [this.keys.indexPrefix(), id, JSON.stringify(states)],
    )) as [number, string];
    const state = parseState(reply[1]);
    return reply[0] === 1 && state ? { ok: true, state } : { ok: false, current: state };
  }

  /** Ended jobs that ended before `before`, oldest first, at most `count`. */
  async endedBefore(before: Date, count: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.finished(), '-inf', `(${before.getTime()}`, 'LIMIT', 0, count);
  }

  /**
   * Records a new, queued job, unless `limits` are reached. `owner` (an opaque client id, e.g. a
   * hash of its API key; never the key itself) puts it in that client's indexes too, for
   * owner-aware lists, counts and limits. `experimentId`: the experiment it is a run of;
   * `webhook`: called when the job ends (see webhooks/).
   */
  async create(
    id: string,
    request: JobSettings,
    progress: JobProgress,
    createdAt: Date,
    owner?: string,
    limits: ActiveJobLimits = unlimited,
    experimentId?: string,
    webhook?: WebhookRequest,
  ): Promise<CreateOutcome> {
    const ownerKeys =
      owner === undefined ? [] : (['all', 'queued', 'running'] as const).map((state) => this.keys.index(state, owner));
    const keys = [
      this.keys.sequence(),
      this.keys.job(id),
      this.keys.events(id),
      ...(['all', 'queued', 'running'] as const).map((state) => this.keys.index(state)),
      ...ownerKeys,
    ];
    const event = JSON.stringify({ at: createdAt.toISOString(), state: 'queued', previous: null });
    const reply = await runScript(this.redis, 'create', keys, [
      id,
      JSON.stringify(request),
      JSON.stringify(progress),
      createdAt.toISOString(),
      owner ?? '',
      String(limits.total),
      String(limits.perOwner),
      event,
      experimentId ?? '',
      webhook?.url ?? '',
      webhook?.secret ?? '',
    ]);
    if (reply !== 'created' && reply !== 'full' && reply !== 'ownerFull')
      throw new Error(`unexpected reply to job creation: ${String(reply)}`);
    return reply;
  }

  /** The job's webhook with its secret and deliveries so far, for whoever delivers it; null when the job has none (or is unknown). */
  async webhookTarget(id: string): Promise<WebhookTarget | null> {
    return readWebhookTarget(this.redis, this.keys.job(id));
  }

  /** Adds a delivery attempt to the job's webhook: false when the job (or its webhook) is gone. */
  async recordWebhookDelivery(id: string, delivery: WebhookDelivery): Promise<boolean> {
    return appendWebhookDelivery(this.redis, this.keys.job(id), delivery);
  }

  /** The experiment the job is a run of; null for a job on its own (or unknown). */
  async experimentOf(id: string): Promise<string | null> {
    return (await this.redis.hget(this.keys.job(id), 'experimentId')) || null;
  }

  /** The client that created the job, or null for a job created without one (or unknown). */
  async owner(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.job(id), 'owner');
  }

  /** How many jobs are queued or running: in all, or (with `owner`) of that client. */
  async activeCount(owner?: string): Promise<number> {
    const [queued, running] = await Promise.all([
      this.redis.zcard(this.keys.index('queued', owner)),
      this.redis.zcard(this.keys.index('running', owner)),
    ]);
    return queued + running;
  }

  /** The ids of every job in `state`, oldest first. */
  async idsIn(state: JobState): Promise<string[]> {
    return this.redis.zrange(this.keys.index(state), '0', '-1');
  }

  async state(id: string): Promise<JobState | null> {
    return parseState(await this.redis.hget(this.keys.job(id), 'state'));
  }

  /** The job's state and its current attempt (0 before it first ran). */
  async stateAndAttempt(id: string): Promise<{ state: JobState | null; attempt: number }> {
    const [state, attempt] = await this.redis.hmget(this.keys.job(id), 'state', 'attempt');
    return { state: parseState(state), attempt: Number(attempt ?? 0) };
  }

  /** The writes below take effect only while the job is queued or running, and with `attempt`, only while that is its attempt: true when written. */
  async setProgress(id: string, progress: JobProgress, attempt?: number): Promise<boolean> {
    return this.append(
      id,
      this.keys.job(id),
      '',
      progress,
      'progress',
      { at: new Date().toISOString(), progress },
      attempt,
    );
  }

  async appendLog(id: string, line: LossLogLine, progress: JobProgress, attempt?: number): Promise<boolean> {
    return this.append(
      id,
      this.keys.logs(id),
      JSON.stringify(line),
      progress,
      'log',
      { at: new Date().toISOString(), line, progress },
      attempt,
    );
  }

  async appendEpoch(id: string, summary: EpochSummary, progress: JobProgress, attempt?: number): Promise<boolean> {
    return this.append(
      id,
      this.keys.epochs(id),
      JSON.stringify(summary),
      progress,
      'epoch',
      { at: new Date().toISOString(), summary, progress },
      attempt,
    );
  }

  /** One script, so a reader never sees a log line without the progress and the event that came with it. */
  private async append(
    id: string,
    listKey: string,
    entry: string,
    progress: JobProgress,
    type: string,
    event: unknown,
    attempt: number | undefined,
  ): Promise<boolean> {
    const written = await runScript(
      this.redis,
      'append',
      [this.keys.job(id), listKey, this.keys.events(id)],
      [entry, JSON.stringify(progress), type, JSON.stringify(event), attempt === undefined ? '' : String(attempt)],
    );
    return written === 1;
  }

  /** A job's summary and epochs, without its loss log (which can be long): what /metrics observes of an ended job. */
  async summaryWithEpochs(id: string): Promise<{ job: JobSummary; epochs: EpochSummary[] } | null> {
    const [record, epochs] = await Promise.all([
      this.redis.hgetall(this.keys.job(id)),
      this.redis.lrange(this.keys.epochs(id), 0, -1),
    ]);
    const job = decodeSummary(record);
    return job ? { job, epochs: decodeEntries<EpochSummary>(epochs) } : null;
  }

  /** How many jobs are in each state, from the per-state indexes. */
  async countByState(): Promise<Record<JobState, number>> {
    const pipeline = this.redis.pipeline();
    for (const state of jobStates) pipeline.zcard(this.keys.index(state));
    const replies = (await pipeline.exec()) ?? [];
    return Object.fromEntries(
      jobStates.map((state, index) => {
        const [error, count] = replies[index] ?? [new Error('no reply'), 0];
        if (error) throw error;
        return [state, Number(count)];
      }),
    ) as Record<JobState, number>;
  }

  /**
   * Forgets what an earlier attempt logged after the point the job goes on from: its checkpoint
   * (`logLines` log lines and `epochs` epochs kept) or the start (0 and 0). Only while it runs.
   */
  async rewind(
    id: string,
    kept: { logLines: number; epochs: number },
    progress: JobProgress,
    attempt?: number,
  ): Promise<boolean> {
    const event: RewindEvent = { at: new Date().toISOString(), ...kept, progress };
    const written = await runScript(
      this.redis,
      'rewind',
      [this.keys.job(id), this.keys.logs(id), this.keys.epochs(id), this.keys.events(id)],
      [
        String(kept.logLines),
        String(kept.epochs),
        JSON.stringify(progress),
        JSON.stringify(event),
        attempt === undefined ? '' : String(attempt),
      ],
    );
    return written === 1;
  }

  async get(id: string): Promise<Job | null> {
    const [record, logs, epochs] = await Promise.all([
      this.redis.hgetall(this.keys.job(id)),
      this.redis.lrange(this.keys.logs(id), 0, -1),
      this.redis.lrange(this.keys.epochs(id), 0, -1),
    ]);
    const summary = decodeSummary(record);
    if (!summary) return null;
    return {
      ...summary,
      logs: decodeEntries<LossLogLine>(logs),
      epochs: decodeEntries<EpochSummary>(epochs),
    };
  }

  /** Newest first; `cursor` is the sequence number to continue below; with `owner`, that client's jobs only. */
  async list(options: {
    state?: JobState;
    limit: number;
    cursor?: string;
    owner?: string;
  }): Promise<{ jobs: JobSummary[]; next: string | null }> {
    const { ids, next } = await indexPage(
      this.redis,
      this.keys.index(options.state ?? 'all', options.owner),
      options.limit,
      options.cursor,
    );
    const records = await Promise.all(ids.map((id) => this.redis.hgetall(this.keys.job(id))));
    const jobs = records.map(decodeSummary).filter((job): job is JobSummary => job !== null);
    return { jobs, next };
  }
}
