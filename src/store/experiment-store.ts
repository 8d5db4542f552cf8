import type { Redis } from 'ioredis';
import type {
  EarlyTermination,
  Experiment,
  ExperimentMetric,
  ExperimentRun,
  ExperimentSummary,
  GridValue,
} from '../contract/experiment.ts';
import { finalStates, jobStates, type EpochSummary, type JobState, type JobSummary } from '../contract/job.ts';
import type { WebhookDelivery, WebhookRequest } from '../contract/webhook.ts';
import { ExperimentKeys, JobKeys } from './keys.ts';
import { indexPage } from './pages.ts';
import { decodeSummary, decodeWebhook, encodeFields } from './records.ts';
import { defineScripts, runScript } from './scripts.ts';
import { appendWebhookDelivery, readWebhookTarget, type WebhookRecords, type WebhookTarget } from './webhook-record.ts';

/** What an experiment is created with; its runs' jobs already exist. */
export interface NewExperiment {
  readonly name: string | null;
  readonly base: Readonly<Record<string, unknown>>;
  readonly grid: Readonly<Record<string, readonly GridValue[]>>;
  readonly metric: ExperimentMetric;
  readonly earlyTermination: EarlyTermination | null;
  /** One per combination, in grid order: its job and the values the grid gave it. */
  readonly runs: readonly { readonly id: string; readonly values: Readonly<Record<string, GridValue>> }[];
  readonly createdAt: Date;
  /** The client that created it; undefined without API keys. */
  readonly owner?: string;
  /** Called once every run has ended (webhooks/). */
  readonly webhook?: WebhookRequest;
}

/**
 * Experiments' records in Redis, beside the jobs they group: what was asked (base, grid, metric)
 * and which job each run is. Their runs' states, progress and results are read from the jobs
 * themselves whenever an experiment is read, so there is nothing to keep in step; a run whose job
 * was deleted is left out.
 */
