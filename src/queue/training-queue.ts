import { Queue, type ConnectionOptions } from 'bullmq';

/** One queue, holding only job ids: the job's settings live in the JobStore, in one place. */
export const trainingQueueName = 'training';

export interface TrainingJobData {
  readonly jobId: string;
}

export function createTrainingQueue(connection: ConnectionOptions, prefix: string): Queue<TrainingJobData> {
  return new Queue<TrainingJobData>(trainingQueueName, { connection, prefix: `${prefix}:bull` });
}

export async function enqueueTraining(queue: Queue<TrainingJobData>, jobId: string): Promise<void> {
  await queue.add('train', { jobId }, { jobId, removeOnComplete: true, removeOnFail: 1000 });
}
