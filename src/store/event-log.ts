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

/** Stream entries as Redis gives them; a consumer group's reads give null fields for an entry trimmed meanwhile. */
type StreamEntries = [id: string, fields: string[] | null][];

/**
 * Reads the streams the job store writes: each job's event stream (GET /jobs/:id/events) and the
 * stream of ended jobs (/metrics, and a consumer group for webhooks). Entries are appended only by
 * the store's scripts, in the same step as the change each one reports; nothing here writes an
 * entry, and a consumer group's reads move only that group's own position in the stream.
 */
export class EventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: JobKeys,
  ) {}

  /** Events of the job after `after` (a stream id; '0-0' for all), oldest first, at most `count`. */
  async read(id: string, after: string, count: number): Promise<StoredEvent[]> {
    const reply = await this.redis.xread('COUNT', count, 'STREAMS', this.keys.events(id), after);
    return toEvents(reply?.[0]?.[1] ?? []);
  }

  /**
   * The events of several jobs at once, each after its own position, at most `count` a job, in
   * one XREAD that waits up to `blockMs` for one to arrive when there is none: on `connection`,
   * a connection of its own, since the wait holds it. Only jobs with new events are in the answer.
   */
  async readMany(
    after: ReadonlyMap<string, string>,
    options: { count: number; blockMs: number; connection: Redis },
  ): Promise<Map<string, StoredEvent[]>> {
    const ids = [...after.keys()];
    const keys = ids.map((id) => this.keys.events(id));
    const reply = await options.connection.xread(
      'COUNT',
      options.count,
      'BLOCK',
      options.blockMs,
      'STREAMS',
      ...keys,
      ...ids.map((id) => after.get(id) ?? '0-0'),
    );
    const idOfKey = new Map(ids.map((id, index) => [keys[index], id]));
    const found = new Map<string, StoredEvent[]>();
    for (const [key, entries] of reply ?? []) {
      const id = idOfKey.get(key);
      if (id !== undefined) found.set(id, toEvents(entries));
    }
    return found;
  }

  /** The job's last event, or null when its stream is empty (a job created before events existed). */
  async last(id: string): Promise<StoredEvent | null> {
    return toEvents(await this.redis.xrevrange(this.keys.events(id), '+', '-', 'COUNT', 1))[0] ?? null;
  }

  /** Jobs that ended after stream position `after`, oldest first (start from lastEndedPosition()). */
  async endedSince(after: string, count: number): Promise<EndedJob[]> {
    return toEnded(await this.redis.xrange(this.keys.ended(), `(${after}`, '+', 'COUNT', count));
  }

  /** Makes `group`, a consumer group of the stream of ended jobs that starts at the stream's first entry, unless it exists. */
  async createEndedGroup(group: string): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.keys.ended(), group, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  /**
   * Ended jobs not yet given to any consumer of `group`, given now to `consumer`, who must
   * acknowledge each; waits up to `blockMs` for one, so only on a connection of its own.
   */
  async readEndedAs(
    group: string,
    consumer: string,
    options: { count: number; blockMs: number; connection: Redis },
  ): Promise<EndedJob[]> {
    const reply = (await options.connection.xreadgroup(
      'GROUP',
      group,
      consumer,
      'COUNT',
      options.count,
      'BLOCK',
      options.blockMs,
      'STREAMS',
      this.keys.ended(),
      '>',
    )) as [string, StreamEntries][] | null;
    return toEnded(reply?.[0]?.[1] ?? []);
  }

  /** Ended jobs given to a consumer of `group` that has not acknowledged them for `minIdleMs` (it died, or failed to handle them), given now to `consumer`. */
  async claimStaleEnded(group: string, consumer: string, minIdleMs: number, count: number): Promise<EndedJob[]> {
    const [, entries] = (await this.redis.xautoclaim(
      this.keys.ended(),
      group,
      consumer,
      minIdleMs,
      '0-0',
      'COUNT',
      count,
    )) as [string, StreamEntries];
    return toEnded(entries);
  }

  async acknowledgeEnded(group: string, position: string): Promise<void> {
    await this.redis.xack(this.keys.ended(), group, position);
  }

  /** Forgets `consumer` of `group` unless it still holds entries it has not acknowledged, which another consumer will then claim. */
  async removeEndedConsumer(group: string, consumer: string): Promise<void> {
    const pending = await this.redis.xpending(this.keys.ended(), group, 'IDLE', 0, '-', '+', 1, consumer);
    if (pending.length === 0) await this.redis.xgroup('DELCONSUMER', this.keys.ended(), group, consumer);
  }

  /** The position of the last job that ended, '0-0' when none has: read on from here to see only new ones. */
  async lastEndedPosition(): Promise<string> {
    const [last] = await this.redis.xrevrange(this.keys.ended(), '+', '-', 'COUNT', 1);
    return last?.[0] ?? '0-0';
  }
}

function toEnded(entries: StreamEntries): EndedJob[] {
  return entries.flatMap(([position, fields]) => {
    const values = fieldMap(fields ?? []);
    return values.id && values.state ? [{ position, id: values.id, state: values.state }] : [];
  });
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
