import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { submitJob, waitForEnd } from '../support/jobs.ts';
import { startServiceProcess, type ServiceProcess } from '../support/processes.ts';
import { sharedEnvironment, startTestService, type TestService } from '../support/service.ts';

describe('two worker processes on one Redis', () => {
  const prefix = `test-${randomUUID()}`;
  let folder: string;
  let api: TestService;
  let workers: ServiceProcess[] = [];

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-workers-'));
    const shared = sharedEnvironment(folder, prefix);
    api = await startTestService({ ...shared, ROLE: 'api' });
    // Two processes, a core each: one replica per job, the path without threads.
    workers = [1, 2].map(() => startServiceProcess({ ...shared, ROLE: 'worker', TRAIN_THREADS: '1' }));
  });

  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await api?.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('share the queue: every job is trained exactly once, and both workers take part', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const job = await submitJob(api, {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 1,
        trainLimit: 640,
        testLimit: 200,
        seed: i,
      });
      ids.push(job.id);
    }
    const finished = await Promise.all(ids.map((id) => waitForEnd(api, id, { timeoutMs: 120_000, intervalMs: 200 })));
    for (const job of finished) assert.equal(job.state, 'completed', job.error?.message);

    const trainedBy = (worker: ServiceProcess) =>
      worker.logs.filter((line) => line.msg === 'training').map((line) => line.jobId as string);
    const [first, second] = workers.map(trainedBy) as [string[], string[]];
    assert.deepEqual(
      [...first, ...second].sort(),
      [...ids].sort(),
      'each job trained exactly once across both workers',
    );
    assert.ok(first.length > 0 && second.length > 0, `work was not shared: ${first.length} and ${second.length} jobs`);
    for (const job of finished) {
      assert.equal(job.epochs.length, 1);
      assert.equal(job.result?.backend, 'wasm');
      assert.equal(job.result?.replicas, 1);
    }
  });
});
