import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import type { ImageShape } from '../../src/datasets/dataset.ts';
import { loadArtifact, saveArtifact } from '../../src/models/artifact.ts';
import { mobilenetv2 } from '../../src/models/mobilenetv2.ts';
import { TrainingStep } from '../../src/training/training-step.ts';
import { randomValues } from '../support/random-values.ts';

const CIFAR_SHAPE: ImageShape = { height: 32, width: 32, channels: 3 };
const MNIST_SHAPE: ImageShape = { height: 28, width: 28, channels: 1 };
const silent = pino({ level: 'silent' });
const size = (shape: readonly (number | null)[]): number => shape.reduce<number>((a, b) => a * (b ?? 1), 1);

const folders: string[] = [];
before(async () => {
  // Registers the wasm training kernels, the depthwise convolution's gradients among them.
  assert.equal(await startBackend('wasm', silent), 'wasm');
});
after(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

function layerNames(model: tfl.LayersModel, className: string): string[] {
  return model.layers.filter((layer) => layer.getClassName() === className).map((layer) => layer.name);
}

/** Distinct images as raw bytes: identical ones would give BatchNorm a zero variance. */
function imageBytes(count: number, shape: ImageShape, seed: number): Uint8Array {
  return Uint8Array.from(randomValues(count * shape.height * shape.width * shape.channels, seed), (v) =>
    Math.floor((v + 1) * 127.5),
  );
}

describe('mobilenetv2', () => {
  it("has Keras's topology and layer names: 17 blocks, 10 residual adds, 52 BatchNorms, ReLU6", async () => {
    await tf.setBackend('wasm');
    const model = mobilenetv2.build({ height: 224, width: 224, channels: 3 }, 1000, 0);
    try {
      const depthwise = layerNames(model, 'DepthwiseConv2D');
      assert.equal(depthwise.length, 17);
      assert.deepEqual(depthwise.slice(0, 3), ['expanded_conv_depthwise', 'block_1_depthwise', 'block_2_depthwise']);
      assert.deepEqual(layerNames(model, 'Add'), [
        'block_2_add',
        'block_4_add',
        'block_5_add',
        'block_7_add',
        'block_8_add',
        'block_9_add',
        'block_11_add',
        'block_12_add',
        'block_14_add',
        'block_15_add',
      ]);
      assert.equal(layerNames(model, 'BatchNormalization').length, 52);
      assert.equal(layerNames(model, 'ReLU').length, 35);
      assert.deepEqual(
        model.layers.filter((layer) => layer.getClassName() === 'ReLU').map((layer) => layer.getConfig().maxValue),
        Array<number>(35).fill(6),
      );
      assert.deepEqual(model.getLayer('block_16_project').outputShape, [null, 7, 7, 320]);
      assert.deepEqual(model.getLayer('Conv_1').outputShape, [null, 7, 7, 1280]);
      assert.deepEqual(model.outputs[0]?.shape, [null, 1000]);
      // Keras: 3,538,984 in all, 34,112 of them BatchNorm's moving statistics.
      assert.equal(model.countParams(), 3_538_984);
      assert.equal(mobilenetv2.parameterCount({ height: 224, width: 224, channels: 3 }, 1000), 3_538_984 - 34_112);
    } finally {
      model.dispose();
    }
  });

  for (const shape of [CIFAR_SHAPE, MNIST_SHAPE]) {
    it(`runs at ${shape.height}x${shape.width}x${shape.channels} as it is, down to a 1x1 map`, async () => {
      await tf.setBackend('wasm');
      const model = mobilenetv2.build(shape, 10, 0);
      try {
        assert.deepEqual(model.inputs[0]?.shape, [null, shape.height, shape.width, shape.channels]);
        assert.deepEqual(model.getLayer('Conv_1').outputShape, [null, 1, 1, 1280]);
        const logits = model.predict(tf.zeros([2, shape.height, shape.width, shape.channels])) as tf.Tensor;
        assert.deepEqual(logits.shape, [2, 10]);
        logits.dispose();
      } finally {
        model.dispose();
      }
    });
  }

  it('draws its kernels from the seed and starts BatchNorm at scale 1, offset 0, mean 0, variance 1', async () => {
    await tf.setBackend('wasm');
    const [a, b, c] = [1, 1, 2].map((seed) => mobilenetv2.build(CIFAR_SHAPE, 10, seed));
    try {
      const kernel = (model: tfl.LayersModel, name: string) => model.getLayer(name).getWeights()[0]?.dataSync();
      for (const name of ['Conv1', 'block_3_depthwise', 'block_3_project', 'predictions']) {
        assert.deepEqual(kernel(a as tfl.LayersModel, name), kernel(b as tfl.LayersModel, name), name);
        assert.notDeepEqual(kernel(a as tfl.LayersModel, name), kernel(c as tfl.LayersModel, name), name);
      }
      const [gamma, beta, mean, variance] = (a as tfl.LayersModel).getLayer('block_3_depthwise_BN').getWeights();
      assert.deepEqual([...new Set(gamma?.dataSync())], [1]);
      assert.deepEqual([...new Set(beta?.dataSync())], [0]);
      assert.deepEqual([...new Set(mean?.dataSync())], [0]);
      assert.deepEqual([...new Set(variance?.dataSync())], [1]);
    } finally {
      [a, b, c].forEach((model) => model?.dispose());
    }
  });

  it("the gradients of a training batch on wasm differ from cpu's no more than cpu's own for a 1e-7 change of the images", async () => {
    const count = 4;
    const bytes = imageBytes(count, CIFAR_SHAPE, 5);
    const labels = Int32Array.from({ length: count }, (_, i) => i % 10);
    const gradients = async (backend: 'cpu' | 'wasm', scale: number): Promise<Float32Array[]> => {
      assert.equal(await startBackend(backend, silent), backend);
      const model = mobilenetv2.build(CIFAR_SHAPE, 10, 3);
      const step = new TrainingStep(model, CIFAR_SHAPE, 10, {
        optimizer: 'sgd',
        learningRate: 0.1,
        momentum: 0.9,
        weightDecay: 0,
      });
      try {
        const images = tf.tidy(() => tf.mul(step.images(bytes, count), scale));
        const { loss, grads } = step.gradients(images, labels);
        const values = grads.map((g) => g.dataSync() as Float32Array);
        tf.dispose([images, loss, ...grads]);
        return values;
      } finally {
        step.dispose();
        model.dispose();
      }
    };
    const expected = await gradients('cpu', 1);
    /** Σ over the variables of max |a − expected| relative to the variable's largest gradient. */
    const spread = (actual: Float32Array[]): number =>
      expected.reduce((sum, values, i) => {
        let [diff, scale] = [0, 1e-2];
        values.forEach((v, j) => {
          diff = Math.max(diff, Math.abs(v - (actual[i]?.[j] ?? NaN)));
          scale = Math.max(scale, Math.abs(v));
        });
        return sum + diff / scale;
      }, 0);
    // BatchNorm over 4 images at 1x1 in the last blocks makes a freshly drawn MobileNetV2 amplify
    // float32 rounding: a 1e-7 change of the images moves cpu's own gradients by ~2% (median) and
    // up to ~40%. A gradient kernel that was wrong would add ~100% for each variable it feeds.
    const noise = spread(await gradients('cpu', 1 + 1e-7));
    const wasm = spread(await gradients('wasm', 1));
    assert.ok(
      noise > 0 && noise < expected.length * 0.1,
      `cpu's own spread ${noise} over ${expected.length} variables`,
    );
    assert.ok(wasm <= 2 * noise, `wasm's spread from cpu ${wasm}, cpu's own ${noise}`);
  });

  it('trains BatchNorm on the batch and predicts with its moving statistics', async () => {
    assert.equal(await startBackend('wasm', silent), 'wasm');
    const model = mobilenetv2.build(CIFAR_SHAPE, 10, 4);
    const step = new TrainingStep(model, CIFAR_SHAPE, 10, {
      optimizer: 'sgd',
      learningRate: 0.05,
      momentum: 0.9,
      weightDecay: 0,
    });
    const count = 8;
    const bytes = imageBytes(count, CIFAR_SHAPE, 6);
    const labels = Int32Array.from({ length: count }, (_, i) => i % 10);
    try {
      const movingMean = () => model.getLayer('bn_Conv1').getWeights()[2]?.dataSync() as Float32Array;
      const before = movingMean();
      step.run(bytes, labels).dispose();
      const after = movingMean();
      assert.ok(
        after.some((v, i) => v !== before[i]),
        'a training step moves the moving mean',
      );
      assert.ok(after.every(Number.isFinite));
      // In inference mode an image's logits don't depend on the rest of its batch.
      const images = step.images(bytes, count);
      const whole = model.predict(images) as tf.Tensor;
      const first = model.predict(tf.slice(images, 0, 1)) as tf.Tensor;
      const [wholeValues, firstValues] = [whole.dataSync(), first.dataSync()];
      for (let i = 0; i < 10; i++) assert.ok(Math.abs((wholeValues[i] ?? NaN) - (firstValues[i] ?? NaN)) < 1e-4);
      tf.dispose([images, whole, first]);
    } finally {
      step.dispose();
      model.dispose();
    }
  });

  it('round-trips through saveArtifact / loadArtifact with its moving statistics', async () => {
    await tf.setBackend('wasm');
    const root = await mkdtemp(path.join(tmpdir(), 'mobilenetv2-'));
    folders.push(root);
    const model = mobilenetv2.build(MNIST_SHAPE, 3, 7);
    const step = new TrainingStep(model, MNIST_SHAPE, 3, {
      optimizer: 'sgd',
      learningRate: 0.05,
      momentum: 0.9,
      weightDecay: 0,
    });
    step.run(imageBytes(6, MNIST_SHAPE, 8), Int32Array.from([0, 1, 2, 0, 1, 2])).dispose();
    step.dispose();
    await saveArtifact(root, model, {
      jobId: 'mobilenetv2',
      dataset: 'tiny',
      shape: MNIST_SHAPE,
      classNames: ['a', 'b', 'c'],
      imageKind: 'strokes',
    });
    const loaded = (await loadArtifact(root, 'mobilenetv2')).model;
    const x = tf.tensor4d(randomValues(size([3, 28, 28, 1]), 9), [3, 28, 28, 1]);
    try {
      const [expected, actual] = [model, loaded].map((m) => (m.predict(x) as tf.Tensor).dataSync());
      assert.deepEqual(actual, expected);
    } finally {
      tf.dispose(x);
      model.dispose();
      loaded.dispose();
    }
  });
});
