import { WaitingError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { JobStore } from '../store/job-store.ts';
import { connectRedis, type RedisTarget } from '../store/connection.ts';
import { queueKeyPrefix, trainingQueueName, type TrainingJobData } from '../queue/training-queue.ts';
import { processTrainingJob, type TrainingJobDependencies } from './process-training-job.ts';

export interface TrainingWorkerOptions extends Omit<TrainingJobDependencies, 'shuttingDown'> {
  readonly redisTarget: RedisTarget;
  readonly prefix: string;
  readonly concurrency: number;
  /** How long a job stays with a worker that stopped renewing its lock before another takes it over. */
  readonly lockSeconds: number;
  /** Take-overs of one job (its worker died) before BullMQ gives up on it, and the job fails. */
  readonly maxTakeovers: number;
}

export interface TrainingWorker {
  readonly worker: Worker<TrainingJobData>;
  /**
   * Stops taking jobs, has each running job checkpoint after its current batch and go back to
   * the queue, waits for that, and closes the worker's Redis connection (BullMQ leaves it to its owner).
   */
  close(): Promise<void>;
}

/** A BullMQ worker on the training queue; it never serves HTTP. */
export function startTrainingWorker(options: TrainingWorkerOptions): TrainingWorker {
  const connection = connectRedis(options.redisTarget, 'blocking');
  connection.on('error', (error) => options.logger.debug({ err: error }, 'worker Redis connection error'));
  let shuttingDown = false;
  const dependencies: TrainingJobDependencies = { ...options, shuttingDown: () => shuttingDown };
  const lockDuration = options.lockSeconds * 1000;
  const worker = new Worker<TrainingJobData>(
    trainingQueueName,
    async (job, token) => {
      const outcome = await processTrainingJob(job.data.jobId, dependencies);
      if (outcome === 'handedBack') {
        // Back to waiting, for the next worker: without this BullMQ would count the job as done.
        await job.moveToWait(token);
        throw new WaitingError();
      }
    },
    {
      connection,
      prefix: queueKeyPrefix(options.prefix),
      concurrency: options.concurrency,
      // Training holds the event loop for a whole batch at a time, which delays lock renewals: the
      // lock must outlast the slowest batch, or a busy worker would be taken for a dead one.
      lockDuration,
      stalledInterval: Math.min(30_000, lockDuration),
      maxStalledCount: options.maxTakeovers,
    },
  );
  worker.on('failed', (job, error) => void recordQueueFailure(options.store, options.logger, job?.data.jobId, error));
  void removeStaleCheckpoints(options).catch((error: unknown) =>
    options.logger.warn({ err: error }, 'could not look for stale checkpoints'),
  );
  worker.on('error', (error) => options.logger.error({ err: error }, 'worker error'));
  return {
    worker,
    async close() {
      shuttingDown = true;
      await worker.close();
      connection.disconnect();
    },
  };
}

/** A job that BullMQ itself gave up on (its worker died once too often) ends failed, not running. */
async function recordQueueFailure(
  store: JobStore,
  logger: Logger,
  jobId: string | undefined,
  error: Error,
): Promise<void> {
  if (!jobId) return;
  await store.lifecycle
    .giveUp(jobId, error.message)
    .catch((storeError: unknown) => logger.error({ err: storeError, jobId }, 'could not record failure'));
}

/**
 * Deletes the checkpoints of jobs that have ended or are gone. A job cancelled while it waited
 * after a hand-back never reaches a worker again, and a worker may die between a job's end and
 * the removal of its checkpoint; an AlexNet checkpoint is 450 MB, too much to leave lying about.
 */
async function removeStaleCheckpoints({ checkpoints, store, logger }: TrainingWorkerOptions): Promise<void> {
  for (const jobId of await checkpoints.jobIds()) {
    const state = await store.state(jobId);
    if (state === 'queued' || state === 'running') continue;
    await checkpoints.remove(jobId);
    logger.info({ jobId, state }, 'removed the checkpoint of a job that has ended');
  }
}