export class ExperimentStore implements WebhookRecords {
  readonly keys: ExperimentKeys;
  private readonly jobKeys: JobKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new ExperimentKeys(prefix);
    this.jobKeys = new JobKeys(prefix);
    defineScripts(redis);
  }

  async create(id: string, experiment: NewExperiment): Promise<void> {
    const fields = encodeFields({
      name: experiment.name ?? '',
      owner: experiment.owner ?? '',
      base: experiment.base,
      grid: experiment.grid,
      metric: experiment.metric,
      earlyTermination: experiment.earlyTermination,
      runs: experiment.runs,
      createdAt: experiment.createdAt.toISOString(),
      ...(experiment.webhook
        ? { webhookUrl: experiment.webhook.url, webhookSecret: experiment.webhook.secret, webhookDeliveries: [] }
        : {}),
    });
    const keys = [
      this.keys.sequence(),
      this.keys.experiment(id),
      this.keys.index(),
      ...(experiment.owner === undefined ? [] : [this.keys.index(experiment.owner)]),
    ];
    await runScript(this.redis, 'createExperiment', keys, [id, JSON.stringify(fields)]);
  }

  /**
   * Deletes the experiment's record and its entries in the lists, in one step; its runs' jobs are
   * deleted before, one by one (DELETE /experiments/:id). False when there was no such experiment.
   */
  async remove(id: string): Promise<boolean> {
    const owner = await this.redis.hget(this.keys.experiment(id), 'owner');
    if (owner === null) {
      // No record: an index entry left without one would be read by every sweep; it goes too.
      await this.redis.zrem(this.keys.index(), id);
      return false;
    }
    const removing = this.redis.multi().del(this.keys.experiment(id)).zrem(this.keys.index(), id);
    if (owner !== '') removing.zrem(this.keys.index(owner), id);
    const replies = await removing.exec();
    return replies?.[0]?.[1] === 1;
  }

  /**
   * Experiments created before `before` none of whose runs exists any more (their jobs deleted
   * or swept), of the next `limit` in creation order after the sequence number `after`; `next`
   * continues, null once an experiment created since `before` (or the end) was reached.
   */
  async emptyCreatedBefore(
    before: Date,
    options: { after: number; limit: number },
  ): Promise<{ empty: string[]; next: number | null }> {
    const page = await this.redis.zrangebyscore(
      this.keys.index(),
      `(${options.after}`,
      '+inf',
      'WITHSCORES',
      'LIMIT',
      0,
      options.limit,
    );
    const empty: string[] = [];
    for (let i = 0; i < page.length; i += 2) {
      const id = page[i] as string;
      const [createdAt, runs] = await this.redis.hmget(this.keys.experiment(id), 'createdAt', 'runs');
      if (createdAt && Date.parse(createdAt) >= before.getTime()) return { empty, next: null };
      const planned = parseRuns(runs);
      const existing =
        planned.length === 0 ? 0 : await this.redis.exists(...planned.map((run) => this.jobKeys.job(run.id)));
      if (existing === 0) empty.push(id);
    }
    return { empty, next: page.length < options.limit * 2 ? null : Number(page.at(-1)) };
  }

  /** The experiment's rule for stopping weak runs and the metric it judges by; null when it has no rule (or there is no such experiment). */
  async earlyTermination(id: string): Promise<{ rule: EarlyTermination; metric: ExperimentMetric } | null> {
    const [rule, metric] = await this.redis.hmget(this.keys.experiment(id), 'earlyTermination', 'metric');
    const parsed = parseRule(rule);
    return parsed ? { rule: parsed, metric: parseMetric(metric) } : null;
  }

  /** The summary of epoch `epoch` of each run that has reached it: what a rung is judged by. */
  async rungSummaries(id: string, epoch: number): Promise<EpochSummary[]> {
    const runs = await this.redis.hget(this.keys.experiment(id), 'runs');
    const planned = parseRuns(runs);
    const entries = await Promise.all(
      planned.map(({ id: jobId }) => this.redis.lindex(this.jobKeys.epochs(jobId), epoch - 1)),
    );
    return entries.flatMap((entry) => (entry === null ? [] : [JSON.parse(entry) as EpochSummary]));
  }

  /** The experiment's webhook with its secret and deliveries so far; null when it has none (or is unknown). */
  async webhookTarget(id: string): Promise<WebhookTarget | null> {
    return readWebhookTarget(this.redis, this.keys.experiment(id));
  }

  async recordWebhookDelivery(id: string, delivery: WebhookDelivery): Promise<boolean> {
    return appendWebhookDelivery(this.redis, this.keys.experiment(id), delivery);
  }

  /** The client that created it ('' for none), or null when there is no such experiment. */
  async owner(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.experiment(id), 'owner');
  }

  async get(id: string): Promise<Experiment | null> {
    const record = await this.redis.hgetall(this.keys.experiment(id));
    return record.id ? this.assemble(record) : null;
  }

  /** Newest first; `cursor` is the sequence number to continue below; with `owner`, that client's only. */
  async list(options: {
    limit: number;
    cursor?: string;
    owner?: string;
  }): Promise<{ experiments: ExperimentSummary[]; next: string | null }> {
    const { ids, next } = await indexPage(this.redis, this.keys.index(options.owner), options.limit, options.cursor);
    const found = await Promise.all(ids.map((id) => this.get(id)));
    const experiments = found
      .filter((experiment): experiment is Experiment => experiment !== null)
      .map(({ runs: _runs, ...summary }) => summary);
    return { experiments, next };
  }

  private async assemble(record: Record<string, string>): Promise<Experiment> {
    const planned = parseRuns(record.runs);
    const jobs = await Promise.all(
      planned.map(async ({ id }) => decodeSummary(await this.redis.hgetall(this.jobKeys.job(id)))),
    );
    const runs = planned.flatMap(({ id, values }, index): ExperimentRun[] => {
      const job: JobSummary | null | undefined = jobs[index];
      return job ? [{ id, values: { ...values }, state: job.state, progress: job.progress, result: job.result }] : [];
    });
    const metric = parseMetric(record.metric);
    const counts = Object.fromEntries(
      jobStates.map((state) => [state, runs.filter((run) => run.state === state).length]),
    ) as Record<JobState, number>;
    return {
      id: record.id ?? '',
      name: record.name || null,
      base: JSON.parse(record.base ?? '{}') as Record<string, unknown>,
      grid: JSON.parse(record.grid ?? '{}') as Record<string, GridValue[]>,
      metric,
      earlyTermination: parseRule(record.earlyTermination),
      createdAt: record.createdAt ?? '',
      runs,
      counts,
      ended: runs.every((run) => finalStates.includes(run.state)),
      best: bestRun(runs, metric),
      ...(record.webhookUrl ? { webhook: decodeWebhook(record.webhookUrl, record.webhookDeliveries) } : {}),
    };
  }
}

/** The record's runs field: each run's job id and the values the grid gave it. */
function parseRuns(field: string | null | undefined): NewExperiment['runs'] {
  return JSON.parse(field ?? '[]') as NewExperiment['runs'];
}

function parseMetric(field: string | null | undefined): ExperimentMetric {
  return field === 'testLoss' ? 'testLoss' : 'testAccuracy';
}

function parseRule(field: string | null | undefined): EarlyTermination | null {
  return field ? (JSON.parse(field) as EarlyTermination | null) : null;
}

/** The completed run with the highest test accuracy or the lowest test loss; of equals, the first in grid order. */
function bestRun(runs: readonly ExperimentRun[], metric: ExperimentMetric): ExperimentRun | null {
  const better = (a: number, b: number) => (metric === 'testAccuracy' ? a > b : a < b);
  let best: ExperimentRun | null = null;
  for (const run of runs) {
    if (run.state !== 'completed' || !run.result) continue;
    if (!best?.result || better(run.result[metric], best.result[metric])) best = run;
  }
  return best;
}
