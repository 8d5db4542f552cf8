import type { Redis } from 'ioredis';
import { finalStates, type JobResult, type JobState } from '../contract/job.ts';
import type { JobKeys } from './keys.ts';
import { encodeFields, parseState } from './records.ts';
import { runScript } from './scripts.ts';

/** `attempt`: the job's run number after the change (it counts up each time the job starts running). */
export type TransitionOutcome =
  { ok: true; previous: JobState; attempt: number } | { ok: false; current: JobState | null };

/** The fields a state change may set besides the state itself. */
interface TransitionFields {
  startedAt?: string;
  finishedAt?: string;
  result?: JobResult;
  error?: { message: string };
}

/** Entries kept in the stream of ended jobs: /metrics reads it at every scrape, so it need not be long. */
const endedStreamLength = 10_000;

/**
 * A job's life after its creation (`queued`), one verb per change, each with the states it may
 * start from:
 *
 * | verb | from | to | who |
 * | --- | --- | --- | --- |
 * | start | queued, running | running | a worker given the job by the queue; from `running`, it takes over a dead worker's job |
 * | cancel | queued, running | cancelled | the API (POST /jobs/:id/cancel) |
 * | handBack | running | queued | a worker shutting down, fenced by its attempt |
 * | complete | running | completed | the worker that trained it, fenced by its attempt |
 * | fail | running | failed | the worker that trained it, fenced by its attempt |
 * | giveUp | queued, running | failed | the worker's queue, when BullMQ gave up on the job (its worker died once too often); not fenced |
 *
 * Each start counts up the job's `attempt`; a fenced verb happens only while the attempt it is
 * given is still the job's, so a worker whose job was taken over can't change it any more. A verb
 * refused (the job is in none of its states, at another attempt, or unknown) changes nothing and
 * answers the job's current state (null for an unknown job). Every change appends its events in
 * the same step: see scripts/transition-4.lua.
 */
export class JobLifecycle {
  constructor(
    private readonly redis: Redis,
    private readonly keys: JobKeys,
  ) {}

  /** `startedAt`: for a job's first start; a job that started before (handed back, taken over) keeps its own. */
  start(id: string, startedAt?: Date): Promise<TransitionOutcome> {
    return this.transition(
      id,
      ['queued', 'running'],
      'running',
      startedAt ? { startedAt: startedAt.toISOString() } : {},
    );
  }

  cancel(id: string, at = new Date()): Promise<TransitionOutcome> {
    return this.transition(id, ['queued', 'running'], 'cancelled', { finishedAt: at.toISOString() });
  }

  /** Back to the queue (`queued`) for another worker, with its history and checkpoint. */
  handBack(id: string, attempt: number): Promise<TransitionOutcome> {
    return this.transition(id, ['running'], 'queued', {}, attempt);
  }

  complete(id: string, attempt: number, result: JobResult, at = new Date()): Promise<TransitionOutcome> {
    return this.transition(id, ['running'], 'completed', { finishedAt: at.toISOString(), result }, attempt);
  }

  fail(id: string, attempt: number, message: string, at = new Date()): Promise<TransitionOutcome> {
    return this.transition(id, ['running'], 'failed', { finishedAt: at.toISOString(), error: { message } }, attempt);
  }

  /** Ends the job failed whatever run holds it: the queue's decision, not a worker's. */
  giveUp(id: string, message: string, at = new Date()): Promise<TransitionOutcome> {
    return this.transition(id, ['queued', 'running'], 'failed', { finishedAt: at.toISOString(), error: { message } });
  }

  /** The one way a job's state changes: from one of `from` to `to`, with `attempt` only while that is the job's. */
  private async transition(
    id: string,
    from: readonly JobState[],
    to: JobState,
    fields: TransitionFields,
    attempt?: number,
  ): Promise<TransitionOutcome> {
    const at = new Date(fields.finishedAt ?? fields.startedAt ?? Date.now()).toISOString();
    // One state event for each state the job may be leaving: the script appends the one it leaves.
    const stateEvents = Object.fromEntries(
      from.map((previous) => [previous, JSON.stringify({ at, state: to, previous })]),
    );
    const final = finalStates.includes(to);
    const end = final
      ? JSON.stringify({ at, state: to, result: fields.result ?? null, error: fields.error ?? null })
      : '';
    const reply = (await runScript(
      this.redis,
      'transition',
      [this.keys.job(id), this.keys.events(id), this.keys.ended(), this.keys.finished()],
      [
        JSON.stringify(stateEvents),
        to,
        JSON.stringify(encodeFields(fields)),
        this.keys.indexPrefix(),
        id,
        end,
        attempt === undefined ? '' : String(attempt),
        String(endedStreamLength),
        final ? String(Date.parse(at)) : '',
      ],
    )) as [number, string, number?];
    const current = parseState(reply[1]);
    if (reply[0] === 1 && current) return { ok: true, previous: current, attempt: reply[2] ?? 0 };
    return { ok: false, current };
  }
}
