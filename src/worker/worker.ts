import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { JobStore } from '../queue/job-store.ts';
import { connectRedis, type RedisTarget } from '../queue/connection.ts';
import { trainingQueueName, type TrainingJobData } from '../queue/training-queue.ts';
import { runJob, type JobRunnerDependencies } from './run-job.ts';

export interface TrainingWorkerOptions extends JobRunnerDependencies {
  readonly redisTarget: RedisTarget;
  readonly prefix: string;
  readonly concurrency: number;
}

export interface TrainingWorker {
  readonly worker: Worker<TrainingJobData>;
  /** Stops taking jobs and closes the worker's Redis connection, which BullMQ leaves to its owner. */
  close(): Promise<void>;
}

/** A BullMQ worker on the training queue; it never serves HTTP. */
export function startTrainingWorker(options: TrainingWorkerOptions): TrainingWorker {
  const connection = connectRedis(options.redisTarget, 'blocking');
  connection.on('error', (error) => options.logger.debug({ err: error }, 'worker Redis connection error'));
  const worker = new Worker<TrainingJobData>(trainingQueueName, async (job) => runJob(job.data.jobId, options), {
    connection,
    prefix: `${options.prefix}:bull`,
    concurrency: options.concurrency,
    // Training holds the event loop for a whole batch at a time; a generous lock keeps a slow
    // batch from being mistaken for a dead worker.
    lockDuration: 120_000,
    maxStalledCount: 1,
  });
  worker.on('failed', (job, error) => void recordQueueFailure(options.store, options.logger, job?.data.jobId, error));
  worker.on('error', (error) => options.logger.error({ err: error }, 'worker error'));
  return {
    worker,
    async close() {
      await worker.close(true);
      connection.disconnect();
    },
  };
}

/** A job that BullMQ itself gave up on (its worker died once too often) ends failed, not running. */
async function recordQueueFailure(store: JobStore, logger: Logger, jobId: string | undefined, error: Error): Promise<void> {
  if (!jobId) return;
  await store
    .transition(jobId, ['queued', 'running'], 'failed', { finishedAt: new Date().toISOString(), error: { message: error.message } })
    .catch((storeError: unknown) => logger.error({ err: storeError, jobId }, 'could not record failure'));
}
