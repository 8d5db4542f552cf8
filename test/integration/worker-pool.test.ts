import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import { clientOf, submitJob } from '../support/jobs.ts';
import { startServiceProcess, type ServiceProcess } from '../support/processes.ts';
import { sharedEnvironment, startTestService, waitFor, type TestService } from '../support/service.ts';

/** Long enough (minutes) that a second job could only start beside it, never after it, within the test. */
const longJob: JobRequestInput = { model: 'lenet5', dataset: 'mnist', epochs: 20 };

/** Pids of the pool's children that said they are waiting for jobs (the pool's own process never does). */
function readyWorkers(pool: ServiceProcess): number[] {
  const pids = pool.logs
    .filter((line) => line.msg === 'worker waiting for training jobs')
    .map((line) => line.pid as number);
  return [...new Set(pids)].filter((pid) => pid !== pool.child.pid);
}

/** The pid of the process that started training `jobId`, from its log line. */
function trainerOf(pool: ServiceProcess, jobId: string): number | undefined {
  return pool.logs.find((line) => line.msg === 'training' && line.jobId === jobId)?.pid as number | undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** After a failed test too: the pool, then any child of it still there. */
async function stopAll(pool: ServiceProcess | undefined): Promise<void> {
  if (!pool) return;
  await pool.stop('SIGTERM');
  for (const pid of readyWorkers(pool)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

/**
 * Both jobs `running` in the same poll: their running intervals overlap. With the jobs in one
 * process the second would stay queued for the minutes the first trains, and this times out.
 */
async function waitUntilBothRunning(url: string, ids: string[]): Promise<void> {
  const client = clientOf(url);
  await waitFor(
    'both jobs running at once',
    async () => {
      const states = await Promise.all(ids.map(async (id) => (await client.job(id)).state));
      assert.ok(
        states.every((state) => state === 'queued' || state === 'running'),
        `a job ended early: ${states.join(', ')}`,
      );
      return states.every((state) => state === 'running') ? true : null;
    },
    120_000,
    200,
  );
}

async function cancelAll(url: string, ids: string[]): Promise<void> {
  const client = clientOf(url);
  for (const id of ids) await client.cancel(id);
}

describe('WORKER_CONCURRENCY=2: a pool of two worker processes', () => {
  describe('on REDIS_URL, beside a separate API', () => {
    const prefix = `test-${randomUUID()}`;
    let folder: string;
    let api: TestService;
    let pool: ServiceProcess;

    before(async () => {
      folder = await mkdtemp(path.join(tmpdir(), 'trainer-pool-'));
      const shared = sharedEnvironment(folder, prefix);
      api = await startTestService({ ...shared, ROLE: 'api' });
      pool = startServiceProcess({ ...shared, ROLE: 'worker', WORKER_CONCURRENCY: '2' });
    });

    after(async () => {
      await stopAll(pool);
      await api?.close();
      await rm(folder, { recursive: true, force: true });
    });

    it('restarts a child that dies, trains two jobs at once in different processes, and stops its children on SIGTERM', async () => {
      const [first, second] = await waitFor('two worker processes', async () => {
        const pids = readyWorkers(pool);
        return pids.length >= 2 ? pids : null;
      });
      assert.ok(first !== undefined && second !== undefined);
      const backendLines = pool.logs.filter((line) => /^TensorFlow\.js runs on/.test(String(line.msg)));
      assert.ok(backendLines.length >= 2, 'each child starts a backend');
      assert.ok(
        !backendLines.some((line) => line.pid === pool.child.pid),
        "the pool's parent, which trains nothing, starts no backend",
      );

      process.kill(first, 'SIGKILL');
      const replacement = await waitFor('a replacement worker process', async () =>
        readyWorkers(pool).find((pid) => pid !== first && pid !== second),
      );
      assert.ok(!isAlive(first));
      assert.ok(
        pool.logs.some(
          (line) => line.msg === 'worker process ended unexpectedly; restarting it' && line.workerPid === first,
        ),
      );

      const ids = [
        (await submitJob(api.url, { ...longJob, seed: 1 })).id,
        (await submitJob(api.url, { ...longJob, seed: 2 })).id,
      ];
      await waitUntilBothRunning(api.url, ids);
      const trainers = await waitFor('both training log lines', async () => {
        const pids = ids.map((id) => trainerOf(pool, id));
        return pids.every((pid) => pid !== undefined) ? (pids as number[]) : null;
      });
      assert.notEqual(trainers[0], trainers[1], 'the two jobs trained in one process');
      assert.deepEqual([...trainers].sort(), [second, replacement].sort(), 'the jobs ran in the live children');

      await cancelAll(api.url, ids);
      assert.equal(await pool.stop('SIGTERM'), 0);
      for (const pid of [second, replacement]) assert.ok(!isAlive(pid), `worker process ${pid} outlived the pool`);
    });
  });

  describe('with the embedded Redis (no REDIS_URL), API in the same process', () => {
    let folder: string;
    let service: ServiceProcess;

    before(async () => {
      folder = await mkdtemp(path.join(tmpdir(), 'trainer-pool-embedded-'));
      service = startServiceProcess({
        ROLE: 'all',
        WORKER_CONCURRENCY: '2',
        PORT: '0',
        DATA_DIR: path.join(folder, 'data'),
        ARTIFACTS_DIR: path.join(folder, 'artifacts'),
        CHECKPOINTS_DIR: path.join(folder, 'checkpoints'),
        TRAINER_BACKEND: 'wasm',
        RATE_LIMIT_PER_MINUTE: '0',
      });
    });

    after(async () => {
      await stopAll(service);
      await rm(folder, { recursive: true, force: true });
    });

    it('children share the private Redis on its unix socket and train two jobs at once', async () => {
      const url = await waitFor('the API', async () => {
        const line = service.logs.find(
          (entry) => typeof entry.msg === 'string' && entry.msg.startsWith('API listening on '),
        );
        return typeof line?.msg === 'string' ? line.msg.slice('API listening on '.length) : null;
      });
      const children = await waitFor('two worker processes', async () => {
        const pids = readyWorkers(service);
        return pids.length >= 2 ? pids : null;
      });
      assert.ok(
        service.logs.filter((line) => line.msg === 'using the embedded Redis another process started').length >= 2,
        'each child uses the Redis the parent started',
      );

      const ids = [
        (await submitJob(url, { ...longJob, seed: 3 })).id,
        (await submitJob(url, { ...longJob, seed: 4 })).id,
      ];
      await waitUntilBothRunning(url, ids);
      const trainers = await waitFor('both training log lines', async () => {
        const pids = ids.map((id) => trainerOf(service, id));
        return pids.every((pid) => pid !== undefined) ? (pids as number[]) : null;
      });
      assert.notEqual(trainers[0], trainers[1], 'the two jobs trained in one process');
      for (const pid of trainers)
        assert.ok(children.includes(pid), `job trained outside the pool's children (pid ${pid})`);

      await cancelAll(url, ids);
      assert.equal(await service.stop('SIGTERM'), 0);
      for (const pid of children) assert.ok(!isAlive(pid), `worker process ${pid} outlived the service`);
    });
  });
});
