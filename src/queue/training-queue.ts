import { Queue, type ConnectionOptions } from 'bullmq';
import type { JobStore } from '../store/job-store.ts';

/** One queue, holding only job ids: the job's settings live in the JobStore, in one place. */
export const trainingQueueName = 'training';

/** What BullMQ's own keys start with (the job store's are named by JobKeys): the queue and its workers must agree on it. */
export function queueKeyPrefix(prefix: string): string {
  return `${prefix}:bull`;
}

export interface TrainingJobData {
  readonly jobId: string;
}

export function createTrainingQueue(connection: ConnectionOptions, prefix: string): Queue<TrainingJobData> {
  return new Queue<TrainingJobData>(trainingQueueName, { connection, prefix: queueKeyPrefix(prefix) });
}

export async function enqueueTraining(queue: Queue<TrainingJobData>, jobId: string): Promise<void> {
  await queue.add('train', { jobId }, { jobId, removeOnComplete: true, removeOnFail: 1000 });
}

/**
 * Queues every job the store holds as `queued` that the queue lacks, and returns their ids: an API
 * process that died between recording a job and queueing it leaves one, which no worker would
 * ever see. Safe beside other API processes: queueing a job id the queue holds does nothing.
 */
export async function requeueOrphans(queue: Queue<TrainingJobData>, store: JobStore): Promise<string[]> {
  return queueMissing(queue, await store.idsIn('queued'), (id) => enqueueTraining(queue, id));
}

/** Queues, with `enqueue`, each of `ids` that `queue` doesn't hold; returns those it queued. */
export async function queueMissing(
  queue: Queue,
  ids: readonly string[],
  enqueue: (id: string) => Promise<void>,
): Promise<string[]> {
  const missing: string[] = [];
  for (const id of ids) {
    if (await queue.getJob(id)) continue;
    await enqueue(id);
    missing.push(id);
  }
  return missing;
}
