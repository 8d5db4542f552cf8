/**
 * The retention sweep (JOB_RETENTION_DAYS) on real Redis, with two sweepers on one store as two
 * API processes would run them: only jobs that ended before the cut-off go, with their models;
 * live jobs and recent ones stay; one sweeper sweeps per interval.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { JobRemoval } from '../../src/api/job-removal.ts';
import { Predictor } from '../../src/api/predictor.ts';
import { RetentionSweep } from '../../src/api/retention.ts';
import { createTrainingQueue } from '../../src/queue/training-queue.ts';
import { ExperimentStore } from '../../src/store/experiment-store.ts';
import { JobStore } from '../../src/store/job-store.ts';
import { storedJobSettings } from '../support/job-settings.ts';
import { deleteKeys, testRedisUrl } from '../support/service.ts';

const progress = { epoch: 0, epochs: 1, batch: 0, batchesPerEpoch: 10, fraction: 0 };
const day = 86_400_000;

describe('the retention sweep', () => {
  const prefix = `test-${randomUUID()}`;
  let folder: string;
  let redis: Redis;
  let store: JobStore;
  let experiments: ExperimentStore;
  const closers: (() => Promise<unknown>)[] = [];

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-retention-'));
    redis = new Redis(testRedisUrl);
    store = new JobStore(redis, prefix);
    experiments = new ExperimentStore(redis, prefix);
  });

  after(async () => {
    for (const close of closers) await close();
    await deleteKeys(prefix);
    redis.disconnect();
    await rm(folder, { recursive: true, force: true });
  });

  /** One API process's sweeper: its own queue and model cache, the shared store and folders. */
  function sweeper(retentionDays: number): RetentionSweep {
    const queue = createTrainingQueue(redis, prefix);
    closers.push(() => queue.close());
    const removal = new JobRemoval(
      store,
      queue,
      new Predictor(path.join(folder, 'artifacts'), 1, 1),
      path.join(folder, 'artifacts'),
      path.join(folder, 'checkpoints'),
    );
    return new RetentionSweep({
      redis,
      store,
      experiments,
      removal,
      retentionDays,
      intervalMs: 60_000,
      log: pino({ level: 'silent' }),
    });
  }

  /** A job that ended (cancelled) `daysAgo` days ago, with a model folder; or one still running. */
  async function job(daysAgo: number | 'running', experimentId?: string): Promise<string> {
    const id = randomUUID();
    await store.create(id, storedJobSettings, progress, new Date(), undefined, undefined, experimentId);
    await store.lifecycle.start(id, new Date());
    if (daysAgo !== 'running') {
      assert.ok((await store.lifecycle.cancel(id, new Date(Date.now() - daysAgo * day))).ok);
      await mkdir(path.join(folder, 'artifacts', id), { recursive: true });
    }
    return id;
  }

  it('removes only the jobs that ended before the cut-off, with their models; one of two processes sweeps', async () => {
    const old = await Promise.all([40, 31, 30.5].map((days) => job(days)));
    const kept = await Promise.all([29, 0].map((days) => job(days)));
    const running = await job('running');
    const [first, second] = [sweeper(30), sweeper(30)];
    const swept = await Promise.all([first.sweep(), second.sweep()]);
    assert.deepEqual(
      swept.map((outcome) => outcome?.jobs ?? null).sort(),
      [3, null],
      'one sweeper removed the three old jobs, the other found the lock taken',
    );
    for (const id of old) assert.equal(await store.state(id), null);
    for (const id of [...kept, running]) assert.notEqual(await store.state(id), null);
    assert.deepEqual(
      (await readdir(path.join(folder, 'artifacts'))).sort(),
      [...kept].sort(),
      'the old models are gone, the recent ones kept',
    );
    assert.deepEqual(
      (await store.list({ limit: 10 })).jobs.map((listed) => listed.id).sort(),
      [...kept, running].sort(),
    );
    // The lock holds for the interval: a sweep a moment later, in either process, does nothing.
    assert.equal(await first.sweep(), null);
    // A day later (the lock gone), the job that was 29 days old goes too; the running one stays.
    await redis.del(store.keys.sweepLock());
    assert.deepEqual(await second.sweep(new Date(Date.now() + 1.5 * day)), { jobs: 1, experiments: 0 });
    assert.equal(await store.state(kept[0] ?? ''), null);
    assert.equal(await store.state(running), 'running');
  });

  it('removes an experiment created before the cut-off once none of its runs is left, and keeps the others', async () => {
    const experiment = async (daysAgo: number, runDays: (number | 'running')[]) => {
      const id = randomUUID();
      const runs = await Promise.all(runDays.map((days) => job(days, id)));
      await experiments.create(id, {
        name: null,
        base: {},
        grid: { seed: runs.map((_, seed) => seed) },
        metric: 'testAccuracy',
        earlyTermination: null,
        runs: runs.map((run, seed) => ({ id: run, values: { seed } })),
        createdAt: new Date(Date.now() - daysAgo * day),
      });
      return id;
    };
    const swept = await experiment(40, [35, 32]);
    const partlySwept = await experiment(40, [35, 10]);
    const recent = await experiment(20, [19]);
    const stillRunning = await experiment(40, ['running']);
    await redis.del(store.keys.sweepLock());
    assert.deepEqual(await sweeper(30).sweep(), { jobs: 3, experiments: 1 });
    assert.equal(await experiments.get(swept), null, 'every run swept: the experiment goes too');
    assert.deepEqual((await experiments.get(partlySwept))?.runs.length, 1, 'one run left: it stays, with that run');
    for (const id of [recent, stillRunning]) assert.notEqual(await experiments.get(id), null);
    assert.ok(!(await experiments.list({ limit: 100 })).experiments.some((listed) => listed.id === swept));
  });
});
