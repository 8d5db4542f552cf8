import type { Redis } from 'ioredis';
import {
  finalStates,
  jobStates,
  type EpochSummary,
  type Job,
  type JobProgress,
  type JobResult,
  type JobState,
  type JobSummary,
  type LossLogLine,
} from '../contract/job.ts';
import type { RewindEvent } from '../contract/events.ts';
import type { JobSettings } from '../contract/job-request.ts';
import { EventLog } from './event-log.ts';
import { JobKeys } from './keys.ts';
import { decodeEntries, decodeSummary, encodeFields, parseState } from './records.ts';

/** The fields a state change may set besides the state itself. */
interface TransitionFields {
  startedAt?: string;
  finishedAt?: string;
  result?: JobResult;
  error?: { message: string };
  progress?: JobProgress;
}

/** `attempt`: the job's run number after the change (it counts up each time the job starts running). */
export type TransitionOutcome = { ok: true; previous: JobState; attempt: number } | { ok: false; current: JobState | null };

/** Entries kept in the stream of ended jobs: /metrics reads it at every scrape, so it need not be long. */
const endedStreamLength = 10_000;

/**
 * Moves a job between states atomically: the state only changes when it is one of the allowed
 * ones, so a cancel and a completion racing each other can't both win, and the per-state indexes
 * that GET /jobs?state= reads always agree with the job's own record.
 *
 * The same script appends the `state` event to the job's event stream (and, for a final state,
 * the `end` event, and the job's id to the stream of ended jobs that /metrics reads), so a client
 * of GET /jobs/:id/events sees exactly the state changes the record went through, in order.
 * The state event's JSON is put together here because `previous` is only known here; every part
 * of it is a state name or an ISO time, which need no escaping.
 *
 * Every start of a run (a change to `running`) counts up the job's `attempt`; a change asked for
 * with an attempt happens only while that is still the job's attempt, so a worker that lost its
 * job to another (it stopped answering, and the queue handed the job on) can't end it any more.
 *
 * KEYS: the job's hash, its event stream, the stream of ended jobs.
 * ARGV: allowed states (JSON), target, fields (JSON), index prefix, id, event time, end event data
 * ('' unless final), the attempt required ('' for any).
 */
const transitionScript = `
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return {0, ''} end
local allowed = cjson.decode(ARGV[1])
local permitted = false
for _, state in ipairs(allowed) do
  if state == current then permitted = true end
end
if not permitted then return {0, current} end
if ARGV[8] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[8] then return {0, current} end
local target = ARGV[2]
local fields = cjson.decode(ARGV[3])
for name, value in pairs(fields) do redis.call('HSET', KEYS[1], name, value) end
redis.call('HSET', KEYS[1], 'state', target)
local sequence = redis.call('HGET', KEYS[1], 'sequence')
local prefix = ARGV[4]
redis.call('ZREM', prefix .. current, ARGV[5])
redis.call('ZADD', prefix .. target, sequence, ARGV[5])
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then
  redis.call('ZREM', prefix .. 'owner:' .. owner .. ':' .. current, ARGV[5])
  redis.call('ZADD', prefix .. 'owner:' .. owner .. ':' .. target, sequence, ARGV[5])
end
redis.call('XADD', KEYS[2], '*', 'type', 'state', 'data',
  '{"at":"' .. ARGV[6] .. '","state":"' .. target .. '","previous":"' .. current .. '"}')
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'type', 'end', 'data', ARGV[7])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '${endedStreamLength}', '*', 'id', ARGV[5], 'state', target)
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if target == 'running' then attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1) end
return {1, current, attempt}
`;

/**
 * Appends a log line or an epoch summary (or nothing, for a plain progress update), sets the
 * progress and appends the event that reports them, all at once. A job that has ended (or is
 * unknown) takes nothing: its event stream ends with its `end` event, and a worker that finishes
 * a batch after its job was cancelled doesn't add to a history that is over. Nor does a run that
 * another worker has taken over (its attempt is no longer the job's).
 *
 * KEYS: the job's hash, its list (logs or epochs; unused for progress), its event stream.
 * ARGV: the list entry ('' for none), progress (JSON), event type, event data (JSON), the attempt required ('' for any).
 */
const appendScript = `
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[5] then return 0 end
if ARGV[1] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
redis.call('XADD', KEYS[3], '*', 'type', ARGV[3], 'data', ARGV[4])
return 1
`;

/**
 * Cuts a running job's history back to what its checkpoint had seen (the first `logs` log lines
 * and `epochs` epochs; 0 and 0 for a restart from scratch), sets its progress and appends the
 * `rewind` event, all at once, so no reader sees an epoch twice.
 *
 * KEYS: the job's hash, its logs, its epochs, its event stream.
 * ARGV: log lines kept, epochs kept, progress (JSON), event data (JSON), the attempt required ('' for any).
 */
const rewindScript = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[5] then return 0 end
local kept = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for index, key in ipairs({KEYS[2], KEYS[3]}) do
  if kept[index] == 0 then redis.call('DEL', key) else redis.call('LTRIM', key, 0, kept[index] - 1) end
