import type { Redis } from 'ioredis';
import type { JobKeys } from './keys.ts';

/** One entry of a job's event stream as Redis holds it. */
export interface StoredEvent {
  /** The stream entry id, `<ms>-<n>`: the SSE id. */
  readonly id: string;
  readonly type: string;
  /** The event's JSON, as written. */
  readonly data: string;
}

/** A job that ended, from the stream of ended jobs. */
export interface EndedJob {
  /** The stream entry id: read on after it. */
  readonly position: string;
  readonly id: string;
  readonly state: string;
}

/**
 * Reads the streams the job store writes: each job's event stream (GET /jobs/:id/events) and the
 * stream of ended jobs (/metrics). Entries are appended only by the store's scripts, in the same
 * step as the change each one reports; nothing here writes.
 */
export class EventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: JobKeys,
  ) {}

  /**
   * Events of the job after `after` (a stream id; '0-0' for all), oldest first, at most `count`.
   * With `blockMs`, waits that long for one to arrive when there is none: only on a connection of
   * its own, since the wait holds the connection.
   */
  async read(id: string, after: string, options: { count: number; blockMs?: number; connection?: Redis }): Promise<StoredEvent[]> {
    const redis = options.connection ?? this.redis;
    const key = this.keys.events(id);
    const reply =
      options.blockMs === undefined
        ? await redis.xread('COUNT', options.count, 'STREAMS', key, after)
        : await redis.xread('COUNT', options.count, 'BLOCK', options.blockMs, 'STREAMS', key, after);
    return toEvents(reply?.[0]?.[1] ?? []);
  }

  /** The job's last event, or null when its stream is empty (a job created before events existed). */
  async last(id: string): Promise<StoredEvent | null> {
    return toEvents(await this.redis.xrevrange(this.keys.events(id), '+', '-', 'COUNT', 1))[0] ?? null;
  }

  /** Jobs that ended after stream position `after`, oldest first (start from lastEndedPosition()). */
  async endedSince(after: string, count: number): Promise<EndedJob[]> {
    const entries = await this.redis.xrange(this.keys.ended(), `(${after}`, '+', 'COUNT', count);
    return entries.flatMap(([position, fields]) => {
      const values = fieldMap(fields);
      return values.id && values.state ? [{ position, id: values.id, state: values.state }] : [];
    });
  }

  /** The position of the last job that ended, '0-0' when none has: read on from here to see only new ones. */
  async lastEndedPosition(): Promise<string> {
    const [last] = await this.redis.xrevrange(this.keys.ended(), '+', '-', 'COUNT', 1);
    return last?.[0] ?? '0-0';
  }
}

/** A stream entry's fields, given by Redis as [name, value, name, value, ...]. */
function fieldMap(fields: string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) values[fields[i] as string] = fields[i + 1] as string;
  return values;
}

function toEvents(entries: [id: string, fields: string[]][]): StoredEvent[] {
  return entries.flatMap(([id, fields]) => {
    const { type, data } = fieldMap(fields);
    return type && data ? [{ id, type, data }] : [];
  });
}
