import { Worker } from 'bullmq';
import { connectRedis, type RedisTarget } from '../store/connection.ts';
import { datasetQueueName, type DatasetJobData } from '../queue/dataset-queue.ts';
import { queueKeyPrefix } from '../queue/training-queue.ts';
import {
  processDatasetJob,
  removeStaleDatasetFolders,
  uploadedArchive,
  type DatasetJobDependencies,
} from './process-dataset-job.ts';
import { rm } from 'node:fs/promises';

export interface DatasetWorkerOptions extends DatasetJobDependencies {
  readonly redisTarget: RedisTarget;
  readonly prefix: string;
  readonly lockSeconds: number;
}

/** A BullMQ worker on the data set queue, one archive at a time, beside the training worker. */
export function startDatasetWorker(options: DatasetWorkerOptions): { close(): Promise<void> } {
  const connection = connectRedis(options.redisTarget, 'blocking');
  connection.on('error', (error) => options.logger.debug({ err: error }, 'data set worker Redis connection error'));
  const lockDuration = options.lockSeconds * 1000;
  const worker = new Worker<DatasetJobData>(
    datasetQueueName,
    async (job) => processDatasetJob(job.data.datasetId, options),
    {
      connection,
      prefix: queueKeyPrefix(options.prefix),
      concurrency: 1,
      lockDuration,
      stalledInterval: Math.min(30_000, lockDuration),
      maxStalledCount: 1,
    },
  );
  // The queue gave up on it (its worker died twice): it ends failed, not processing for ever.
  worker.on('failed', (job, error) => {
    const id = job?.data.datasetId;
    if (!id) return;
    void options.store
      .markFailed(id, `processing was interrupted twice (${error.message}); upload it again`)
      .then(() => rm(uploadedArchive(options.root, id), { force: true }))
      .catch((storeError: unknown) =>
        options.logger.error({ err: storeError, datasetId: id }, 'could not record the failure'),
      );
  });
  worker.on('error', (error) => options.logger.error({ err: error }, 'data set worker error'));
  void removeStaleDatasetFolders(options.store, options.root).catch((error: unknown) =>
    options.logger.warn({ err: error }, 'could not look for stale data set folders'),
  );
  return {
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}
