import { Queue, type ConnectionOptions } from 'bullmq';
import { queueKeyPrefix } from './training-queue.ts';

/** Webhook deliveries waiting for their next attempt, apart from training so that no receiver can hold up a job. */
export const webhookQueueName = 'webhooks';

/**
 * One delivery: of a training job as it ended (`jobId`), or of an experiment once its last run
 * ended (`experimentId`). The record named holds the webhook's URL and secret, never copied here.
 */
export type WebhookJobData = {
  /** The Webhook-Id, also the BullMQ job id: a delivery queued twice is queued once. */
  readonly deliveryId: string;
  /** What every attempt sends: the job or the experiment as it was when it ended. */
  readonly body: string;
} & ({ readonly jobId: string } | { readonly experimentId: string });

/** WEBHOOK_FIRST_RETRY_MS and WEBHOOK_RETRY_FOR_SECONDS. */
export interface RetrySchedule {
  readonly firstRetryMs: number;
  readonly retryForSeconds: number;
}

/**
 * Attempts in all (the first and its retries) with BullMQ's exponential backoff (the k-th retry
 * waits firstRetryMs × 2^(k-1)) while the next retry starts within retryForSeconds of the first
 * attempt, not counting the attempts' own durations.
 */
export function deliveryAttempts({ firstRetryMs, retryForSeconds }: RetrySchedule): number {
  let attempts = 1;
  for (let waited = firstRetryMs; waited <= retryForSeconds * 1000; waited += firstRetryMs * 2 ** (attempts - 1))
    attempts += 1;
  return attempts;
}

export function createWebhookQueue(connection: ConnectionOptions, prefix: string): Queue<WebhookJobData> {
  return new Queue<WebhookJobData>(webhookQueueName, { connection, prefix: queueKeyPrefix(prefix) });
}

export async function enqueueWebhook(
  queue: Queue<WebhookJobData>,
  data: WebhookJobData,
  schedule: RetrySchedule,
): Promise<void> {
  await queue.add('deliver', data, {
    jobId: data.deliveryId,
    attempts: deliveryAttempts(schedule),
    backoff: { type: 'exponential', delay: schedule.firstRetryMs },
    removeOnComplete: true,
    removeOnFail: 1000,
  });
}
