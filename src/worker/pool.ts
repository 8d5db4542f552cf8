import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';

/**
 * WORKER_CONCURRENCY > 1: that many worker processes, each training one job at a time.
 *
 * The WebAssembly backend computes on one thread, and a training step holds the event loop for
 * its whole length, so jobs sharing one process take turns on one core. Separate processes train
 * on separate cores. Each child is `src/main.ts` with ROLE=worker and WORKER_CONCURRENCY=1, the
 * same worker as any other, so it shares the queue, the job store and (without REDIS_URL) the
 * embedded Redis through DATA_DIR exactly as a worker started by hand would.
 */
export interface WorkerPool {
  /** Stops every child (SIGTERM, unless a signal was already passed on) and resolves once all have exited. */
  close(): Promise<void>;
}

const entryPoint = path.resolve(import.meta.dirname, '../main.ts');
// Absolute, so the children load TypeScript whatever their working directory and however this
// process was started (the tsx command, `node --import tsx`, a test runner).
const typeScriptLoader = import.meta.resolve('tsx');

/** A child that lived at least this long before crashing starts over without waiting. */
const healthyRunMs = 60_000;
const maxRestartDelayMs = 30_000;

/** The settings as environment variables again, so each child parses exactly what this process runs with. */
function environmentOf(config: Config): Record<string, string> {
  const entries = Object.entries(config).filter(([, value]) => value !== undefined);
  return Object.fromEntries(entries.map(([name, value]) => [name, String(value)]));
}

interface Slot {
  child: ChildProcess | null;
  startedAt: number;
  crashesInARow: number;
  restartTimer: NodeJS.Timeout | null;
}

export function startWorkerPool(config: Config, size: number, logger: Logger): WorkerPool {
  const environment = { ...process.env, ...environmentOf(config), ROLE: 'worker', WORKER_CONCURRENCY: '1' };
  const slots: Slot[] = Array.from({ length: size }, () => ({
    child: null,
    startedAt: 0,
    crashesInARow: 0,
    restartTimer: null,
  }));
  const exits = new Map<ChildProcess, Promise<void>>();
  let stopping = false;

  const start = (slot: Slot, index: number) => {
    slot.restartTimer = null;
    // A process group of its own: Ctrl-C in a terminal reaches only this process, which passes the
    // signal on once, instead of each child getting it twice.
    const child = spawn(process.execPath, ['--import', typeScriptLoader, entryPoint], {
      env: environment,
      stdio: 'inherit',
      detached: true,
    });
    slot.child = child;
    slot.startedAt = Date.now();
    exits.set(
      child,
      new Promise((resolve) => {
        child.once('error', (error) => logger.error({ err: error, worker: index }, 'could not start a worker process'));
        child.once('close', (code, signal) => {
          exits.delete(child);
          if (slot.child === child) slot.child = null;
          resolve();
          if (stopping) return;
          // A child that keeps failing at start (Redis gone, a broken install) is retried ever
          // more slowly instead of in a tight loop.
          slot.crashesInARow = Date.now() - slot.startedAt >= healthyRunMs ? 1 : slot.crashesInARow + 1;
          const delayMs = Math.min(maxRestartDelayMs, 1000 * 2 ** (slot.crashesInARow - 1));
          logger.error(
            { worker: index, workerPid: child.pid, code, signal, restartInMs: delayMs },
            'worker process ended unexpectedly; restarting it',
          );
          slot.restartTimer = setTimeout(() => start(slot, index), delayMs);
        });
      }),
    );
  };

  const running = () =>
    slots.flatMap((slot) =>
      slot.child && slot.child.exitCode === null && slot.child.signalCode === null ? [slot.child] : [],
    );
  const signalled = new WeakSet<ChildProcess>();
  const send = (child: ChildProcess, signal: NodeJS.Signals) => {
    signalled.add(child);
    child.kill(signal);
  };
  const stopRestarting = () => {
    stopping = true;
    for (const slot of slots) if (slot.restartTimer) clearTimeout(slot.restartTimer);
  };
  // Each child gets one signal and shuts down as a worker does: its running job checkpoints and
  // goes back to the queue. A second signal makes main.ts exit at once, and then `exit` below
  // passes that on, so the children stop at once too.
  const signalRest = (signal: NodeJS.Signals) => {
    stopRestarting();
    for (const child of running()) if (!signalled.has(child)) send(child, signal);
  };
  // Exiting with children still running means not waiting for them (a second signal, a crash):
  // they must stop too, not train on unsupervised.
  const stopAll = () => {
    for (const child of running()) send(child, 'SIGTERM');
  };
  process.on('SIGINT', signalRest);
  process.on('SIGTERM', signalRest);
  process.on('exit', stopAll);

  slots.forEach(start);
  logger.info(
    { processes: size, workerPids: slots.map((slot) => slot.child?.pid) },
    'worker pool started: one training process per job',
  );

  return {
    async close() {
      signalRest('SIGTERM');
      await Promise.all(exits.values());
      process.off('SIGINT', signalRest);
      process.off('SIGTERM', signalRest);
      process.off('exit', stopAll);
    },
  };
}
