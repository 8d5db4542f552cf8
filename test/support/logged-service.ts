import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startService } from '../../src/service.ts';
import { deleteKeys, testRedisUrl, type TestService } from './service.ts';

export interface LoggedTestService extends TestService {
  /** Every log line the service wrote so far, as written (JSON text). */
  readonly lines: string[];
}

/** Like startTestService, with the service's log (level info unless given) kept in memory for the test to read. */
export async function startLoggedTestService(environment: Record<string, string> = {}): Promise<LoggedTestService> {
  const folder = await mkdtemp(path.join(tmpdir(), 'trainer-test-'));
  const config = loadConfig({
    REDIS_URL: testRedisUrl,
    KEY_PREFIX: `test-${randomUUID()}`,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: path.join(folder, 'data'),
    ARTIFACTS_DIR: path.join(folder, 'artifacts'),
    TRAINER_BACKEND: 'wasm',
    LOG_LEVEL: 'info',
    ...environment,
  });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter((line) => line !== ''));
      callback();
    },
  });
  const service = await startService(config, createLogger(config, sink));
  return {
    url: service.url ?? '',
    config,
    service,
    lines,
    async close() {
      await service.close();
      await deleteKeys(config.KEY_PREFIX);
      await rm(folder, { recursive: true, force: true });
    },
  };
}