end
redis.call('HSET', KEYS[1], 'progress', ARGV[3])
redis.call('XADD', KEYS[4], '*', 'type', 'rewind', 'data', ARGV[4])
return 1
`;

/**
 * Records a new, queued job unless that would put more jobs queued or running than allowed, in
 * all or of its owner: counted and created in one step, so requests arriving together can't
 * overshoot a limit.
 *
 * KEYS: the sequence counter, the job's hash, its event stream, then the 'all', 'queued' and
 * 'running' indexes, then the owner's 'all', 'queued' and 'running' indexes (absent without owner).
 * ARGV: id, request (JSON), progress (JSON), createdAt, owner ('' for none), most active jobs,
 * most active jobs of the owner, the creation event's data.
 */
const createScript = `
local function active(queued, running) return redis.call('ZCARD', queued) + redis.call('ZCARD', running) end
local owner = ARGV[5]
if owner ~= '' and active(KEYS[8], KEYS[9]) >= tonumber(ARGV[7]) then return 'ownerFull' end
if active(KEYS[5], KEYS[6]) >= tonumber(ARGV[6]) then return 'full' end
local sequence = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'state', 'queued', 'sequence', sequence, 'request', ARGV[2], 'progress', ARGV[3], 'createdAt', ARGV[4])
redis.call('ZADD', KEYS[4], sequence, ARGV[1])
redis.call('ZADD', KEYS[5], sequence, ARGV[1])
if owner ~= '' then
  redis.call('HSET', KEYS[2], 'owner', owner)
  redis.call('ZADD', KEYS[7], sequence, ARGV[1])
  redis.call('ZADD', KEYS[8], sequence, ARGV[1])
