import type { EpochSummary, JobProgress, JobResult, LossLogLine } from '../contract/job.ts';
import type { JobStore } from './job-store.ts';

/** Where an attempt stands: the job is still its to train, was stopped (cancelled), or another worker's attempt took it over. */
export type AttemptStatus = 'current' | 'stopped' | 'superseded';

/**
 * One worker's attempt at a job (the job's `attempt` number that its start gave it): every write
 * and change goes through fenced by that number, so it takes effect only while this is the job's
 * current attempt. A worker that stopped answering for a while (frozen, cut off from Redis) may
 * find its job handed to another worker, and from then on nothing it writes or decides counts.
 */
export class JobAttempt {
  constructor(
    private readonly store: JobStore,
    readonly jobId: string,
    readonly number: number,
  ) {}

  async status(): Promise<AttemptStatus> {
    const { state, attempt } = await this.store.stateAndAttempt(this.jobId);
    if (attempt !== this.number) return 'superseded';
    return state === 'running' ? 'current' : 'stopped';
  }

  async setProgress(progress: JobProgress): Promise<void> {
    await this.store.setProgress(this.jobId, progress, this.number);
  }

  async appendLog(line: LossLogLine, progress: JobProgress): Promise<void> {
    await this.store.appendLog(this.jobId, line, progress, this.number);
  }

  async appendEpoch(summary: EpochSummary, progress: JobProgress): Promise<void> {
    await this.store.appendEpoch(this.jobId, summary, progress, this.number);
  }

  async rewind(kept: { logLines: number; epochs: number }, progress: JobProgress): Promise<void> {
    await this.store.rewind(this.jobId, kept, progress, this.number);
  }

  /** Hands the job back to the queue (`queued`), if it is still this attempt's. */
  async handBack(): Promise<boolean> {
    return (await this.store.lifecycle.handBack(this.jobId, this.number)).ok;
  }

  async complete(result: JobResult): Promise<boolean> {
    return (await this.store.lifecycle.complete(this.jobId, this.number, result)).ok;
  }

  async fail(message: string): Promise<boolean> {
    return (await this.store.lifecycle.fail(this.jobId, this.number, message)).ok;
  }
}
