/**
 * The webgpu backend on a software adapter (SwiftShader, from Debian's chromium): the same
 * numbers as the cpu backend, and errors that say what happened. Its speed is a GPU's question,
 * for `npm run gpu-check`; here it is slow, so the batches are small.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { pino } from 'pino';
import { assertDeviceHealthy, backendDevice, largestTensor } from '../../src/backends/device.ts';
import { startBackend, stopBackend } from '../../src/backends/select.ts';
import { webgpuDevice } from '../../src/backends/webgpu/start.ts';
import type { ModelName } from '../../src/contract/names.ts';
import type { ImageShape } from '../../src/datasets/dataset.ts';
import { models } from '../../src/models/index.ts';
import { TrainingStep } from '../../src/training/training-step.ts';
import { alexnetReference, alexnetReferenceInputs, type AlexnetReference } from '../support/alexnet-reference.ts';
import { softwareGpuEnvironment } from '../support/software-gpu.ts';

const mnistShape = { height: 28, width: 28, channels: 1 };

/** A deterministic batch of `count` images of `shape` and their labels. */
function batchOf(count: number, pixels: number, seed: number): { bytes: Uint8Array; labels: Int32Array } {
  const bytes = new Uint8Array(count * pixels).map((_, index) => (index * 131 + seed * 17) % 251);
  return { bytes, labels: new Int32Array(count).map((_, index) => (index + seed) % 10) };
}

interface StepsRecord {
  losses: number[];
  firstGradients: Float32Array[];
  /** Every weight after the steps, trainable or not (BatchNorm's moving statistics). */
  weightsAfter: Float32Array[];
}

async function trainingSteps(
  { name, shape, batch }: { name: ModelName; shape: ImageShape; batch: number },
  backend: string,
  steps: number,
): Promise<StepsRecord> {
  await tf.setBackend(backend);
  const model = models[name].build(shape, 10, 11);
  const step = new TrainingStep(model, shape, 10, {
    optimizer: 'sgd',
    learningRate: 0.05,
    momentum: 0.9,
    weightDecay: 1e-3,
  });
  const record: StepsRecord = { losses: [], firstGradients: [], weightsAfter: [] };
  try {
    for (let index = 0; index < steps; index++) {
      const { bytes, labels } = batchOf(batch, shape.height * shape.width * shape.channels, index);
      const images = step.images(bytes, labels.length);
      const { loss, grads } = step.gradients(images, labels);
      record.losses.push(((await loss.data()) as Float32Array)[0] as number);
      if (index === 0)
        record.firstGradients = await Promise.all(
          grads.map(async (gradient) => (await gradient.data()) as Float32Array),
        );
      step.apply(grads);
      tf.dispose([images, loss, ...grads]);
    }
    record.weightsAfter = await Promise.all(
      model.weights.map(async (weight) => (await weight.read().data()) as Float32Array),
    );
  } finally {
    step.dispose();
    model.dispose();
  }
  return record;
}

