import type { Redis } from 'ioredis';
import {
  jobStates,
  type EpochSummary,
  type Job,
  type JobProgress,
  type JobResult,
  type JobState,
  type JobSummary,
  type LossLogLine,
} from '../contract/job.ts';
import type { JobSettings } from '../contract/job-request.ts';

/** The fields a state change may set besides the state itself. */
interface TransitionFields {
  startedAt?: string;
  finishedAt?: string;
  result?: JobResult;
  error?: { message: string };
  progress?: JobProgress;
}

export type TransitionOutcome = { ok: true; previous: JobState } | { ok: false; current: JobState | null };

/**
 * Moves a job between states atomically: the state only changes when it is one of the allowed
 * ones, so a cancel and a completion racing each other can't both win, and the per-state indexes
 * that GET /jobs?state= reads always agree with the job's own record.
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
local target = ARGV[2]
local fields = cjson.decode(ARGV[3])
for name, value in pairs(fields) do redis.call('HSET', KEYS[1], name, value) end
redis.call('HSET', KEYS[1], 'state', target)
local sequence = redis.call('HGET', KEYS[1], 'sequence')
local prefix = ARGV[4]
redis.call('ZREM', prefix .. current, ARGV[5])
redis.call('ZADD', prefix .. target, sequence, ARGV[5])
return {1, current}
`;

/** Jobs' records, progress, loss logs and results in Redis: the one place API and workers share. */
export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('trainerTransition', { numberOfKeys: 1, lua: transitionScript });
  }

  private jobKey(id: string): string {
    return `${this.prefix}:job:${id}`;
  }
  private logsKey(id: string): string {
    return `${this.jobKey(id)}:logs`;
  }
  private epochsKey(id: string): string {
    return `${this.jobKey(id)}:epochs`;
  }
  private indexKey(state: JobState | 'all'): string {
    return `${this.prefix}:jobs:${state}`;
  }

  async create(id: string, request: JobSettings, progress: JobProgress, createdAt: Date): Promise<void> {
    const sequence = await this.redis.incr(`${this.prefix}:jobs:sequence`);
    await this.redis
      .multi()
      .hset(this.jobKey(id), {
        id,
        state: 'queued',
        sequence,
        request: JSON.stringify(request),
        progress: JSON.stringify(progress),
        createdAt: createdAt.toISOString(),
      })
      .zadd(this.indexKey('all'), sequence, id)
      .zadd(this.indexKey('queued'), sequence, id)
      .exec();
  }

  async transition(id: string, from: readonly JobState[], to: JobState, fields: TransitionFields = {}): Promise<TransitionOutcome> {
    const encoded = Object.fromEntries(
      Object.entries(fields).map(([name, value]) => [name, typeof value === 'string' ? value : JSON.stringify(value)]),
    );
    const reply = (await (this.redis as RedisWithTransition).trainerTransition(
      this.jobKey(id),
      JSON.stringify(from),
      to,
      JSON.stringify(encoded),
      `${this.prefix}:jobs:`,
      id,
    )) as [number, string];
    const current = parseState(reply[1]);
    if (reply[0] === 1 && current) return { ok: true, previous: current };
    return { ok: false, current };
  }

  async state(id: string): Promise<JobState | null> {
    return parseState(await this.redis.hget(this.jobKey(id), 'state'));
  }

  async setProgress(id: string, progress: JobProgress): Promise<void> {
    await this.redis.hset(this.jobKey(id), 'progress', JSON.stringify(progress));
  }

  appendLog(id: string, line: LossLogLine, progress: JobProgress): Promise<void> {
    return this.appendWithProgress(id, this.logsKey(id), line, progress);
  }

  appendEpoch(id: string, summary: EpochSummary, progress: JobProgress): Promise<void> {
    return this.appendWithProgress(id, this.epochsKey(id), summary, progress);
  }

  /** One transaction, so a reader never sees a log line without the progress that came with it. */
  private async appendWithProgress(id: string, listKey: string, entry: unknown, progress: JobProgress): Promise<void> {
    await this.redis
      .multi()
      .rpush(listKey, JSON.stringify(entry))
      .hset(this.jobKey(id), 'progress', JSON.stringify(progress))
      .exec();
  }

  /** Forgets the logs of an attempt that will be trained again from the start. */
  async clearHistory(id: string): Promise<void> {
    await this.redis.del(this.logsKey(id), this.epochsKey(id));
  }

  async get(id: string): Promise<Job | null> {
    const [record, logs, epochs] = await Promise.all([
      this.redis.hgetall(this.jobKey(id)),
      this.redis.lrange(this.logsKey(id), 0, -1),
      this.redis.lrange(this.epochsKey(id), 0, -1),
    ]);
    const summary = toSummary(record);
    if (!summary) return null;
    return {
      ...summary,
      logs: logs.map((line) => JSON.parse(line) as LossLogLine),
      epochs: epochs.map((line) => JSON.parse(line) as EpochSummary),
    };
  }

  /** Newest first; `cursor` is the sequence number to continue below. */
  async list(options: { state?: JobState; limit: number; cursor?: string }): Promise<{ jobs: JobSummary[]; next: string | null }> {
    const max = options.cursor === undefined ? '+inf' : `(${options.cursor}`;
    const entries = await this.redis.zrevrangebyscore(
      this.indexKey(options.state ?? 'all'),
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
    const records = await Promise.all(shown.map(({ id }) => this.redis.hgetall(this.jobKey(id))));
    const jobs = records.map(toSummary).filter((job): job is JobSummary => job !== null);
    return { jobs, next: hasMore ? (shown.at(-1)?.sequence ?? null) : null };
  }
}

interface RedisWithTransition extends Redis {
  trainerTransition(key: string, from: string, to: string, fields: string, indexPrefix: string, id: string): Promise<unknown>;
}

function parseState(value: string | null | undefined): JobState | null {
  return jobStates.find((state) => state === value) ?? null;
}

function toSummary(record: Record<string, string>): JobSummary | null {
  const state = parseState(record.state);
  if (!state || !record.id || !record.request || !record.progress || !record.createdAt) return null;
  return {
    id: record.id,
    state,
    request: JSON.parse(record.request) as JobSettings,
    progress: JSON.parse(record.progress) as JobProgress,
    result: record.result ? (JSON.parse(record.result) as JobResult) : null,
    error: record.error ? (JSON.parse(record.error) as { message: string }) : null,
    createdAt: record.createdAt,
    startedAt: record.startedAt ?? null,
    finishedAt: record.finishedAt ?? null,
  };
}
