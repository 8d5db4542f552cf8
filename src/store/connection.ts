import { Redis, type RedisOptions } from 'ioredis';

/** Where Redis is: a URL, or the unix socket of the embedded server. */
export type RedisTarget = { readonly url: string } | { readonly socketPath: string };

export function describeTarget(target: RedisTarget): string {
  return 'url' in target ? maskPassword(target.url) : `unix:${target.socketPath}`;
}

/**
 * `blocking` connections are workers' (BullMQ's own and the worker's job store): their commands
 * wait as long as Redis is away and go through once it is back, so a restart of Redis only pauses
 * training. `request` connections belong to request handlers, which must fail at once (and answer
 * 503) instead of queueing commands forever.
 */
export function connectRedis(target: RedisTarget, use: 'blocking' | 'request'): Redis {
  const options: RedisOptions =
    use === 'blocking'
      ? { maxRetriesPerRequest: null }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000 };
  const base: RedisOptions = {
    ...options,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  };
  return 'url' in target ? new Redis(target.url, base) : new Redis({ ...base, path: target.socketPath });
}

/** Resolves when Redis answers PING, or rejects with one readable line. */
export async function waitUntilReachable(redis: Redis, target: RedisTarget, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    try {
      if (redis.status === 'ready' && (await redis.ping()) === 'PONG') return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Redis is not reachable at ${describeTarget(target)} (${lastError}): start Redis or set REDIS_URL`);
}

/** The URL with its password, if any, shown as ***: fit for a log line or an error message. */
function maskPassword(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