/** Largest |a − b| over the largest |b|: a relative error that near-zero entries can't blow up. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let difference = 0;
  let scale = 0;
  for (let index = 0; index < expected.length; index++) {
    difference = Math.max(difference, Math.abs((actual[index] as number) - (expected[index] as number)));
    scale = Math.max(scale, Math.abs(expected[index] as number));
  }
  return scale === 0 ? difference : difference / scale;
}

describe('webgpu backend on a software adapter', () => {
  before(async () => {
    Object.assign(process.env, softwareGpuEnvironment());
    assert.equal(await startBackend('webgpu', pino({ level: 'silent' })), 'webgpu');
  });
  after(async () => {
    await tf.setBackend('cpu');
    await stopBackend();
  });

  it('names the adapter it runs on', async () => {
    await tf.setBackend('webgpu');
    const device = backendDevice();
    assert.equal(device.kind, 'gpu');
    assert.equal(device.fallback, true);
    assert.match(device.name, /swiftshader/i);
  });

  for (const { run, label, variables } of [
    { run: { name: 'lenet5', shape: mnistShape, batch: 16 }, label: 'LeNet-5', variables: 10 },
    // BatchNorm in training mode: batch statistics, and moving ones that must move alike too. Small
    // images: the cpu backend and the software adapter take seconds per ResNet-20 step even so.
    {
      run: { name: 'resnet20', shape: { height: 8, width: 8, channels: 1 }, batch: 4 },
      label: 'ResNet-20',
      variables: 59,
    },
  ] as const) {
    it(`${label}: three steps give the cpu backend’s losses, gradients and weights`, async () => {
      const cpu = await trainingSteps(run, 'cpu', 3);
      const gpu = await trainingSteps(run, 'webgpu', 3);
      gpu.losses.forEach((loss, index) =>
        assert.ok(
          Math.abs(loss - (cpu.losses[index] as number)) < 1e-5,
          `loss ${index}: ${loss} vs ${cpu.losses[index]}`,
        ),
      );
      assert.equal(gpu.firstGradients.length, variables);
      gpu.firstGradients.forEach((gradient, index) => {
        const error = relativeError(gradient, cpu.firstGradients[index] as Float32Array);
        assert.ok(error < 1e-4, `gradient of variable ${index} differs by ${error} (relative)`);
      });
      gpu.weightsAfter.forEach((weights, index) => {
        const error = relativeError(weights, cpu.weightsAfter[index] as Float32Array);
        assert.ok(error < 1e-5, `weight ${index} after three steps differs by ${error} (relative)`);
      });
      // Training moved the weights: a comparison of untouched weights would prove nothing.
      assert.notDeepEqual(cpu.losses[0], cpu.losses[2]);
    });
  }

  it('AlexNet: the forward pass and one gradient match the stored cpu reference', async () => {
    await tf.setBackend('webgpu');
    const stored = JSON.parse(
      await readFile(new URL('../fixtures/alexnet-cpu-reference.json', import.meta.url), 'utf8'),
    ) as AlexnetReference;
    assert.deepEqual(
      stored.inputs,
      alexnetReferenceInputs,
      'the stored reference was made for other inputs: regenerate it (test/support/alexnet-reference.ts)',
    );
    const actual = await alexnetReference();
    assert.ok(Math.abs(actual.loss - stored.loss) < 1e-4, `loss ${actual.loss} vs ${stored.loss}`);
    assert.equal(actual.gradients.length, stored.gradients.length);
    actual.gradients.forEach((gradient, index) => {
      const expected = stored.gradients[index];
      assert.ok(expected);
      assert.deepEqual(gradient.shape, expected.shape);
      const scale = Math.max(expected.sumAbs, 1e-12);
      assert.ok(
        Math.abs(gradient.sumAbs - expected.sumAbs) / scale < 1e-4,
        `variable ${index}: Σ|g| ${gradient.sumAbs} vs ${expected.sumAbs}`,
      );
      assert.ok(
        Math.abs(gradient.sum - expected.sum) / scale < 1e-4,
        `variable ${index}: Σg ${gradient.sum} vs ${expected.sum}`,
      );
      gradient.head.forEach((value, at) =>
        assert.ok(
          Math.abs(value - (expected.head[at] as number)) <= 1e-4 * expected.maxAbs + 1e-9,
          `variable ${index}[${at}]`,
        ),
      );
    });
  });

  it('finds the largest tensor a model trains with: a weight, or a layer output that grows with the batch', () => {
    const model = models.alexnet.build({ height: 32, width: 32, channels: 3 }, 10, 1);
    try {
      const atBatch64 = largestTensor(model, 64);
      // The first dense layer's kernel: 9216 × 4096 floats, over WebGPU's default binding limit of 128 MiB.
      assert.equal(atBatch64.bytes, 9216 * 4096 * 4);
      assert.match(atBatch64.what, /weight .*kernel \[9216×4096\]/);
      const atBatch4096 = largestTensor(model, 4096);
      assert.equal(atBatch4096.bytes, 4096 * 32 * 32 * 64 * 4, "the first convolution's output, 32×32×64 per image");
      assert.match(atBatch4096.what, /output of layer .* at batchSize 4096/);
      assert.match(atBatch4096.remedy, /smaller batchSize/);
    } finally {
      model.dispose();
    }
  });

  it('a validation error on the device fails the next check instead of passing unseen', async () => {
    const opened = webgpuDevice();
    assert.ok(opened);
    assert.doesNotThrow(() => assertDeviceHealthy());
    // A buffer past the device's limit: WebGPU reports it as an uncaptured validation error.
    opened.device.createBuffer({ size: opened.device.limits.maxBufferSize * 2, usage: GPUBufferUsage.STORAGE });
    const deadline = Date.now() + 5000;
    while (opened.errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.throws(() => assertDeviceHealthy(), /the GPU reported an error.*max buffer size/i);
  });
});
