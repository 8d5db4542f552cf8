import type { Redis } from 'ioredis';
import type { JobWebhook, WebhookDelivery } from '../contract/webhook.ts';
import { decodeWebhook } from './records.ts';
import { runScript } from './scripts.ts';

/** A webhook with its secret and its deliveries so far: what whoever delivers it needs. */
export type WebhookTarget = JobWebhook & { readonly secret: string };

/**
 * Whatever keeps webhooks in its records (jobs, experiments): each record is a hash with the
 * fields webhookUrl, webhookSecret and webhookDeliveries, so that one script appends to either.
 */
export interface WebhookRecords {
  /** Null when the record has no webhook (or is unknown). */
  webhookTarget(id: string): Promise<WebhookTarget | null>;
  /** Adds one delivery attempt: false when the record (or its webhook) is gone. */
  recordWebhookDelivery(id: string, delivery: WebhookDelivery): Promise<boolean>;
}

export async function readWebhookTarget(redis: Redis, key: string): Promise<WebhookTarget | null> {
  const [url, secret, deliveries] = await redis.hmget(key, 'webhookUrl', 'webhookSecret', 'webhookDeliveries');
  return url && secret ? { ...decodeWebhook(url, deliveries), secret } : null;
}

export async function appendWebhookDelivery(redis: Redis, key: string, delivery: WebhookDelivery): Promise<boolean> {
  return (await runScript(redis, 'recordWebhookDelivery', [key], [JSON.stringify(delivery)])) === 1;
}
