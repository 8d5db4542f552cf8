/**
 * The service on TRAINER_BACKEND=webgpu, on a software adapter (SwiftShader): a job trains and
 * predicts through the API as on any backend, and one whose tensor the GPU can't bind fails
 * saying so. WEBGPU_MAX_BUFFER_MIB=128 gives the device WebGPU's default binding limit, which
 * AlexNet's first dense layer (144 MiB) exceeds; SwiftShader itself would bind 1 GiB.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { PredictResponse } from '../../src/contract/predict.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { runJob } from '../support/jobs.ts';
import { request, startTestService, type TestService } from '../support/service.ts';
import { softwareGpuEnvironment } from '../support/software-gpu.ts';

describe('the service on the webgpu backend', () => {
  let service: TestService;
  before(async () => {
    Object.assign(process.env, softwareGpuEnvironment());
    // TRAIN_THREADS asks for replicas that a GPU backend can't have: the job trains on one.
    service = await startTestService({ TRAINER_BACKEND: 'webgpu', WEBGPU_MAX_BUFFER_MIB: '128', TRAIN_THREADS: '2' });
  });
  after(async () => service?.close());

  it('/health names the backend and the adapter', async () => {
    const { body } = await request<{ backend: string; device: { kind: string; name: string; fallback: boolean } }>(
      `${service.url}/health`,
    );
    assert.equal(body.backend, 'webgpu');
    assert.equal(body.device.kind, 'gpu');
    assert.match(body.device.name, /SwiftShader/);
    assert.equal(body.device.fallback, true);
  });

  it('trains LeNet-5 on MNIST, records the adapter, and predicts uploaded digits', async () => {
    const done = await runJob(
      service,
      {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 1,
        trainLimit: 640,
        testLimit: 200,
        batchSize: 16,
        learningRate: 0.05,
        logEvery: 5,
        seed: 3,
      },
      { timeoutMs: 240_000, intervalMs: 200 },
    );
    assert.equal(done.state, 'completed', done.error?.message);
    const result = done.result;
    assert.ok(result);
    assert.equal(result.backend, 'webgpu');
    assert.equal(result.replicas, 1, 'webgpu runs in no worker thread: one replica');
    assert.equal(result.device?.kind, 'gpu');
    assert.match(result.device?.name ?? '', /SwiftShader/);
    assert.equal(done.logs.length, 8);
    assert.ok((done.logs.at(-1)?.loss ?? Infinity) < (done.logs[0]?.loss ?? 0), 'the loss did not fall');
    // Chance is 10%; these 40 steps reach 54% on wasm, and the same on webgpu (same losses to float rounding).
    assert.ok(result.testAccuracy > 0.4, `test accuracy ${result.testAccuracy}`);

    const digits = await mnist.load({ dataDir: service.config.DATA_DIR });
    const form = new FormData();
    for (let i = 0; i < 8; i++) {
      const index = 5000 + i;
      const png = await sharp(Buffer.from(digits.test.images.subarray(index * 784, (index + 1) * 784)), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .png()
        .toBuffer();
      form.append(`digit${i}`, new Blob([png], { type: 'image/png' }), `digit${i}.png`);
    }
    const predicted = await request<PredictResponse>(`${service.url}/jobs/${done.id}/predict`, {
      method: 'POST',
      body: form,
    });
    assert.equal(predicted.status, 200);
    assert.equal(predicted.body.predictions.length, 8);
    for (const prediction of predicted.body.predictions) {
      const total = prediction.top.reduce((sum, entry) => sum + entry.probability, 0);
      assert.ok(total > 0 && total <= 1 + 1e-6, `top-5 probabilities sum to ${total}`);
    }
    const right = predicted.body.predictions.filter(
      (prediction, i) => prediction.label === digits.test.labels[5000 + i],
    ).length;
    assert.ok(right >= 3, `only ${right} of 8 digits were recognised`);
  });

  it('fails an AlexNet job whose dense layer the GPU cannot bind, naming it, before training', async () => {
    const done = await runJob(
      service,
      { model: 'alexnet', dataset: 'mnist', epochs: 1, trainLimit: 64, testLimit: 64, batchSize: 16 },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    assert.equal(done.state, 'failed');
    assert.match(
      done.error?.message ?? '',
      /kernel \[9216×4096\] needs 144 MiB in one buffer, more than this GPU binds \(128 MiB on SwiftShader/,
    );
    assert.deepEqual(done.logs, [], 'it failed before the first batch');
  });
});
