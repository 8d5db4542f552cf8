import type { Redis } from 'ioredis';

export type RateLimitOutcome = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * A fixed one-minute window per client, counted in Redis (INCR of a key per client and minute,
 * which expires soon after its minute), so that every API process sharing the Redis enforces one limit together.
 */
export async function checkRateLimit(
  redis: Redis,
  prefix: string,
  client: string,
  perMinute: number,
  now = Date.now(),
): Promise<RateLimitOutcome> {
  const window = Math.floor(now / 60_000);
  const key = `${prefix}:ratelimit:${client}:${window}`;
  const replies = await redis.multi().incr(key).expire(key, 120).exec();
  const [error, count] = replies?.[0] ?? [new Error('no reply from Redis'), 0];
  if (error) throw error;
  if (Number(count) <= perMinute) return { allowed: true };
  const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
  return { allowed: false, retryAfterSeconds };
}
