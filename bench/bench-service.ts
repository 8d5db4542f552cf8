import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TrainerClient } from '../src/client/index.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { startService } from '../src/service.ts';

export interface BenchServiceOptions {
  readonly backend: string;
  readonly cifarPath: string | undefined;
  /** More settings, e.g. WORKER_CONCURRENCY. */
  readonly environment?: Record<string, string>;
}

/**
 * Runs `use` against a real service (API and workers, a private Redis) in a fresh folder, fed
 * through its HTTP client as a user would, and removes the folder afterwards.
 */
export async function withBenchService<T>(
  options: BenchServiceOptions,
  use: (client: TrainerClient, config: Config) => Promise<T>,
): Promise<T> {
  const folder = await mkdtemp(path.join(tmpdir(), 'trainer-bench-'));
  const config = loadConfig({
    ROLE: 'all',
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: path.join(folder, 'data'),
    ARTIFACTS_DIR: path.join(folder, 'artifacts'),
    CHECKPOINTS_DIR: path.join(folder, 'checkpoints'),
    TRAINER_BACKEND: options.backend,
    RATE_LIMIT_PER_MINUTE: '0',
    // Errors only: the open-API warning of every start would bury the table.
    LOG_LEVEL: 'error',
    ...(options.cifarPath ? { CIFAR10_PATH: options.cifarPath } : {}),
    ...options.environment,
  });
  const service = await startService(config, createLogger(config));
  try {
    return await use(new TrainerClient(service.url ?? ''), config);
  } finally {
    await service.close();
    await rm(folder, { recursive: true, force: true });
  }
}
