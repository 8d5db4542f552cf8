import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startService, type RunningService } from '../../src/service.ts';

/** The real Redis the tests use; each test service gets its own key prefix in it. */
export const testRedisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestService {
  readonly url: string;
  readonly config: Config;
  readonly service: RunningService;
  /** Stops the service and deletes its keys and files. */
  close(): Promise<void>;
}

/** A real service (API and worker unless ROLE says otherwise) on a free loopback port. */
export async function startTestService(
  environment: Record<string, string> = {},
  logDestination?: Writable,
): Promise<TestService> {
  const folder = await mkdtemp(path.join(tmpdir(), 'trainer-test-'));
  const config = loadConfig({
    REDIS_URL: testRedisUrl,
    KEY_PREFIX: `test-${randomUUID()}`,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: path.join(folder, 'data'),
    ARTIFACTS_DIR: path.join(folder, 'artifacts'),
    DATASETS_DIR: path.join(folder, 'datasets'),
    CHECKPOINTS_DIR: path.join(folder, 'checkpoints'),
    TRAINER_BACKEND: 'wasm',
    // One thread per job unless a test asks for replicas: starting them costs most of a second a
    // job, and the tests that are about them (worker faults, end to end) ask.
    TRAIN_THREADS: '1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Off unless a test sets it: every test client is 127.0.0.1, one client to the limit, and some
    // tests poll every 20 ms, past the default of 600 requests a minute.
    RATE_LIMIT_PER_MINUTE: '0',
    ...environment,
  });
  const service = await startService(config, createLogger(config, logDestination));
  return {
    url: service.url ?? '',
    config,
    service,
    async close() {
      await service.close();
      await deleteKeys(config.KEY_PREFIX);
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/**
 * What an API and the workers in other processes must agree on: the Redis and its key prefix,
 * and the folders of models, checkpoints and data sets, here all under `folder`.
 */
export function sharedEnvironment(folder: string, prefix: string): Record<string, string> {
  return {
    REDIS_URL: testRedisUrl,
    KEY_PREFIX: prefix,
    ARTIFACTS_DIR: path.join(folder, 'artifacts'),
    CHECKPOINTS_DIR: path.join(folder, 'checkpoints'),
    DATA_DIR: path.join(folder, 'data'),
    DATASETS_DIR: path.join(folder, 'datasets'),
    TRAINER_BACKEND: 'wasm',
    // As startTestService: one thread per job unless a test asks for replicas.
    TRAIN_THREADS: '1',
  };
}

export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(testRedisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface JsonResponse<T> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/** fetch that parses the JSON answer, for assertions on status and body together. */
export async function request<T = unknown>(
  url: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<JsonResponse<T>> {
  const { json, ...rest } = init;
  const response = await fetch(url, {
    ...rest,
    ...(json === undefined
      ? {}
      : { body: JSON.stringify(json), headers: { 'content-type': 'application/json', ...rest.headers } }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : null) as T };
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | null | undefined>,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