end
redis.call('XADD', KEYS[3], '*', 'type', 'state', 'data', ARGV[8])
return 'created'
`;

/** `full`: too many jobs queued or running in all; `ownerFull`: too many of the owner's. */
export type CreateOutcome = 'created' | 'full' | 'ownerFull';

/** Most jobs queued or running at once: in all, and of one owner. */
export interface ActiveJobLimits {
  readonly total: number;
  readonly perOwner: number;
}

const unlimited: ActiveJobLimits = { total: Number.MAX_SAFE_INTEGER, perOwner: Number.MAX_SAFE_INTEGER };

/** Jobs' records, progress, loss logs and results in Redis: the one place API and workers share. */
export class JobStore {
  /** The names of the Redis keys this store uses. */
  readonly keys: JobKeys;
  /** The job event streams and the stream of ended jobs that this store's writes append to. */
  readonly events: EventLog;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new JobKeys(prefix);
    this.events = new EventLog(redis, this.keys);
    redis.defineCommand('trainerTransition', { numberOfKeys: 3, lua: transitionScript });
    redis.defineCommand('trainerAppend', { numberOfKeys: 3, lua: appendScript });
    redis.defineCommand('trainerRewind', { numberOfKeys: 4, lua: rewindScript });
    // The number of keys varies (with or without an owner): given first on each call.
    redis.defineCommand('trainerCreate', { lua: createScript });
  }

  /** Deletes the job: its record, history and event stream, and its place in the indexes. */
  async remove(id: string): Promise<void> {
    const owner = (await this.redis.hget(this.keys.job(id), 'owner')) ?? undefined;
    const transaction = this.redis.multi().del(...this.keys.ofJob(id));
    for (const state of ['all', ...jobStates] as const) {
      transaction.zrem(this.keys.index(state), id);
      if (owner !== undefined) transaction.zrem(this.keys.index(state, owner), id);
    }
    await transaction.exec();
  }

  /**
   * Records a new, queued job, unless `limits` are reached. `owner` (an opaque client id, e.g. a
   * hash of its API key; never the key itself) puts it in that client's indexes too, for
   * owner-aware lists, counts and limits.
   */
  async create(
    id: string,
    request: JobSettings,
    progress: JobProgress,
    createdAt: Date,
    owner?: string,
    limits: ActiveJobLimits = unlimited,
  ): Promise<CreateOutcome> {
    const ownerKeys = owner === undefined ? [] : (['all', 'queued', 'running'] as const).map((state) => this.keys.index(state, owner));
    const keys = [
      this.keys.sequence(),
      this.keys.job(id),
      this.keys.events(id),
      ...(['all', 'queued', 'running'] as const).map((state) => this.keys.index(state)),
      ...ownerKeys,
    ];
    const event = JSON.stringify({ at: createdAt.toISOString(), state: 'queued', previous: null });
    const reply = await (this.redis as RedisWithScripts).trainerCreate(
      keys.length,
      ...keys,
      id,
      JSON.stringify(request),
      JSON.stringify(progress),
      createdAt.toISOString(),
      owner ?? '',
      String(limits.total),
      String(limits.perOwner),
      event,
    );
    if (reply !== 'created' && reply !== 'full' && reply !== 'ownerFull') throw new Error(`unexpected reply to job creation: ${String(reply)}`);
    return reply;
  }

  async transition(id: string, from: readonly JobState[], to: JobState, fields: TransitionFields = {}, attempt?: number): Promise<TransitionOutcome> {
    const encoded = encodeFields(fields);
    // Normalised: the script puts it into the state event's JSON as it is.
    const at = new Date(fields.finishedAt ?? fields.startedAt ?? Date.now()).toISOString();
    const end = finalStates.includes(to) ? JSON.stringify({ at, state: to, result: fields.result ?? null, error: fields.error ?? null }) : '';
    const reply = (await (this.redis as RedisWithScripts).trainerTransition(
      this.keys.job(id),
      this.keys.events(id),
      this.keys.ended(),
      JSON.stringify(from),
      to,
      JSON.stringify(encoded),
      this.keys.indexPrefix(),
      id,
      at,
      end,
      attempt === undefined ? '' : String(attempt),
    )) as [number, string, number?];
    const current = parseState(reply[1]);
    if (reply[0] === 1 && current) return { ok: true, previous: current, attempt: reply[2] ?? 0 };
    return { ok: false, current };
  }

  /** The client that created the job, or null for a job created without one (or unknown). */
  async owner(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.job(id), 'owner');
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
    return this.append(id, this.keys.job(id), '', progress, 'progress', { at: new Date().toISOString(), progress }, attempt);
  }

  async appendLog(id: string, line: LossLogLine, progress: JobProgress, attempt?: number): Promise<boolean> {
    return this.append(id, this.keys.logs(id), JSON.stringify(line), progress, 'log', { at: new Date().toISOString(), line, progress }, attempt);
  }

  async appendEpoch(id: string, summary: EpochSummary, progress: JobProgress, attempt?: number): Promise<boolean> {
    return this.append(id, this.keys.epochs(id), JSON.stringify(summary), progress, 'epoch', { at: new Date().toISOString(), summary, progress }, attempt);
  }

  /** One script, so a reader never sees a log line without the progress and the event that came with it. */
  private async append(id: string, listKey: string, entry: string, progress: JobProgress, type: string, event: unknown, attempt: number | undefined): Promise<boolean> {
    const written = await (this.redis as RedisWithScripts).trainerAppend(
      this.keys.job(id),
      listKey,
      this.keys.events(id),
      entry,
      JSON.stringify(progress),
      type,
      JSON.stringify(event),
      attempt === undefined ? '' : String(attempt),
    );
    return written === 1;
  }

  /** A job's summary and epochs, without its loss log (which can be long): what /metrics observes of an ended job. */
  async summaryWithEpochs(id: string): Promise<{ job: JobSummary; epochs: EpochSummary[] } | null> {
    const [record, epochs] = await Promise.all([this.redis.hgetall(this.keys.job(id)), this.redis.lrange(this.keys.epochs(id), 0, -1)]);
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
  async rewind(id: string, kept: { logLines: number; epochs: number }, progress: JobProgress, attempt?: number): Promise<boolean> {
    const event: RewindEvent = { at: new Date().toISOString(), ...kept, progress };
    const written = await (this.redis as RedisWithScripts).trainerRewind(
      this.keys.job(id),
      this.keys.logs(id),
      this.keys.epochs(id),
      this.keys.events(id),
      String(kept.logLines),
      String(kept.epochs),
      JSON.stringify(progress),
      JSON.stringify(event),
      attempt === undefined ? '' : String(attempt),
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
  async list(options: { state?: JobState; limit: number; cursor?: string; owner?: string }): Promise<{ jobs: JobSummary[]; next: string | null }> {
    const max = options.cursor === undefined ? '+inf' : `(${options.cursor}`;
    const entries = await this.redis.zrevrangebyscore(
      this.keys.index(options.state ?? 'all', options.owner),
      max,
      '-inf',
      'WITHSCORES',
      'LIMIT',
      0,
      options.limit + 1,
    );
    const page: { id: string; sequence: string }[] = [];
    for (let i = 0; i + 1 < entries.length; i += 2) page.push({ id: entries[i] as string, sequence: entries[i + 1] as string });
    const hasMore = page.length > options.limit;
    const shown = page.slice(0, options.limit);
    const records = await Promise.all(shown.map(({ id }) => this.redis.hgetall(this.keys.job(id))));
    const jobs = records.map(decodeSummary).filter((job): job is JobSummary => job !== null);
    return { jobs, next: hasMore ? (shown.at(-1)?.sequence ?? null) : null };
  }
}

interface RedisWithScripts extends Redis {
  trainerCreate(numberOfKeys: number, ...keysThenArguments: string[]): Promise<unknown>;
  trainerTransition(
    key: string,
    eventsKey: string,
    endedKey: string,
    from: string,
    to: string,
    fields: string,
    indexPrefix: string,
    id: string,
    at: string,
    end: string,
    attempt: string,
  ): Promise<unknown>;
  trainerAppend(key: string, listKey: string, eventsKey: string, entry: string, progress: string, type: string, event: string, attempt: string): Promise<unknown>;
  trainerRewind(
    key: string,
    logsKey: string,
    epochsKey: string,
    eventsKey: string,
    logLines: string,
    epochs: string,
    progress: string,
    event: string,
    attempt: string,
  ): Promise<unknown>;
}
