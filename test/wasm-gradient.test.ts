import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
// Also registers tfjs-core's gradients, which tf.grad needs: tfjs-core's Node bundle does not.
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../src/runtime/wasm-kernels.ts';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

interface ConvCase {
  readonly name: string;
  readonly x: [number, number, number, number];
  readonly filter: [number, number, number, number];
  readonly strides: number | [number, number];
  readonly pad: Pad;
  readonly dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

const CASES: readonly ConvCase[] = [
  { name: 'LeNet conv1 (MNIST)', x: [4, 28, 28, 1], filter: [5, 5, 1, 6], strides: 1, pad: 'valid' },
  { name: 'LeNet conv2', x: [4, 12, 12, 6], filter: [5, 5, 6, 16], strides: 1, pad: 'valid' },
  { name: 'LeNet conv1 (CIFAR)', x: [2, 32, 32, 3], filter: [5, 5, 3, 6], strides: 1, pad: 'valid' },
  { name: 'AlexNet conv1', x: [2, 32, 32, 3], filter: [3, 3, 3, 64], strides: 1, pad: 'same' },
  // AlexNet conv2-4 channels on a smaller image: cpu's kernel takes 7-19 s each at full size,
  // so the full sizes are checked against a float64 reference further down.
  { name: 'AlexNet conv2 channels', x: [2, 6, 6, 64], filter: [3, 3, 64, 192], strides: 1, pad: 'same' },
  { name: 'AlexNet conv3 channels', x: [2, 3, 3, 192], filter: [3, 3, 192, 384], strides: 1, pad: 'same' },
  { name: 'AlexNet conv4 channels', x: [2, 3, 3, 384], filter: [3, 3, 384, 256], strides: 1, pad: 'same' },
  { name: 'stride 2 same', x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
  { name: 'stride 2 valid', x: [2, 10, 10, 2], filter: [3, 3, 2, 5], strides: 2, pad: 'valid' },
  { name: '11x11 stride 4 valid', x: [1, 35, 35, 3], filter: [11, 11, 3, 8], strides: 4, pad: 'valid' },
  { name: '11x11 stride 4 same', x: [1, 35, 35, 3], filter: [11, 11, 3, 8], strides: 4, pad: 'same' },
  { name: 'unequal strides, non-square', x: [2, 11, 9, 3], filter: [3, 2, 3, 4], strides: [2, 3], pad: 'same' },
  { name: 'numeric pad 1', x: [2, 10, 10, 3], filter: [3, 3, 3, 4], strides: 1, pad: 1 },
  // The gradient loses 'ceil', so dy comes one row/column larger than the kernel's attrs say.
  { name: 'numeric pad, stride 2, ceil (via tf.grad)', x: [1, 10, 10, 2], filter: [3, 3, 2, 3], strides: 2, pad: 1, dimRoundingMode: 'ceil' },
  { name: 'explicit pad', x: [2, 8, 7, 3], filter: [3, 3, 3, 4], strides: 2, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
];

/** Deterministic values in [-1, 1) (mulberry32), so both backends see the same inputs. */
function randomValues(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let state = seed >>> 0;
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** dL/dFilter for L = Σ conv2d(x, filter) · dy, so the gradient is exactly Conv2DBackpropFilter(x, dy). */
async function filterGradient(backend: 'cpu' | 'wasm', c: ConvCase, seed: number): Promise<Float32Array> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor4d(randomValues(size(c.x), seed), c.x);
    const filter = tf.tensor4d(randomValues(size(c.filter), seed + 1), c.filter);
    const conv = (f: tf.Tensor4D): tf.Tensor4D => tf.conv2d(x, f, c.strides, c.pad, 'NHWC', 1, c.dimRoundingMode);
    const outShape = conv(filter).shape;
    const dy = tf.tensor(randomValues(size(outShape), seed + 2), outShape);
    const grad = tf.grad((f) => tf.sum(tf.mul(conv(f as tf.Tensor4D), dy)))(filter);
    assert.deepEqual(grad.shape, c.filter);
    return grad.dataSync() as Float32Array;
  });
}

function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i] ?? NaN));
  return max;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)));
  return max;
}

