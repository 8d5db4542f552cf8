import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import { finalStates, type FinalJobState, type JobState } from '../contract/job.ts';
import type { EndEvent } from '../contract/events.ts';
import type { StoredEvent } from '../store/event-log.ts';
import type { JobStore } from '../store/job-store.ts';
import { encodeSse, type SseResponse } from './sse-writer.ts';

/** Events read from Redis at once, per job: a late client's replay comes in chunks of this many. */
const readCount = 200;
/** After Redis failed a read: how long before the next try. */
const retryDelayMs = 500;
/** How often to ask Redis again to cut the shared read short, until a read over the current jobs is under way. */
const interruptRetryMs = 5;

export interface EventFanoutOptions {
  readonly store: JobStore;
  /** The API's request connection: the fan-out's own blocking connection is made from it. */
  readonly redis: Redis;
  /** The name the blocking connection gives itself (CLIENT LIST). */
  readonly connectionName: string;
  /** How long a stream may stay silent before a heartbeat comment. */
  readonly heartbeatMs: number;
  readonly log: FastifyBaseLogger;
}

/** One client following one job. */
interface Follower {
  readonly stream: SseResponse;
  /** The id of the last event it was given. */
  position: string;
  /** Live events that came while its replay was still being read, and their bytes. */
  pending: StoredEvent[] | null;
  pendingBytes: number;
  readonly done: () => void;
}

/** An event with its bytes on the wire. */
interface EncodedEvent {
  readonly event: StoredEvent;
  readonly bytes: Buffer;
}

function encoded(event: StoredEvent): EncodedEvent {
  return { event, bytes: encodeSse(event) };
}

/** A job that clients follow: where the shared read has got to in its stream. */
interface Watch {
  /** Null until the stream's last id is known: the read starts after it, the replay covers the rest. */
  cursor: string | null;
  readonly followers: Set<Follower>;
  /** When an event last came, for heartbeats and the check of a quiet job. */
  lastEventAt: number;
}

/**
 * GET /jobs/:id/events for every client of one API process through one Redis connection: one
 * XREAD BLOCK over the streams of every job someone follows, whose events are written to each of
 * the job's clients. A client that joins is registered first, then replays the events after its
 * Last-Event-ID with plain reads; live events that arrive meanwhile wait until its replay is done,
 * and a client is given only events after the last one it has, so it gets each event once and in
 * order whether it came by the replay or live. A client that reads too slowly is cut off (see
 * SseResponse) and resumes with Last-Event-ID. When Redis fails a read, every stream ends (clients
 * reconnect and resume) and the read is tried again.
 */
export class EventFanout {
  private readonly watches = new Map<string, Watch>();
  private readonly connection: Redis;
  private clientId: number | null = null;
  private closed = false;
  /** Set while the shared XREAD is in flight. */
  private reading = false;
  /** Counts changes to the set of jobs followed; the read in flight covers them up to readGeneration. */
  private generation = 0;
  private readGeneration = 0;
  private interrupting = false;
  private wake: (() => void) | null = null;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly running: Promise<void>;

