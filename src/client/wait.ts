import { setTimeout as delay } from 'node:timers/promises';
import { finalStates, type Job, type JobState } from '../contract/job.ts';

/** What a wait is for: a state, or anything a job's record can show (its logs, its progress). */
export type JobCondition = JobState | ((job: Job) => boolean);

export interface WaitOptions {
  /** Give up after this long (default: never). */
  readonly timeoutMs?: number;
  /** Time between two looks at the job (default 250 ms). */
  readonly intervalMs?: number;
}

/** The job has ended: completed, failed or cancelled. */
export const hasEnded = (job: Job): boolean => finalStates.includes(job.state);

/**
 * Polls `get` until the job meets `until`. Waiting for a state the job can no longer reach (it
 * ended in another) throws at once, saying how it ended, as does a wait past `timeoutMs`.
 */
export async function waitForJob(
  get: () => Promise<Job>,
  until: JobCondition,
  options: WaitOptions = {},
): Promise<Job> {
  const deadline = Date.now() + (options.timeoutMs ?? Infinity);
  const wanted = typeof until === 'string' ? `to be ${until}` : 'to meet the condition';
  for (;;) {
    const job = await get();
    if (typeof until === 'string' ? job.state === until : until(job)) return job;
    if (typeof until === 'string' && hasEnded(job))
      throw new Error(
        `job ${job.id} ended ${job.state}${job.error ? ` (${job.error.message})` : ''} while waiting for it ${wanted}`,
      );
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for job ${job.id} ${wanted} (it is ${job.state})`,
      );
    await delay(options.intervalMs ?? 250);
  }
}
