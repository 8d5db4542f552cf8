import type { EpochSummary, JobProgress, JobResult, LossLogLine } from '../contract/job.ts';
import type { JobStore } from './job-store.ts';

/** Where a run stands: the job is still its to train, was stopped (cancelled), or another worker's run took it over. */
export type RunStatus = 'current' | 'stopped' | 'superseded';

/**
 * One worker's run of a job. Its writes take effect only while it is the job's current run: a
 * worker that stopped answering for a while (frozen, cut off from Redis) may find its job handed
 * to another worker, and from then on nothing it writes or decides counts.
 */
export class JobRun {
  constructor(
    private readonly store: JobStore,
    readonly jobId: string,
    readonly attempt: number,
  ) {}

  async status(): Promise<RunStatus> {
    const { state, attempt } = await this.store.stateAndAttempt(this.jobId);
    if (attempt !== this.attempt) return 'superseded';
    return state === 'running' ? 'current' : 'stopped';
  }

  async setProgress(progress: JobProgress): Promise<void> {
    await this.store.setProgress(this.jobId, progress, this.attempt);
  }

  async appendLog(line: LossLogLine, progress: JobProgress): Promise<void> {
    await this.store.appendLog(this.jobId, line, progress, this.attempt);
  }

  async appendEpoch(summary: EpochSummary, progress: JobProgress): Promise<void> {
    await this.store.appendEpoch(this.jobId, summary, progress, this.attempt);
  }

  async rewind(kept: { logLines: number; epochs: number }, progress: JobProgress): Promise<void> {
    await this.store.rewind(this.jobId, kept, progress, this.attempt);
  }

  /** Hands the job back to the queue (`queued`), if it is still this run's. */
  async handBack(): Promise<boolean> {
    return (await this.store.lifecycle.handBack(this.jobId, this.attempt)).ok;
  }

  async complete(result: JobResult): Promise<boolean> {
    return (await this.store.lifecycle.complete(this.jobId, this.attempt, result)).ok;
  }

  async fail(message: string): Promise<boolean> {
    return (await this.store.lifecycle.fail(this.jobId, this.attempt, message)).ok;
  }
}