  constructor(private readonly options: EventFanoutOptions) {
    this.connection = options.redis.duplicate({
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectionName: options.connectionName,
    });
    this.connection.on('error', (error) => options.log.debug({ err: error }, 'event fan-out Redis connection error'));
    this.connection.on('ready', () => {
      void this.connection.client('ID').then(
        (id) => (this.clientId = Number(id)),
        () => undefined,
      );
    });
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs);
    this.heartbeat.unref();
    this.running = this.run();
  }

  /** Clients following a job now, over every job. */
  get clients(): number {
    let count = 0;
    for (const watch of this.watches.values()) count += watch.followers.size;
    return count;
  }

  /** Sends the job's events after `after` to `stream`, then its live ones, until its end, the client leaving, or a failure. */
  async follow(id: string, after: string, stream: SseResponse): Promise<void> {
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const follower: Follower = { stream, position: after, pending: [], pendingBytes: 0, done };
    let watch = this.watches.get(id);
    if (!watch) {
      watch = { cursor: null, followers: new Set(), lastEventAt: Date.now() };
      this.watches.set(id, watch);
      const started = watch;
      void this.options.store.events.last(id).then(
        (last) => {
          started.cursor = last?.id ?? '0-0';
          this.interrupt();
        },
        (error: unknown) => this.fail(started, error),
      );
    }
    watch.followers.add(follower);
    void stream.whenClosed().then(() => this.leave(id, follower));
    try {
      await this.replay(id, follower);
    } catch (error) {
      // Its replay's read failed: this stream ends, and its client resumes where it stopped.
      if (!stream.closed)
        this.options.log.warn({ err: error, jobId: id }, 'event stream ended early: Redis failed a read');
      this.finish(follower);
    }
    return finished;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const watch of this.watches.values()) for (const follower of watch.followers) this.finish(follower);
    this.wake?.();
    this.connection.disconnect();
    await this.running;
  }

  private async replay(id: string, follower: Follower): Promise<void> {
    for (;;) {
      const events = await this.options.store.events.read(id, follower.position, readCount);
      for (const event of events) {
        if (follower.stream.closed) return;
        await follower.stream.send(event);
        follower.position = event.id;
        if (event.type === 'end') return this.finish(follower);
      }
      if (events.length < readCount) break;
    }
    const pending = follower.pending ?? [];
    follower.pending = null;
    this.deliver(follower, pending.map(encoded));
  }

  /** Live events to one follower: those after the last it has; during its replay they wait, within its buffer's bound. */
  private deliver(follower: Follower, events: readonly EncodedEvent[]): void {
    if (follower.pending) {
      for (const { event, bytes } of events) {
        follower.pending.push(event);
        follower.pendingBytes += bytes.byteLength;
      }
      if (follower.pendingBytes > follower.stream.maxBufferedBytes) follower.stream.cutOffNow();
      return;
    }
    for (const { event, bytes } of events) {
      if (follower.stream.closed) return;
      if (compareIds(event.id, follower.position) <= 0) continue;
      follower.stream.push(bytes);
      follower.position = event.id;
      if (event.type === 'end') return this.finish(follower);
    }
  }

  private finish(follower: Follower): void {
    follower.stream.end();
    follower.done();
  }

  private leave(id: string, follower: Follower): void {
    follower.done();
    const watch = this.watches.get(id);
    if (!watch) return;
    watch.followers.delete(follower);
    if (watch.followers.size === 0) {
      this.watches.delete(id);
      this.interrupt();
    }
  }

  /** Ends every stream of a job (Redis failed a read for it): its clients reconnect and resume. */
  private fail(watch: Watch, error: unknown): void {
    if (!this.closed && watch.followers.size > 0)
      this.options.log.warn(
        { err: error, clients: watch.followers.size },
        'event streams ended early: Redis failed a read',
      );
    for (const follower of watch.followers) this.finish(follower);
  }

  /** The shared read, for as long as the fan-out is open. */
  private async run(): Promise<void> {
    while (!this.closed) {
      if (![...this.watches.values()].some((watch) => watch.cursor !== null)) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      let found: Map<string, StoredEvent[]>;
      try {
        if (this.connection.status === 'wait') await this.connection.connect();
        const positions = new Map<string, string>();
        for (const [id, watch] of this.watches) if (watch.cursor !== null) positions.set(id, watch.cursor);
        this.readGeneration = this.generation;
        this.reading = true;
        found = await this.options.store.events.readMany(positions, {
          count: readCount,
          blockMs: this.options.heartbeatMs,
          connection: this.connection,
        });
      } catch (error) {
        if (this.closed) return;
        for (const watch of this.watches.values()) this.fail(watch, error);
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
        continue;
      } finally {
        this.reading = false;
      }
      const now = Date.now();
      for (const [id, events] of found) {
        const watch = this.watches.get(id);
        const last = events.at(-1);
        if (!watch || !last) continue;
        watch.cursor = last.id;
        watch.lastEventAt = now;
        // Encoded once, written to every client.
        const encodedEvents = events.map(encoded);
        for (const follower of watch.followers) this.deliver(follower, encodedEvents);
      }
    }
  }

  /** Makes the shared read start again with the jobs as they are now (one came or went). */
  private interrupt(): void {
    this.generation++;
    if (this.wake) return this.wake();
    if (this.interrupting) return;
    this.interrupting = true;
    void (async () => {
      try {
        // Until a read over the jobs as they are now is under way. CLIENT UNBLOCK does nothing to
        // an XREAD still on its way to Redis: then it is sent again shortly.
        while (!this.closed && this.reading && this.readGeneration !== this.generation) {
          if (this.clientId !== null) await this.options.redis.client('UNBLOCK', this.clientId);
          await new Promise((resolve) => setTimeout(resolve, interruptRetryMs));
        }
      } catch {
        // Redis is away: the read fails by itself, and starts again over the jobs as they are then.
      } finally {
        this.interrupting = false;
      }
    })();
  }

  /** Every heartbeat interval: a comment to each client of a quiet job, and a look at whether the job is still there. */
  private beat(): void {
    const now = Date.now();
    for (const [id, watch] of this.watches) {
      if (now - watch.lastEventAt < this.options.heartbeatMs || watch.cursor === null) continue;
      for (const follower of watch.followers) if (!follower.pending) follower.stream.comment('heartbeat');
      void this.checkQuiet(id, watch).catch(() => undefined);
    }
  }

  /**
   * A job deleted meanwhile, or one that ended under a worker that wrote no events, would keep its
   * streams open for ever. Its state is written with its events, so a final state with nothing
   * left to read means no end event is coming: the end comes from its record.
   */
  private async checkQuiet(id: string, watch: Watch): Promise<void> {
    const { store } = this.options;
    const state = await store.state(id);
    const followers = [...watch.followers].filter((follower) => !follower.pending);
    if (state === null) {
      for (const follower of followers) this.finish(follower);
      return;
    }
    if (!isFinal(state) || watch.cursor === null || (await store.events.read(id, watch.cursor, 1)).length > 0) return;
    const ended = await endFromRecord(store, id);
    if (!ended) return;
    const end = encodeSse({ type: 'end', data: JSON.stringify(ended) });
    for (const follower of followers) {
      follower.stream.push(end);
      this.finish(follower);
    }
  }
}

export function isFinal(state: JobState): state is FinalJobState {
  return finalStates.includes(state);
}

/** The end event of an ended job as its record tells it, for a job whose stream has none; null when it hasn't ended. */
export async function endFromRecord(store: JobStore, id: string): Promise<EndEvent | null> {
  const job = await store.get(id);
  if (!job || !isFinal(job.state)) return null;
  return { at: job.finishedAt ?? new Date().toISOString(), state: job.state, result: job.result, error: job.error };
}

/** Orders two stream ids (`<ms>-<n>`) numerically. */
export function compareIds(a: string, b: string): number {
  const [aMs = 0n, aSeq = 0n] = a.split('-').map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split('-').map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}