before(async () => {
  registerWasmTrainingKernels();
  // Fails loudly here if the wasm binary cannot load, rather than in every test.
  assert.equal(await tf.setBackend('wasm'), true);
});

describe('Conv2DBackpropFilter on wasm matches cpu', () => {
  CASES.forEach((c, i) => {
    test(c.name, async () => {
      const expected = await filterGradient('cpu', c, 1000 * i);
      const actual = await filterGradient('wasm', c, 1000 * i);
      const scale = maxAbs(expected);
      // A zero gradient would make any kernel that returns zeros pass.
      assert.ok(scale > 0.1, `reference gradient is degenerate (max |dW| = ${scale})`);
      const diff = maxAbsDiff(actual, expected);
      assert.ok(diff <= 1e-4 * scale, `max |wasm - cpu| = ${diff}, max |cpu| = ${scale}`);
    });
  });
});

/** dW straight from its definition, summed in float64, for NHWC x and dy and a [kh,kw,ci,co] filter. */
function referenceFilterGradient(c: ConvCase, x: Float32Array, dy: Float32Array): Float64Array {
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co } = info;
  const [kh, kw] = c.filter;
  const dW = new Float64Array(size(c.filter));
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const dyAt = ((b * outHeight + oh) * outWidth + ow) * co;
        for (let i = 0; i < kh; i++) {
          const h = oh * info.strideHeight + i - info.padInfo.top;
          if (h < 0 || h >= inHeight) continue;
          for (let j = 0; j < kw; j++) {
            const w = ow * info.strideWidth + j - info.padInfo.left;
            if (w < 0 || w >= inWidth) continue;
            const xAt = ((b * inHeight + h) * inWidth + w) * ci;
            for (let k = 0; k < ci; k++) {
              const xv = x[xAt + k] ?? NaN;
              const dWAt = ((i * kw + j) * ci + k) * co;
              for (let o = 0; o < co; o++) dW[dWAt + o] = (dW[dWAt + o] ?? NaN) + xv * (dy[dyAt + o] ?? NaN);
            }
          }
        }
      }
    }
  }
  return dW;
}

describe('Conv2DBackpropFilter on wasm at full AlexNet sizes matches a float64 reference', () => {
  const FULL: readonly ConvCase[] = [
    { name: 'AlexNet conv2', x: [2, 16, 16, 64], filter: [3, 3, 64, 192], strides: 1, pad: 'same' },
    { name: 'AlexNet conv3', x: [2, 8, 8, 192], filter: [3, 3, 192, 384], strides: 1, pad: 'same' },
    { name: 'AlexNet conv4', x: [2, 8, 8, 384], filter: [3, 3, 384, 256], strides: 1, pad: 'same' },
  ];
  FULL.forEach((c, i) => {
    test(c.name, async () => {
      const seed = 50_000 + 1000 * i;
      const actual = await filterGradient('wasm', c, seed);
      const outShape = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad).outShape;
      const expected = referenceFilterGradient(c, randomValues(size(c.x), seed), randomValues(size(outShape), seed + 2));
      const scale = maxAbs(expected);
      assert.ok(scale > 0.1, `reference gradient is degenerate (max |dW| = ${scale})`);
      const diff = maxAbsDiff(actual, expected);
      assert.ok(diff <= 1e-4 * scale, `max |wasm - reference| = ${diff}, max |reference| = ${scale}`);
    });
  });
});

