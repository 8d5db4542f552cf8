import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { PredictResponse } from '../../src/contract/predict.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { submitJob, waitForEnd, waitForJob } from '../support/jobs.ts';
import { request, startTestService, type TestService } from '../support/service.ts';

describe('LeNet-5 on real MNIST, end to end over HTTP', () => {
  let service: TestService;
  before(async () => {
    // The whole path on two data-parallel replicas, as a worker on two cores runs it by default.
    service = await startTestService({ TRAIN_THREADS: '2' });
  });
  after(async () => service?.close());

  it('trains through the queue, shows its progress while it runs, and predicts PNG digits', async () => {
    const { id } = await submitJob(service, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 1,
      trainLimit: 10000,
      testLimit: 2000,
      batchSize: 16,
      logEvery: 25,
      seed: 7,
    });

    const seenWhileRunning = await waitForJob(
      service,
      id,
      (job) => {
        assert.notEqual(job.state, 'failed', job.error?.message);
        assert.notEqual(job.state, 'completed', 'the job finished before its progress was ever seen while running');
        return job.state === 'running' && job.logs.length > 0 && job.progress.batch > 0;
      },
      { intervalMs: 20 },
    );
    assert.ok(seenWhileRunning.progress.fraction > 0 && seenWhileRunning.progress.fraction < 1);
    assert.equal(seenWhileRunning.logs[0]?.batch, 25);

    const done = await waitForEnd(service, id);
    assert.equal(done.state, 'completed', done.error?.message);
    const result = done.result;
    assert.ok(result);
    assert.ok(result.testAccuracy > 0.9, `test accuracy ${result.testAccuracy} is not above 0.9`);
    assert.equal(result.total, 2000);
    assert.equal(result.params, 44426);
    assert.equal(result.replicas, 2);
    assert.equal(result.backend, 'wasm');
    assert.equal(
      result.confusionMatrix.flat().reduce((a, b) => a + b, 0),
      2000,
    );
    assert.equal(
      result.confusionMatrix.reduce((sum, row, label) => sum + (row[label] as number), 0),
      result.correct,
    );
    assert.deepEqual(
      done.logs.map((line) => line.batch),
      Array.from({ length: 25 }, (_, i) => (i + 1) * 25),
    );
    assert.ok(done.logs.every((line) => line.epoch === 1 && Number.isFinite(line.loss)));
    assert.ok((done.logs.at(-1)?.loss ?? Infinity) < (done.logs[0]?.loss ?? 0), 'the loss did not fall');
    assert.equal(done.epochs.length, 1);
    assert.equal(done.epochs[0]?.testAccuracy, result.testAccuracy);
    assert.equal(done.epochs[0]?.testLoss, result.testLoss, "each epoch's summary has its test loss");
    assert.deepEqual(done.progress, { epoch: 1, epochs: 1, batch: 625, batchesPerEpoch: 625, fraction: 1 });

    const digits = await mnist.load({ dataDir: service.config.DATA_DIR });
    const form = new FormData();
    const labels: number[] = [];
    for (let i = 0; i < 20; i++) {
      // Test digits from beyond the evaluated ones, upscaled: the service resizes them back.
      const index = 5000 + i;
      const pixels = Buffer.from(digits.test.images.subarray(index * 784, (index + 1) * 784));
      const png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
        .resize(56, 56)
        .png()
        .toBuffer();
      form.append(`digit${i}`, new Blob([png], { type: 'image/png' }), `digit${i}.png`);
      labels.push(digits.test.labels[index] as number);
    }
    const predicted = await request<PredictResponse>(`${service.url}/jobs/${id}/predict`, {
      method: 'POST',
      body: form,
    });
    assert.equal(predicted.status, 200);
    assert.equal(predicted.body.predictions.length, 20);
    const right = predicted.body.predictions.filter((prediction, i) => prediction.label === labels[i]).length;
    assert.ok(right >= 16, `only ${right} of 20 digits were recognised`);
  });
});
