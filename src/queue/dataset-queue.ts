import { Queue, type ConnectionOptions } from 'bullmq';
import type { DatasetStore } from '../store/dataset-store.ts';
import { queueKeyPrefix, queueMissing } from './training-queue.ts';

/** Uploaded archives waiting to be turned into data sets; ids only, the rest is in the DatasetStore. */
export const datasetQueueName = 'datasets';

export interface DatasetJobData {
  readonly datasetId: string;
}

export function createDatasetQueue(connection: ConnectionOptions, prefix: string): Queue<DatasetJobData> {
  return new Queue<DatasetJobData>(datasetQueueName, { connection, prefix: queueKeyPrefix(prefix) });
}

export async function enqueueDataset(queue: Queue<DatasetJobData>, datasetId: string): Promise<void> {
  await queue.add('process', { datasetId }, { jobId: datasetId, removeOnComplete: true, removeOnFail: 1000 });
}

/** Queues every data set recorded as processing that the queue lacks (an API process died in between), as requeueOrphans does for jobs. */
export async function requeueDatasetOrphans(queue: Queue<DatasetJobData>, store: DatasetStore): Promise<string[]> {
  return queueMissing(queue, await store.processingIds(), (id) => enqueueDataset(queue, id));
}
