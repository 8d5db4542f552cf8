import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface EmbeddedRedis {
  readonly socketPath: string;
  /** Stops the server if this process started it. */
  stop(): Promise<void>;
}

/**
 * A private Redis for a single-host install with no REDIS_URL: it listens only on a unix socket in
 * DATA_DIR and keeps an append-only file there, so queued jobs survive a restart. A second process
 * with the same DATA_DIR (ROLE=worker beside ROLE=api) finds the socket answering and shares it.
 */
export async function startEmbeddedRedis(dataDir: string, logger: Logger): Promise<EmbeddedRedis> {
  const folder = path.resolve(dataDir, 'redis');
  const socketPath = embeddedRedisSocket(dataDir);
  await mkdir(folder, { recursive: true });
  if (await answers(socketPath)) {
    logger.info({ socketPath }, 'using the embedded Redis another process started');
    return { socketPath, stop: async () => undefined };
  }
  const server = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socketPath,
      '--unixsocketperm',
      '700',
      '--dir',
      folder,
      '--appendonly',
      'yes',
      '--save',
      '',
    ],
    // A process group of its own: Ctrl-C signals the terminal's whole foreground group, and Redis
    // must outlive the workers' shutdown (they checkpoint and hand their jobs back through it).
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  // stop() ends it after the workers; a process that exits without stop() (a second signal) must not leave it running.
  process.once('exit', () => {
    if (server.exitCode === null) server.kill('SIGTERM');
  });
  const failed = new Promise<never>((_, reject) => {
    server.once('error', (error) =>
      reject(
        new Error(
          `no REDIS_URL is set and redis-server could not be started (${error.message}): install Redis or set REDIS_URL`,
        ),
      ),
    );
    server.once('exit', (code) =>
      reject(new Error(`the embedded redis-server exited with code ${code}; set REDIS_URL to use another Redis`)),
    );
  });
  const deadline = Date.now() + 10_000;
  while (!(await Promise.race([answers(socketPath), failed]))) {
    if (Date.now() > deadline) throw new Error(`the embedded redis-server did not answer on ${socketPath} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  failed.catch(() => undefined);
  logger.info({ socketPath }, 'started an embedded Redis (set REDIS_URL to use your own)');
  return { socketPath, stop: () => stopServer(server) };
}

/** Where the embedded Redis of DATA_DIR listens. */
export function embeddedRedisSocket(dataDir: string): string {
  return path.join(path.resolve(dataDir, 'redis'), 'redis.sock');
}

async function answers(socketPath: string): Promise<boolean> {
  const probe = new Redis({ path: socketPath, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function stopServer(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    server.once('exit', () => resolve());
    server.kill('SIGTERM');
  });
}
