import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runJob } from '../support/jobs.ts';
import { request, startTestService, type TestService } from '../support/service.ts';

describe('MobileNetV2 through the API', () => {
  let service: TestService;
  before(async () => {
    // One training thread: data-parallel replicas don't yet carry BatchNorm's moving statistics.
    service = await startTestService({ TRAIN_THREADS: '1' });
  });
  after(async () => service?.close());

  it('trains from scratch on MNIST at 28x28x1 on wasm, evaluates with its moving statistics, and its model downloads', async () => {
    const done = await runJob(
      service,
      {
        model: 'mobilenetv2',
        dataset: 'mnist',
        epochs: 1,
        trainLimit: 3200,
        testLimit: 500,
        batchSize: 32,
        logEvery: 10,
        seed: 7,
      },
      { timeoutMs: 300_000 },
    );
    assert.equal(done.state, 'completed', done.error?.message);
    const result = done.result;
    assert.ok(result);
    assert.equal(result.backend, 'wasm');
    // The trainable parameters, as GET /models counts them: BatchNorm's 34,112 moving statistics don't train.
    assert.equal(result.params, 2_236_106);
    assert.equal(result.total, 500);
    assert.ok(done.logs.every((line) => Number.isFinite(line.loss)));
    assert.ok((done.logs.at(-1)?.loss ?? Infinity) < (done.logs[0]?.loss ?? 0), 'the loss did not fall');
    // 100 steps from scratch: far from trained, but above chance (0.1) once BatchNorm evaluates right.
    assert.ok(result.testAccuracy > 0.5, `test accuracy ${result.testAccuracy}`);

    const model = await fetch(`${service.url}/jobs/${done.id}/model`);
    assert.equal(model.status, 200);
    assert.ok((await model.arrayBuffer()).byteLength > 8_000_000, 'the zip holds 2.2M float32 weights');
    const predicted = await request(`${service.url}/jobs/${done.id}`);
    assert.equal(predicted.status, 200);
  });
});
