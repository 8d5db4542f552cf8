import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ExperimentStore } from '../store/experiment-store.ts';
import type { JobStore } from '../store/job-store.ts';
import type { JobRemoval } from './job-removal.ts';

/** Jobs a sweep reads, then removes together, at a time: each removal is short, so Redis is never held for long. */
const sweepBatch = 200;

export interface RetentionSweepOptions {
  readonly redis: Redis;
  readonly store: JobStore;
  readonly experiments: ExperimentStore;
  readonly removal: JobRemoval;
  readonly retentionDays: number;
  readonly intervalMs: number;
  readonly log: Logger;
}

/** What one sweep removed. */
export interface SweepOutcome {
  readonly jobs: number;
  /** Experiments created before the cut-off whose runs were all gone (swept now or before, or deleted). */
  readonly experiments: number;
}

/**
 * Removes the jobs that ended more than `retentionDays` ago, then the experiments older than
 * that with no run left. Every API process runs one; the
 * first to take the sweep lock for an interval sweeps, the others skip that interval, and since
 * each removal is one atomic step that only deletes an ended job, two sweeps that overlapped
 * anyway (a lock that expired mid-sweep) would only find each other's jobs gone.
 */
export class RetentionSweep {
  constructor(private readonly options: RetentionSweepOptions) {}

  /** One sweep, if this process takes the lock: what it removed (null: another process holds the lock). */
  async sweep(now = new Date()): Promise<SweepOutcome | null> {
    const { redis, store, retentionDays, intervalMs } = this.options;
    const taken = await redis.set(store.keys.sweepLock(), String(process.pid), 'PX', intervalMs, 'NX');
    if (taken !== 'OK') return null;
    const before = new Date(now.getTime() - retentionDays * 86_400_000);
    const jobs = await this.sweepJobs(before);
    return { jobs, experiments: await this.sweepExperiments(before) };
  }

  private async sweepJobs(before: Date): Promise<number> {
    const { store, removal } = this.options;
    let removed = 0;
    for (;;) {
      const ids = await store.endedBefore(before, sweepBatch);
      const outcomes = await Promise.all(ids.map((id) => removal.remove(id)));
      const removedNow = outcomes.filter((outcome) => outcome.ok).length;
      removed += removedNow;
      // A full batch of which nothing could be removed would come back the same: stop there.
      if (ids.length < sweepBatch || removedNow === 0) return removed;
    }
  }

  private async sweepExperiments(before: Date): Promise<number> {
    const { experiments } = this.options;
    let removed = 0;
    for (let after: number | null = 0; after !== null;) {
      const page: { empty: string[]; next: number | null } = await experiments.emptyCreatedBefore(before, {
        after,
        limit: sweepBatch,
      });
      for (const id of page.empty) if (await experiments.remove(id)) removed += 1;
      after = page.next;
    }
    return removed;
  }

  /** Sweeps now and then every interval, until the returned function is called. */
  start(): () => void {
    const run = () =>
      void this.sweep().then(
        (removed) => {
          if (removed && (removed.jobs > 0 || removed.experiments > 0))
            this.options.log.info(
              { ...removed, retentionDays: this.options.retentionDays },
              'removed jobs past their retention, and experiments left without runs',
            );
        },
        (error: unknown) =>
          this.options.log.warn({ err: error }, 'retention sweep failed; the next interval tries again'),
      );
    run();
    const timer = setInterval(run, this.options.intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