describe('registered wasm kernel', () => {
  test('registering twice changes nothing and warns nothing', async (t) => {
    const warn = t.mock.method(console, 'warn');
    const before = tf.getKernel('Conv2DBackpropFilter', 'wasm');
    registerWasmTrainingKernels();
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), before);
    assert.equal(warn.mock.callCount(), 0);
  });

  // tfjs-core's conv2d gradient drops dimRoundingMode, so only a direct call reaches 'ceil', where
  // the last output row and column read taps past the padded input.
  test("dimRoundingMode 'ceil' called directly matches cpu", async () => {
    const attrs = { strides: 2, pad: 1, dataFormat: 'NHWC', dimRoundingMode: 'ceil', filterShape: [3, 3, 2, 3] };
    const xShape = [1, 10, 10, 2];
    const dyShape = [1, 6, 6, 3]; // ceil((10 + 2 - 3) / 2 + 1) = 6
    const onBackend = async (backend: string): Promise<Float32Array> => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor(randomValues(size(xShape), 11), xShape);
        const dy = tf.tensor(randomValues(size(dyShape), 12), dyShape);
        const dW: tf.Tensor = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs);
        return dW.dataSync() as Float32Array;
      });
    };
    const expected = await onBackend('cpu');
    const actual = await onBackend('wasm');
    const diff = maxAbsDiff(actual, expected);
    assert.ok(diff <= 1e-4 * maxAbs(expected), `max |wasm - cpu| = ${diff}`);
  });

  test('frees its intermediate buffers', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(randomValues(2 * 9 * 9 * 3, 7), [2, 9, 9, 3]);
    const dy = tf.tensor4d(randomValues(2 * 5 * 5 * 4, 8), [2, 5, 5, 4]);
    const attrs = { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 4] };
    const run = (): tf.Tensor => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs);
    run().dispose(); // warm-up: lets the backend settle any one-time allocations
    const dataIds = tf.backend().numDataIds();
    run().dispose();
    assert.equal(tf.backend().numDataIds(), dataIds);
    tf.dispose([x, dy]);
  });

  test('rejects NCHW with a clear error', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 3, 8, 8]);
    const dy = tf.zeros([1, 4, 6, 6]);
    const attrs = { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 3, 4] };
    assert.throws(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs), /supports dataFormat 'NHWC' only/);
    tf.dispose([x, dy]);
  });
});

test('a small conv net trains on wasm (loss goes down)', async () => {
  await tf.setBackend('wasm');
  const seed = 42;
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [12, 12, 1],
        filters: 4,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({
        units: 2,
        activation: 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
  model.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'categoricalCrossentropy' });

  // Class 1 images are bright on the left half, class 0 on the right: learnable only through the conv.
  const n = 32;
  const pixels = new Float32Array(n * 12 * 12);
  const labels: number[] = [];
  const noise = randomValues(pixels.length, seed + 2);
  for (let i = 0; i < n; i++) {
    const left = i % 2;
    labels.push(left);
    for (let p = 0; p < 144; p++) {
      const inLeftHalf = p % 12 < 6;
      pixels[i * 144 + p] = (inLeftHalf === (left === 1) ? 1 : 0) + 0.3 * (noise[i * 144 + p] ?? 0);
    }
  }
  const xs = tf.tensor4d(pixels, [n, 12, 12, 1]);
  const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), 2);

  const losses: number[] = [];
  for (let step = 0; step < 15; step++) {
    const loss = await model.trainOnBatch(xs, ys);
    losses.push(Array.isArray(loss) ? (loss[0] ?? NaN) : loss);
  }
  const first = losses[0] ?? NaN;
  const last = losses[losses.length - 1] ?? NaN;
  assert.ok(Number.isFinite(first) && Number.isFinite(last), `losses: ${losses.join(', ')}`);
  assert.ok(last < 0.5 * first, `loss should halve within 15 steps: ${losses.join(', ')}`);

  // The conv layer's kernel must have moved, i.e. Conv2DBackpropFilter fed a real gradient.
  const convKernel = model.layers[0]?.getWeights()[0];
  assert.ok(convKernel !== undefined);
  const initial = tfl.initializers.glorotUniform({ seed }).apply([3, 3, 1, 4]);
  assert.ok(maxAbsDiff(convKernel.dataSync() as Float32Array, initial.dataSync() as Float32Array) > 1e-3);
  tf.dispose([xs, ys, initial]);
});
