import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
// Also registers tfjs-core's gradients, which tf.grad needs: tfjs-core's Node bundle does not.
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { lenet5 } from '../../src/models/lenet5.ts';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import {
  maxPool2x2GradOn,
  maxPool2x2GradOnBackend,
  moduleBytes,
} from '../../src/backends/wasm/max-pool-grad-module.ts';
import { registerTrainingGradients } from '../../src/backends/gradients/register.ts';
import { convolutionKernels } from '../../src/backends/wasm/convolution-module.ts';
import { registerWasmKernels } from '../../src/backends/wasm/register.ts';
import { randomValues } from '../support/random-values.ts';

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
  {
    name: 'numeric pad, stride 2, ceil (via tf.grad)',
    x: [1, 10, 10, 2],
    filter: [3, 3, 2, 3],
    strides: 2,
    pad: 1,
    dimRoundingMode: 'ceil',
  },
  {
    name: 'explicit pad',
    x: [2, 8, 7, 3],
    filter: [3, 3, 3, 4],
    strides: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
];

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
  registerWasmKernels();
  registerTrainingGradients();
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

/**
 * Visits every tap of a convolution: each (input pixel, output pixel, filter position) that meets,
 * with the offsets of the input pixel's channels in NHWC x, the output pixel's in NHWC dy and the
 * filter position's [ci, co] block in a [kh, kw, ci, co] filter; `ci` and `co` are the channel counts.
 */
function forEachTap(
  c: ConvCase,
  visit: (xAt: number, dyAt: number, filterAt: number, ci: number, co: number) => void,
): void {
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co } = info;
  const [kh, kw] = c.filter;
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
            visit(((b * inHeight + h) * inWidth + w) * ci, dyAt, (i * kw + j) * ci * co, ci, co);
          }
        }
      }
    }
  }
}

/** dW straight from its definition, summed in float64, for NHWC x and dy and a [kh,kw,ci,co] filter. */
function referenceFilterGradient(c: ConvCase, x: Float32Array, dy: Float32Array): Float64Array {
  const dW = new Float64Array(size(c.filter));
  forEachTap(c, (xAt, dyAt, filterAt, ci, co) => {
    for (let k = 0; k < ci; k++) {
      const xv = x[xAt + k] ?? NaN;
      const dWAt = filterAt + k * co;
      for (let o = 0; o < co; o++) dW[dWAt + o] = (dW[dWAt + o] ?? NaN) + xv * (dy[dyAt + o] ?? NaN);
    }
  });
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
      const expected = referenceFilterGradient(
        c,
        randomValues(size(c.x), seed),
        randomValues(size(outShape), seed + 2),
      );
      const scale = maxAbs(expected);
      assert.ok(scale > 0.1, `reference gradient is degenerate (max |dW| = ${scale})`);
      const diff = maxAbsDiff(actual, expected);
      assert.ok(diff <= 1e-4 * scale, `max |wasm - reference| = ${diff}, max |reference| = ${scale}`);
    });
  });
});

/**
 * Runs `body` with a counting wrapper around the kernel registered for wasm under `kernelName`,
 * and returns how often it ran. The replacement kernels look up the wasm kernels they compose at
 * call time, so this tells which way a case went (recast onto XNNPACK, or the built-in kernel).
 */
function countCalls(kernelName: string, body: () => void): number {
  const original = tf.getKernel(kernelName, 'wasm');
  let calls = 0;
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      calls++;
      return original.kernelFunc(args);
    },
  });
  try {
    body();
  } finally {
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel(original);
  }
  return calls;
}

interface InputGradientCase extends ConvCase {
  /** Whether the wasm kernel should recast it as a forward Conv2D, or sum it tap by tap (direct). */
  readonly recast: boolean;
  /** Neither: left to the built-in kernel. */
  readonly builtIn?: boolean;
}

const INPUT_CASES: readonly InputGradientCase[] = [
  { name: 'LeNet conv2 (MNIST)', x: [4, 12, 12, 6], filter: [5, 5, 6, 16], strides: 1, pad: 'valid', recast: true },
  { name: 'LeNet conv2 (CIFAR)', x: [2, 14, 14, 6], filter: [5, 5, 6, 16], strides: 1, pad: 'valid', recast: true },
  { name: 'LeNet conv1 (MNIST)', x: [2, 28, 28, 1], filter: [5, 5, 1, 6], strides: 1, pad: 'valid', recast: true },
  { name: 'AlexNet conv1', x: [2, 32, 32, 3], filter: [3, 3, 3, 64], strides: 1, pad: 'same', recast: true },
  // AlexNet conv2-5 channels on smaller images, as above; full sizes against float64 further down.
  { name: 'AlexNet conv2 channels', x: [2, 6, 6, 64], filter: [3, 3, 64, 192], strides: 1, pad: 'same', recast: true },
  {
    name: 'AlexNet conv3 channels',
    x: [2, 3, 3, 192],
    filter: [3, 3, 192, 384],
    strides: 1,
    pad: 'same',
    recast: true,
  },
  {
    name: 'AlexNet conv4 channels',
    x: [2, 3, 3, 384],
    filter: [3, 3, 384, 256],
    strides: 1,
    pad: 'same',
    recast: true,
  },
  {
    name: 'AlexNet conv5 channels',
    x: [2, 3, 3, 256],
    filter: [3, 3, 256, 256],
    strides: 1,
    pad: 'same',
    recast: true,
  },
  { name: '1x1', x: [2, 5, 5, 8], filter: [1, 1, 8, 4], strides: 1, pad: 'valid', recast: true },
  {
    name: 'even kernel, same (padding only after)',
    x: [2, 7, 6, 3],
    filter: [2, 4, 3, 5],
    strides: 1,
    pad: 'same',
    recast: true,
  },
  { name: 'numeric pad 1', x: [2, 10, 10, 3], filter: [3, 3, 3, 4], strides: 1, pad: 1, recast: true },
  {
    name: 'explicit pad, stride 1',
    x: [2, 8, 7, 3],
    filter: [3, 3, 3, 4],
    strides: 1,
    pad: [
      [0, 0],
      [2, 0],
      [0, 1],
      [0, 0],
    ],
    recast: true,
  },
  // Stride 2 inserts zeros into dy, worth it from 8 input channels.
  { name: 'stride 2 same, odd size', x: [2, 9, 9, 8], filter: [3, 3, 8, 4], strides: 2, pad: 'same', recast: true },
  { name: 'stride 2 same, even size', x: [2, 10, 10, 8], filter: [3, 3, 8, 4], strides: 2, pad: 'same', recast: true },
  {
    name: 'stride 2 valid, leftover rows',
    x: [2, 10, 10, 16],
    filter: [3, 3, 16, 5],
    strides: 2,
    pad: 'valid',
    recast: true,
  },
  { name: 'stride 2 valid 5x5', x: [2, 15, 15, 16], filter: [5, 5, 16, 8], strides: 2, pad: 'valid', recast: true },
  { name: 'strides [2, 1]', x: [2, 9, 8, 8], filter: [3, 3, 8, 4], strides: [2, 1], pad: 'same', recast: true },
  {
    name: 'explicit pad, stride 2',
    x: [2, 8, 7, 8],
    filter: [3, 3, 8, 4],
    strides: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
    recast: true,
  },
  // Summed tap by tap by the direct SIMD kernel: too few channels or too large a stride for zeros
  // to pay, or a padding wider than the filter (negative 'full' padding).
  { name: 'stride 2 same, 3 channels', x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same', recast: false },
  {
    name: "MobileNetV2's first layer",
    x: [2, 17, 16, 3],
    filter: [3, 3, 3, 32],
    strides: 2,
    pad: 'same',
    recast: false,
  },
  { name: '11x11 stride 4 valid', x: [1, 35, 35, 3], filter: [11, 11, 3, 8], strides: 4, pad: 'valid', recast: false },
  { name: 'stride 3', x: [2, 11, 11, 8], filter: [3, 3, 8, 4], strides: 3, pad: 'valid', recast: false },
  {
    name: 'unequal strides [2, 3]',
    x: [2, 11, 9, 8],
    filter: [3, 2, 8, 4],
    strides: [2, 3],
    pad: 'same',
    recast: false,
  },
  { name: 'pad wider than the filter', x: [2, 6, 6, 3], filter: [3, 3, 3, 4], strides: 1, pad: 3, recast: false },
  // The gradient loses 'ceil', so dy is larger than the attrs say: built-in kernel.
  {
    name: 'numeric pad, stride 2, ceil (via tf.grad)',
    x: [1, 10, 10, 8],
    filter: [3, 3, 8, 3],
    strides: 2,
    pad: 1,
    dimRoundingMode: 'ceil',
    recast: false,
    builtIn: true,
  },
];

/** dL/dx for L = Σ conv2d(x, filter) · dy, so the gradient is exactly Conv2DBackpropInput(dy, filter). */
async function inputGradient(backend: 'cpu' | 'wasm', c: ConvCase, seed: number): Promise<Float32Array> {
  await tf.setBackend(backend);
  return inputGradientHere(c, seed);
}

/** inputGradient on the current backend. */
function inputGradientHere(c: ConvCase, seed: number): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(randomValues(size(c.x), seed), c.x);
    const filter = tf.tensor4d(randomValues(size(c.filter), seed + 1), c.filter);
    const conv = (input: tf.Tensor4D): tf.Tensor4D =>
      tf.conv2d(input, filter, c.strides, c.pad, 'NHWC', 1, c.dimRoundingMode);
    const outShape = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.dimRoundingMode).outShape;
    const dy = tf.tensor(randomValues(size(outShape), seed + 2), outShape);
    const grad = tf.grad((input) => tf.sum(tf.mul(conv(input as tf.Tensor4D), dy)))(x);
    assert.deepEqual(grad.shape, c.x);
    return grad.dataSync() as Float32Array;
  });
}

describe('Conv2DBackpropInput on wasm matches cpu', () => {
  INPUT_CASES.forEach((c, i) => {
    const path = c.recast ? 'recast onto Conv2D' : c.builtIn ? 'built-in kernel' : 'direct SIMD kernel';
    test(`${c.name} (${path})`, async (t) => {
      const seed = 100_000 + 1000 * i;
      const expected = await inputGradient('cpu', c, seed);
      await tf.setBackend('wasm');
      const kernels = convolutionKernels(tf.backend() as BackendWasm);
      assert.ok(kernels);
      const direct = t.mock.method(kernels, 'conv2d_backprop_input_direct');
      let actual: Float32Array = new Float32Array(0);
      const conv2DCalls = countCalls('Conv2D', () => (actual = inputGradientHere(c, seed)));
      // tf.grad runs the forward Conv2D once too.
      assert.equal(conv2DCalls, c.recast ? 2 : 1, 'Conv2D calls: the forward pass, plus one if recast');
      assert.equal(direct.mock.callCount(), c.recast || c.builtIn ? 0 : 1, 'calls of the direct SIMD kernel');
      const scale = maxAbs(expected);
      assert.ok(scale > 0.1, `reference gradient is degenerate (max |dx| = ${scale})`);
      const diff = maxAbsDiff(actual, expected);
      assert.ok(diff <= 1e-4 * scale, `max |wasm - cpu| = ${diff}, max |cpu| = ${scale}`);
    });
  });
});

/** dx straight from its definition, summed in float64, for NHWC dy and a [kh,kw,ci,co] filter. */
function referenceInputGradient(c: ConvCase, dy: Float32Array, filter: Float32Array): Float64Array {
  const dx = new Float64Array(size(c.x));
  forEachTap(c, (xAt, dyAt, filterAt, ci, co) => {
    for (let k = 0; k < ci; k++) {
      const fAt = filterAt + k * co;
      let sum = 0;
      for (let o = 0; o < co; o++) sum += (dy[dyAt + o] ?? NaN) * (filter[fAt + o] ?? NaN);
      dx[xAt + k] = (dx[xAt + k] ?? NaN) + sum;
    }
  });
  return dx;
}

describe('Conv2DBackpropInput on wasm at full AlexNet sizes matches a float64 reference', () => {
  const FULL: readonly ConvCase[] = [
    { name: 'AlexNet conv2', x: [2, 16, 16, 64], filter: [3, 3, 64, 192], strides: 1, pad: 'same' },
    { name: 'AlexNet conv3', x: [2, 8, 8, 192], filter: [3, 3, 192, 384], strides: 1, pad: 'same' },
    { name: 'AlexNet conv4', x: [2, 8, 8, 384], filter: [3, 3, 384, 256], strides: 1, pad: 'same' },
    { name: 'AlexNet conv5', x: [2, 8, 8, 256], filter: [3, 3, 256, 256], strides: 1, pad: 'same' },
  ];
  FULL.forEach((c, i) => {
    test(c.name, async () => {
      const seed = 150_000 + 1000 * i;
      const actual = await inputGradient('wasm', c, seed);
      const outShape = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad).outShape;
      const expected = referenceInputGradient(
        c,
        randomValues(size(outShape), seed + 2),
        randomValues(size(c.filter), seed + 1),
      );
      const scale = maxAbs(expected);
      assert.ok(scale > 0.1, `reference gradient is degenerate (max |dx| = ${scale})`);
      const diff = maxAbsDiff(actual, expected);
      assert.ok(diff <= 1e-4 * scale, `max |wasm - reference| = ${diff}, max |reference| = ${scale}`);
    });
  });
});

interface MatMulCase {
  readonly name: string;
  readonly a: number[];
  readonly b: number[];
  readonly transposeA: boolean;
  readonly transposeB: boolean;
  /** Whether the wasm kernel should transpose an operand for XNNPACK, or leave it to the built-in kernel. */
  readonly recast: boolean;
}

const MATMUL_CASES: readonly MatMulCase[] = [
  // A dense layer's backward pass: dX = dY·Wᵀ, dW = Xᵀ·dY.
  { name: 'LeNet fc1 dX = dY·Wᵀ', a: [8, 120], b: [256, 120], transposeA: false, transposeB: true, recast: true },
  { name: 'LeNet fc1 dW = Xᵀ·dY', a: [8, 256], b: [8, 120], transposeA: true, transposeB: false, recast: true },
  {
    name: 'LeNet fc3 dX, rank 3 with batch 1',
    a: [1, 8, 10],
    b: [1, 84, 10],
    transposeA: false,
    transposeB: true,
    recast: true,
  },
  {
    name: 'AlexNet-like dX, large W (computed as (W·dYᵀ)ᵀ)',
    a: [4, 1024],
    b: [512, 1024],
    transposeA: false,
    transposeB: true,
    recast: true,
  },
  {
    name: 'AlexNet-like dW, large output',
    a: [4, 1024],
    b: [4, 512],
    transposeA: true,
    transposeB: false,
    recast: true,
  },
  { name: 'both transposed', a: [30, 8], b: [20, 30], transposeA: true, transposeB: true, recast: true },
  { name: 'a vector', a: [1, 50], b: [7, 50], transposeA: false, transposeB: true, recast: true },
  {
    name: 'neither transposed, n ≥ m (matmul of simd/convolutions.c)',
    a: [8, 30],
    b: [30, 20],
    transposeA: false,
    transposeB: false,
    recast: false,
  },
  {
    name: 'neither transposed, rank 3 with batch 1 against rank 2',
    a: [1, 7, 300],
    b: [300, 37],
    transposeA: false,
    transposeB: false,
    recast: false,
  },
  {
    name: 'neither transposed, n < m (XNNPACK)',
    a: [40, 30],
    b: [30, 20],
    transposeA: false,
    transposeB: false,
    recast: false,
  },
  { name: 'batched', a: [2, 8, 10], b: [2, 12, 10], transposeA: false, transposeB: true, recast: false },
  { name: 'broadcast batch', a: [1, 8, 10], b: [3, 12, 10], transposeA: false, transposeB: true, recast: false },
];

describe('BatchMatMul on wasm matches cpu', () => {
  MATMUL_CASES.forEach((c, i) => {
    test(`${c.name} (${c.recast ? 'XNNPACK' : 'built-in kernel'})`, async () => {
      const seed = 200_000 + 1000 * i;
      const onBackend = (): Float32Array =>
        tf.tidy(() => {
          const a = tf.tensor(randomValues(size(c.a), seed), c.a);
          const b = tf.tensor(randomValues(size(c.b), seed + 1), c.b);
          return tf.matMul(a, b, c.transposeA, c.transposeB).dataSync() as Float32Array;
        });
      await tf.setBackend('cpu');
      const expected = onBackend();
      await tf.setBackend('wasm');
      let actual: Float32Array = new Float32Array(0);
      const transposes = countCalls('Transpose', () => (actual = onBackend()));
      assert.equal(transposes > 0, c.recast, `Transpose calls: ${transposes}`);
      const scale = maxAbs(expected);
      assert.ok(scale > 0.1);
      const diff = maxAbsDiff(actual, expected);
      assert.ok(diff <= 1e-5 * scale, `max |wasm - cpu| = ${diff}, max |cpu| = ${scale}`);
    });
  });
});

interface PoolCase {
  readonly name: string;
  readonly x: [number, number, number, number];
  readonly filterSize: number | [number, number];
  readonly strides: number | [number, number];
  readonly pad: 'valid' | 'same' | number;
  /**
   * How the input is drawn: after a ReLU (many exact zeros, as in LeNet and AlexNet), raw, small
   * integers (many ties), or small integers with NaN, −∞ and +∞ mixed in (whole windows of them too).
   */
  readonly values: 'relu' | 'signed' | 'integers' | 'special';
}

const POOL_CASES: readonly PoolCase[] = [
  { name: 'LeNet pool1 (MNIST)', x: [4, 24, 24, 6], filterSize: 2, strides: 2, pad: 'valid', values: 'relu' },
  { name: 'LeNet pool2 (MNIST)', x: [4, 8, 8, 16], filterSize: 2, strides: 2, pad: 'valid', values: 'relu' },
  {
    name: 'LeNet pool2 (CIFAR), odd size drops the last row',
    x: [4, 10, 10, 16],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'relu',
  },
  { name: 'LeNet pool1 (CIFAR)', x: [4, 28, 28, 6], filterSize: 2, strides: 2, pad: 'valid', values: 'relu' },
  { name: 'AlexNet pool1', x: [2, 32, 32, 64], filterSize: 2, strides: 2, pad: 'valid', values: 'relu' },
  { name: 'AlexNet pool2', x: [2, 16, 16, 192], filterSize: 2, strides: 2, pad: 'valid', values: 'relu' },
  { name: 'AlexNet pool3', x: [2, 8, 8, 256], filterSize: 2, strides: 2, pad: 'valid', values: 'relu' },
  // The built-in kernel would drop these: it ignores window maxima below FLT_MIN.
  { name: 'negative values', x: [2, 8, 8, 4], filterSize: 2, strides: 2, pad: 'valid', values: 'signed' },
  // Ties go to the first maximum in row-major order, as on cpu (the built-in kernel takes the last).
  { name: 'ties', x: [2, 8, 8, 4], filterSize: 2, strides: 2, pad: 'valid', values: 'integers' },
  // 2x2 stride 2 takes an unrolled path when every window lies inside the input.
  // NaN never wins a window (nor does −∞): all-NaN and all-−∞ windows pass no gradient, as on cpu.
  {
    name: 'LeNet pool1 (MNIST), NaN, −∞, +∞ and ties',
    x: [4, 24, 24, 6],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: 'LeNet pool2 (MNIST), NaN, −∞, +∞ and ties',
    x: [4, 8, 8, 16],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: 'LeNet pool1 (CIFAR), NaN, −∞, +∞ and ties',
    x: [4, 28, 28, 6],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: 'LeNet pool2 (CIFAR), NaN, −∞, +∞ and ties',
    x: [4, 10, 10, 16],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: 'LeNet pool1 (MNIST), negative values',
    x: [4, 24, 24, 6],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'signed',
  },
  {
    name: 'LeNet pool2 (CIFAR), negative values',
    x: [4, 10, 10, 16],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'signed',
  },
  // The WebAssembly pass does 4 channels at a time, then 2, then 1: every remainder.
  {
    name: '2x2 stride 2, 1 channel, NaN and ties',
    x: [2, 6, 6, 1],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: '2x2 stride 2, 2 channels, NaN and ties',
    x: [2, 6, 6, 2],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: '2x2 stride 2, 7 channels, NaN and ties',
    x: [2, 6, 6, 7],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: '2x2 stride 2, odd sizes, 5 channels, NaN and ties',
    x: [3, 9, 7, 5],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'special',
  },
  {
    name: '2x2 stride 2, odd sizes, ties',
    x: [2, 9, 7, 3],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'integers',
  },
  {
    name: '2x2 stride 2, odd sizes, negative values',
    x: [3, 7, 9, 5],
    filterSize: 2,
    strides: 2,
    pad: 'valid',
    values: 'signed',
  },
  {
    name: '2x2 stride 2 same, even size, ties',
    x: [2, 8, 6, 3],
    filterSize: 2,
    strides: 2,
    pad: 'same',
    values: 'integers',
  },
  {
    name: '2x2 stride 2 same, odd size (windows past the edge: general loop)',
    x: [2, 9, 7, 3],
    filterSize: 2,
    strides: 2,
    pad: 'same',
    values: 'signed',
  },
  {
    name: 'overlapping 3x3 stride 2 same',
    x: [2, 13, 13, 8],
    filterSize: 3,
    strides: 2,
    pad: 'same',
    values: 'signed',
  },
  {
    name: 'overlapping 3x3 stride 1 same, ties',
    x: [2, 7, 7, 3],
    filterSize: 3,
    strides: 1,
    pad: 'same',
    values: 'integers',
  },
  // (wasm's forward MaxPool itself fails with a numeric pad and unequal strides.)
  { name: 'numeric pad 1, 3x3 window, stride 2', x: [2, 9, 8, 5], filterSize: 3, strides: 2, pad: 1, values: 'signed' },
  {
    name: '3x2 window, strides [2, 1], same',
    x: [2, 9, 8, 5],
    filterSize: [3, 2],
    strides: [2, 1],
    pad: 'same',
    values: 'integers',
  },
];

/** Small integers, a fifth of them replaced by NaN, −∞ or +∞, and some whole NaN, −∞ or 0 rows. */
function specialValues(shape: readonly number[], seed: number): Float32Array {
  const raw = randomValues(size(shape), seed);
  const rowLength = (shape[2] ?? 1) * (shape[3] ?? 1);
  const specials = [NaN, -Infinity, Infinity, NaN, -Infinity];
  return raw.map((v, i) => {
    const row = Math.floor(i / rowLength);
    if (row % 7 === 1) return NaN; // windows of NaN only
    if (row % 7 === 3) return -Infinity; // and of −∞ only
    if (row % 7 === 5) return 0; // all-zero windows, as after a ReLU
    const pick = Math.floor(((v + 1) / 2) * 25);
    return pick < specials.length ? (specials[pick] as number) : Math.floor(v * 2);
  });
}

function poolInput(c: PoolCase, seed: number): Float32Array {
  const raw = randomValues(size(c.x), seed);
  switch (c.values) {
    case 'relu':
      return raw.map((v) => Math.max(v, 0));
    case 'integers':
      return raw.map((v) => Math.floor(v * 2));
    case 'special':
      return specialValues(c.x, seed);
    case 'signed':
      return raw;
  }
}

/** dL/dx for L = Σ maxPool(x) · dy, so the gradient is exactly MaxPoolGrad(dy, x, maxPool(x)). */
async function poolGradient(backend: 'cpu' | 'wasm', c: PoolCase, seed: number): Promise<Float32Array> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const values = poolInput(c, seed);
    const x = tf.tensor4d(values, c.x);
    const pool = (input: tf.Tensor4D): tf.Tensor4D => tf.maxPool(input, c.filterSize, c.strides, c.pad);
    const outShape = pool(x).shape;
    const dy = tf.tensor(randomValues(size(outShape), seed + 1), outShape);
    const grad = tf.grad((input) => tf.sum(tf.mul(pool(input as tf.Tensor4D), dy)))(x);
    assert.deepEqual(grad.shape, c.x);
    return grad.dataSync() as Float32Array;
  });
}

const is2x2Stride2 = (c: PoolCase): boolean => c.filterSize === 2 && c.strides === 2;

describe('MaxPoolGrad on wasm matches cpu', () => {
  test("2x2 stride-2 pools run the WebAssembly pass on the backend's own memory", async () => {
    await tf.setBackend('wasm');
    assert.equal(typeof maxPool2x2GradOnBackend(tf.backend() as BackendWasm), 'function');
  });

  POOL_CASES.forEach((c, i) => {
    test(c.name, async () => {
      const seed = 300_000 + 1000 * i;
      const expected = await poolGradient('cpu', c, seed);
      const actual = await poolGradient('wasm', c, seed);
      const scale = maxAbs(expected);
      assert.ok(scale > 0.1, `reference gradient is degenerate (max |dx| = ${scale})`);
      // Each dx is one dy value, or with overlapping windows a sum of a few in another order.
      const diff = maxAbsDiff(actual, expected);
      const tolerance = is2x2Stride2(c) ? 0 : 1e-6 * scale; // windows don't overlap: exactly one dy or 0
      assert.ok(diff <= tolerance, `max |wasm - cpu| = ${diff}, max |cpu| = ${scale}`);
    });
  });

  test('the heap growing between calls changes nothing', async () => {
    const attrs = { filterSize: 2, strides: 2, pad: 'valid' };
    const xShape = [64, 24, 24, 6];
    const dyShape = [64, 12, 12, 6];
    const onBackend = async (
      backend: string,
      seed: number,
      grow: boolean,
    ): Promise<{ dx: Float32Array; heapBytes: number }> => {
      await tf.setBackend(backend);
      const x = tf.tensor(specialValues(xShape, seed), xShape);
      const dy = tf.tensor(randomValues(size(dyShape), seed + 1), dyShape);
      const output = tf.zeros(dyShape); // MaxPoolGrad's third input, unused by every backend here
      const heap = (): number =>
        backend === 'wasm'
          ? ((tf.backend() as BackendWasm).wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer.byteLength
          : 0;
      let heapBytes = heap();
      let big: tf.Tensor | undefined;
      if (grow) {
        // More than the heap holds now: the backend must grow its memory, detaching every view.
        big = tf.fill([heapBytes / 4 + (16 << 20)], 1);
        heapBytes = heap();
      }
      const dx: tf.Tensor = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output }, attrs);
      const values = dx.dataSync() as Float32Array;
      tf.dispose([x, dy, output, dx, big ?? []]);
      return { dx: values, heapBytes };
    };
    const before = await onBackend('wasm', 61, false);
    const grown = await onBackend('wasm', 62, true);
    assert.ok(grown.heapBytes > before.heapBytes, `the heap grew (${before.heapBytes} to ${grown.heapBytes} bytes)`);
    const after = await onBackend('wasm', 63, false);
    for (const [seed, actual] of [
      [61, before.dx],
      [62, grown.dx],
      [63, after.dx],
    ] as const) {
      const expected = (await onBackend('cpu', seed, false)).dx;
      assert.equal(maxAbsDiff(actual, expected), 0, `seed ${seed}`);
    }
  });
});

describe('the WebAssembly 2x2 max-pool gradient module', () => {
  /** The JavaScript pass's rule, written out plainly: the first strictly greater value wins. */
  function reference(
    x: Float32Array,
    dy: Float32Array,
    [batch, height, width, channels]: readonly number[],
  ): Float32Array {
    const [h = 0, w = 0, c = 0] = [height, width, channels];
    const outHeight = Math.floor(h / 2);
    const outWidth = Math.floor(w / 2);
    const dx = new Float32Array(x.length);
    for (let b = 0; b < (batch ?? 0); b++)
      for (let oh = 0; oh < outHeight; oh++)
        for (let ow = 0; ow < outWidth; ow++)
          for (let ch = 0; ch < c; ch++) {
            let best = -Infinity;
            let where = -1;
            for (const [i, j] of [
              [0, 0],
              [0, 1],
              [1, 0],
              [1, 1],
            ] as const) {
              const at = ((b * h + 2 * oh + i) * w + 2 * ow + j) * c + ch;
              if ((x[at] as number) > best) {
                best = x[at] as number;
                where = at;
              }
            }
            if (where >= 0) dx[where] = dy[((b * outHeight + oh) * outWidth + ow) * c + ch] as number;
          }
    return dx;
  }

  test('is valid WebAssembly, one instance per memory, none on shared memory', () => {
    assert.equal(WebAssembly.validate(moduleBytes()), true);
    const memory = new WebAssembly.Memory({ initial: 1 });
    assert.equal(typeof maxPool2x2GradOn(memory), 'function');
    assert.equal(maxPool2x2GradOn(memory), maxPool2x2GradOn(memory));
    const shared = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    assert.equal(maxPool2x2GradOn(shared), undefined);
  });

  test('every channel remainder, odd sizes: matches the rule and writes nothing outside dx', () => {
    const memory = new WebAssembly.Memory({ initial: 16 });
    const pass = maxPool2x2GradOn(memory);
    assert.ok(pass !== undefined);
    const shapes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 16].flatMap((channels) => [
      [2, 8, 8, channels],
      [2, 9, 7, channels],
    ]);
    shapes.forEach((shape, i) => {
      const [batch = 0, height = 0, width = 0, channels = 0] = shape;
      const [outHeight, outWidth] = [Math.floor(height / 2), Math.floor(width / 2)];
      const xSize = size(shape);
      const dySize = batch * outHeight * outWidth * channels;
      // x, dy and dx at unaligned-to-16 offsets, with guard bytes between them.
      const [xAt, dyAt, dxAt] = [68, 68 + 4 * xSize + 20, 68 + 4 * xSize + 20 + 4 * dySize + 36];
      const bytes = new Uint8Array(memory.buffer);
      bytes.fill(0xa5);
      const x = new Float32Array(memory.buffer, xAt, xSize);
      const dy = new Float32Array(memory.buffer, dyAt, dySize);
      x.set(specialValues(shape, 700 + i));
      dy.set(randomValues(dySize, 800 + i));
      const untouched = bytes.slice();
      const dx = new Float32Array(memory.buffer, dxAt, xSize);
      const rowBytes = 4 * width * channels;
      for (let b = 0; b < batch; b++) {
        // One call per image, as the kernel does for an odd height (even: one call for all).
        const imageBytes = height * rowBytes;
        pass(
          xAt + b * imageBytes,
          dyAt + 4 * b * outHeight * outWidth * channels,
          dxAt + b * imageBytes,
          outHeight,
          outWidth,
          4 * channels,
          rowBytes,
          2 * rowBytes,
        );
      }
      const expected = reference(x, dy, shape);
      for (let k = 0; k < xSize; k++) {
        const skipped =
          Math.floor(k / (width * channels)) % height >= 2 * outHeight ||
          Math.floor(k / channels) % width >= 2 * outWidth;
        // Unvisited dx (the last odd row or column) keep their bytes: the kernel zeroes dx first there.
        if (!skipped)
          assert.ok(Object.is(dx[k], expected[k]), `shape [${shape}] dx[${k}] = ${dx[k]}, expected ${expected[k]}`);
      }
      const after = new Uint8Array(memory.buffer);
      for (let k = 0; k < after.length; k++) {
        const inDx = k >= dxAt && k < dxAt + 4 * xSize;
        if (!inDx && after[k] !== untouched[k]) assert.fail(`shape [${shape}]: byte ${k} outside dx changed`);
      }
    });
  });
});

describe('LeNet-5 gradients on wasm match cpu', () => {
  const IMAGES = [
    { data: 'MNIST', height: 28, width: 28, channels: 1 },
    { data: 'CIFAR-10', height: 32, width: 32, channels: 3 },
  ] as const;
  for (const { data, ...shape } of IMAGES)
    test(`every weight gradient of one training batch (${data})`, async () => {
      const pixels = shape.height * shape.width * shape.channels;
      // In the model's weight order: variable names carry a per-build counter.
      const gradients = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
        await tf.setBackend(backend);
        const model = lenet5.build(shape, 10, 7);
        const tensors = tf.tidy(() => {
          const xs = tf.tensor4d(randomValues(8 * pixels, 400_000), [8, shape.height, shape.width, shape.channels]);
          const ys = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32'), 10);
          const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
          const { grads } = tf.variableGrads(
            () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar,
            variables,
          );
          return variables.map((variable) => grads[variable.name] as tf.Tensor);
        });
        const values = tensors.map((t) => t.dataSync() as Float32Array);
        tf.dispose(tensors);
        model.dispose();
        return values;
      };
      const expected = await gradients('cpu');
      const actual = await gradients('wasm');
      assert.equal(actual.length, 10, 'five layers with kernel and bias');
      assert.equal(actual.length, expected.length);
      for (const [name, values] of expected.entries()) {
        const scale = maxAbs(values);
        assert.ok(scale > 1e-4, `gradient ${name} is degenerate`);
        const diff = maxAbsDiff(actual[name] ?? new Float32Array(0), values);
        assert.ok(diff <= 1e-4 * scale, `weight ${name}: max |wasm - cpu| = ${diff}, max |cpu| = ${scale}`);
      }
    });
});

/** As ConvCase, with the filter [kh, kw, inC, channel multiplier]. */
const DEPTHWISE_CASES: readonly ConvCase[] = [
  { name: 'MobileNetV2 stride 1 (32 channels)', x: [2, 12, 12, 32], filter: [3, 3, 32, 1], strides: 1, pad: 'same' },
  { name: 'MobileNetV2 stride 2 (96 channels)', x: [2, 12, 12, 96], filter: [3, 3, 96, 1], strides: 2, pad: 'same' },
  { name: '7 channels, stride 2 valid', x: [3, 9, 10, 7], filter: [3, 3, 7, 1], strides: 2, pad: 'valid' },
  { name: '5 channels, 5x5 valid', x: [2, 9, 8, 5], filter: [5, 5, 5, 1], strides: 1, pad: 'valid' },
  { name: 'unequal strides', x: [2, 9, 11, 6], filter: [3, 2, 6, 1], strides: [2, 1], pad: 'same' },
  {
    name: 'numeric pad, stride 2, ceil',
    x: [1, 10, 10, 4],
    filter: [3, 3, 4, 1],
    strides: 2,
    pad: 1,
    dimRoundingMode: 'ceil',
  },
  {
    name: 'explicit pad',
    x: [2, 8, 7, 3],
    filter: [3, 3, 3, 1],
    strides: 2,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
  { name: 'channel multiplier 2', x: [2, 7, 7, 3], filter: [3, 3, 3, 2], strides: 1, pad: 'same' },
];

/** dL/dx and dL/dFilter for L = Σ depthwiseConv2d(x, filter) · dy on `backend`. */
async function depthwiseGradients(backend: 'cpu' | 'wasm', c: ConvCase, seed: number): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor4d(randomValues(size(c.x), seed), c.x);
    const filter = tf.tensor4d(randomValues(size(c.filter), seed + 1), c.filter);
    const conv = (input: tf.Tensor4D, f: tf.Tensor4D): tf.Tensor4D =>
      tf.depthwiseConv2d(input, f, c.strides, c.pad, 'NHWC', 1, c.dimRoundingMode);
    const outShape = conv(x, filter).shape;
    const dy = tf.tensor(randomValues(size(outShape), seed + 2), outShape);
    const [dx, dFilter] = tf.grads((input, f) => tf.sum(tf.mul(conv(input as tf.Tensor4D, f as tf.Tensor4D), dy)))([
      x,
      filter,
    ]);
    assert.deepEqual(dx?.shape, c.x);
    assert.deepEqual(dFilter?.shape, c.filter);
    return [dx, dFilter].map((t) => t?.dataSync() as Float32Array);
  });
}

describe('tf.grad of tf.depthwiseConv2d on wasm matches cpu', () => {
  DEPTHWISE_CASES.forEach((c, i) => {
    test(c.name, async () => {
      const expected = await depthwiseGradients('cpu', c, 2000 * i);
      const actual = await depthwiseGradients('wasm', c, 2000 * i);
      ['dx', 'dFilter'].forEach((name, j) => {
        const scale = maxAbs(expected[j] ?? []);
        assert.ok(scale > 0.1, `${name}: the reference is degenerate (max ${scale})`);
        const diff = maxAbsDiff(actual[j] ?? [], expected[j] ?? []);
        assert.ok(diff <= 1e-5 * scale, `${name}: max |wasm - cpu| = ${diff}, max |cpu| = ${scale}`);
      });
    });
  });

  test('dilations other than 1 are refused with a clear error', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 6, 6, 2]);
    const dy = tf.zeros([1, 6, 6, 2]);
    const filter = tf.zeros([3, 3, 2, 1]);
    const attrs = { strides: 1, pad: 'same', dilations: 2 };
    assert.throws(
      () =>
        tf
          .engine()
          .runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: [3, 3, 2, 1] }),
      /supports dilation 1 only, got \[2,2\]/,
    );
    assert.throws(
      () =>
        tf
          .engine()
          .runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...attrs, inputShape: [1, 6, 6, 2] }),
      /supports dilation 1 only, got \[2,2\]/,
    );
    tf.dispose([x, dy, filter]);
  });
});

/**
 * The gradient cases of TF.js's own op tests for depthwiseConv2d (tfjs-core 4.22,
 * src/ops/depthwise_conv2d_test.ts, 'depthwiseConv2d gradients': two 2x2 RGB images, a 2x2 filter
 * with channel multiplier 2), their inputs and expected values as they are there, run on wasm.
 */
describe("TF.js's own depthwiseConv2d gradient tests pass on wasm", () => {
  const images = (): tf.Tensor4D =>
    tf.tensor4d([
      [
        [
          [2, 3, 1],
          [3, 0, 2],
        ],
        [
          [0, 4, 1],
          [3, 1, 3],
        ],
      ],
      [
        [
          [2, 1, 0],
          [0, 3, 3],
        ],
        [
          [4, 0, 1],
          [1, 4, 1],
        ],
      ],
    ]);
  const filter = (): tf.Tensor4D =>
    tf.tensor4d([
      [
        [
          [1, 1],
          [1, 1],
          [0, 0],
        ],
        [
          [0, 1],
          [1, 1],
          [1, 1],
        ],
      ],
      [
        [
          [1, 0],
          [1, 1],
          [0, 0],
        ],
        [
          [0, 1],
          [1, 0],
          [0, 0],
        ],
      ],
    ]);
  const depthwise = (x: tf.Tensor, f: tf.Tensor, stride: number, pad: 'same' | 'valid'): tf.Tensor =>
    tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, pad);
  const expectValues = (actual: tf.Tensor, expected: number[], shape: number[]): void => {
    assert.deepEqual(actual.shape, shape);
    assert.deepEqual(Array.from(actual.dataSync()), expected);
  };
  const cases: ReadonlyArray<{ name: string; run: () => tf.Tensor; expected: number[]; shape: number[] }> = [
    {
      name: 'wrt input',
      run: () => tf.grad((x) => depthwise(x, filter(), 1, 'same'))(images()),
      expected: [2, 2, 0, 3, 4, 2, 3, 4, 0, 5, 7, 2, 2, 2, 0, 3, 4, 2, 3, 4, 0, 5, 7, 2],
      shape: [2, 2, 2, 3],
    },
    {
      name: 'wrt input, squared output',
      run: () => tf.grad((x) => tf.square(depthwise(x, filter(), 1, 'same')))(images()),
      expected: [20, 30, 0, 34, 34, 8, 10, 50, 0, 46, 44, 12, 18, 24, 0, 8, 52, 12, 30, 40, 0, 22, 76, 4],
      shape: [2, 2, 2, 3],
    },
    {
      name: 'wrt filter',
      run: () => tf.grad((f) => depthwise(images(), f, 1, 'same'))(filter()),
      expected: [15, 15, 16, 16, 12, 12, 7, 7, 8, 8, 9, 9, 8, 8, 9, 9, 6, 6, 4, 4, 5, 5, 4, 4],
      shape: [2, 2, 3, 2],
    },
    {
      name: 'wrt filter, squared output',
      run: () => tf.grad((f) => tf.square(depthwise(images(), f, 1, 'same')))(filter()),
      expected: [120, 122, 180, 166, 12, 12, 20, 76, 90, 66, 46, 46, 86, 42, 122, 114, 10, 10, 24, 54, 80, 46, 18, 18],
      shape: [2, 2, 3, 2],
    },
    {
      name: 'wrt input, stride=2, pad=valid',
      run: () => tf.grad((x) => depthwise(x, filter(), 2, 'valid'))(images()),
      expected: [2, 2, 0, 1, 2, 2, 1, 2, 0, 1, 1, 0, 2, 2, 0, 1, 2, 2, 1, 2, 0, 1, 1, 0],
      shape: [2, 2, 2, 3],
    },
    {
      name: 'wrt filter, stride=2, pad=valid',
      run: () => tf.grad((f) => depthwise(images(), f, 2, 'valid'))(filter()),
      expected: [4, 4, 4, 4, 1, 1, 3, 3, 3, 3, 5, 5, 4, 4, 4, 4, 2, 2, 4, 4, 5, 5, 4, 4],
      shape: [2, 2, 3, 2],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      await tf.setBackend('wasm');
      // Small integers: every sum is exact in float32, so the values compare exactly.
      tf.tidy(() => expectValues(c.run(), c.expected, c.shape));
    });
  }

  test('gradient with clones (chMul 1, 3x3 input)', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(
      [0.230664, 0.987388, 0.0685208, 0.419224, 0.887861, 0.731641, 0.0741907, 0.409265, 0.351377],
      [1, 3, 3, 1],
    );
    const f = tf.tensor4d([0.303873, 0.229223, 0.144333, 0.803373], [2, 2, 1, 1]);
    const [dx, df] = tf.grads((a, b) =>
      tf.depthwiseConv2d(a.clone() as tf.Tensor4D, b.clone() as tf.Tensor4D, 1, 'valid').clone(),
    )([x, f]);
    const close = (actual: ArrayLike<number>, expected: number[]): void =>
      assert.ok(maxAbsDiff(actual, expected) < 1e-4, `${Array.from(actual)} is not ${expected}`);
    close(
      dx?.dataSync() ?? [],
      [0.303873, 0.533096, 0.229223, 0.448206, 1.480802, 1.032596, 0.144333, 0.947706, 0.803373],
    );
    close(df?.dataSync() ?? [], [2.525137, 2.6754108, 1.7905407, 2.380144]);
    tf.dispose([x, f, dx, df]);
  });
});

describe('registered wasm kernel', () => {
  test('registering twice changes nothing and warns nothing', async (t) => {
    const warn = t.mock.method(console, 'warn');
    const names = [
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
      'BatchMatMul',
      'MaxPoolGrad',
      'Identity',
      'DepthwiseConv2dNative',
      'FusedBatchNorm',
      'Cast',
      'Mean',
      'Tile',
      'GreaterEqual',
      'LessEqual',
      'LogicalAnd',
      'Select',
    ];
    const before = names.map((name) => tf.getKernel(name, 'wasm'));
    registerWasmKernels();
    assert.deepEqual(
      names.map((name) => tf.getKernel(name, 'wasm')),
      before,
    );
    assert.equal(warn.mock.callCount(), 0);
  });

  test('the replacement kernels keep the built-in setup, which their fallback needs', () => {
    for (const name of [
      'Conv2DBackpropInput',
      'BatchMatMul',
      'MaxPoolGrad',
      'FusedBatchNorm',
      'Mean',
      'Tile',
      'Select',
    ]) {
      assert.equal(typeof tf.getKernel(name, 'wasm').setupFunc, 'function', name);
    }
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

  const LEAK_CASES: ReadonlyArray<{ name: string; kernel: string; inputs: Record<string, number[]>; attrs: object }> = [
    {
      name: 'Conv2DBackpropFilter',
      kernel: 'Conv2DBackpropFilter',
      inputs: { x: [2, 9, 9, 3], dy: [2, 5, 5, 4] },
      attrs: { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 4] },
    },
    {
      name: 'Conv2DBackpropInput, stride 1',
      kernel: 'Conv2DBackpropInput',
      inputs: { dy: [2, 5, 5, 4], filter: [3, 3, 3, 4] },
      attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 5, 5, 3] },
    },
    {
      name: 'Conv2DBackpropInput, stride 2',
      kernel: 'Conv2DBackpropInput',
      inputs: { dy: [2, 5, 5, 4], filter: [3, 3, 8, 4] },
      attrs: { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 9, 9, 8] },
    },
    {
      name: 'BatchMatMul dY·Wᵀ',
      kernel: 'BatchMatMul',
      inputs: { a: [4, 30], b: [50, 30] },
      attrs: { transposeA: false, transposeB: true },
    },
    {
      name: 'BatchMatMul Xᵀ·dY',
      kernel: 'BatchMatMul',
      inputs: { a: [4, 50], b: [4, 30] },
      attrs: { transposeA: true, transposeB: false },
    },
    {
      name: 'MaxPoolGrad',
      kernel: 'MaxPoolGrad',
      inputs: { dy: [2, 4, 4, 3], input: [2, 8, 8, 3], output: [2, 4, 4, 3] },
      attrs: { filterSize: 2, strides: 2, pad: 'valid' },
    },
    {
      name: 'MaxPoolGrad, general loop',
      kernel: 'MaxPoolGrad',
      inputs: { dy: [2, 4, 4, 3], input: [2, 8, 8, 3], output: [2, 4, 4, 3] },
      attrs: { filterSize: 3, strides: 2, pad: 'same' },
    },
    {
      name: 'DepthwiseConv2dNativeBackpropFilter',
      kernel: 'DepthwiseConv2dNativeBackpropFilter',
      inputs: { x: [2, 9, 9, 5], dy: [2, 5, 5, 5] },
      attrs: { strides: 2, pad: 'same', dilations: 1, filterShape: [3, 3, 5, 1] },
    },
    {
      name: 'DepthwiseConv2dNativeBackpropInput',
      kernel: 'DepthwiseConv2dNativeBackpropInput',
      inputs: { dy: [2, 5, 5, 5], filter: [3, 3, 5, 1] },
      attrs: { strides: 2, pad: 'same', dilations: 1, inputShape: [2, 9, 9, 5] },
    },
    { name: 'Identity', kernel: 'Identity', inputs: { x: [2, 5, 5, 3] }, attrs: {} },
    {
      name: 'Conv2DBackpropInput, direct (3 channels, stride 2)',
      kernel: 'Conv2DBackpropInput',
      inputs: { dy: [2, 5, 5, 8], filter: [3, 3, 3, 8] },
      attrs: { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 9, 9, 3] },
    },
    {
      name: 'DepthwiseConv2dNative',
      kernel: 'DepthwiseConv2dNative',
      inputs: { x: [2, 9, 9, 5], filter: [3, 3, 5, 1] },
      attrs: { strides: 2, pad: 'same', dilations: 1, dataFormat: 'NHWC' },
    },
    {
      name: 'FusedBatchNorm',
      kernel: 'FusedBatchNorm',
      inputs: { x: [2, 5, 5, 7], mean: [7], variance: [7], scale: [7], offset: [7] },
      attrs: { varianceEpsilon: 0.001 },
    },
    { name: 'Mean', kernel: 'Mean', inputs: { x: [2, 5, 5, 7] }, attrs: { axis: [0, 1, 2], keepDims: false } },
    { name: 'Tile', kernel: 'Tile', inputs: { x: [1, 1, 1, 7] }, attrs: { reps: [2, 5, 5, 1] } },
  ];
  LEAK_CASES.forEach((c, i) => {
    test(`${c.name} frees its intermediate buffers`, async () => {
      await tf.setBackend('wasm');
      const inputs = Object.fromEntries(
        Object.entries(c.inputs).map(([key, shape], j) => [
          key,
          tf.tensor(randomValues(size(shape), 500 * i + j), shape),
        ]),
      );
      const run = (): tf.Tensor => tf.engine().runKernel(c.kernel, inputs, c.attrs as tf.NamedAttrMap);
      run().dispose(); // warm-up: lets the backend settle any one-time allocations
      const dataIds = tf.backend().numDataIds();
      run().dispose();
      assert.equal(tf.backend().numDataIds(), dataIds);
      tf.dispose(Object.values(inputs));
    });
  });

  test("Identity shares its input's buffer, which outlives the input", async () => {
    await tf.setBackend('wasm');
    const values = randomValues(24, 77);
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const x = tf.tensor(values, [2, 3, 4], dtype);
      const expected = x.dataSync();
      const dataIds = tf.backend().numDataIds();
      const y: tf.Tensor = tf.engine().runKernel('Identity', { x }, {});
      assert.equal(tf.backend().numDataIds(), dataIds, 'no new buffer');
      assert.equal(y.dtype, dtype);
      assert.deepEqual(y.shape, [2, 3, 4]);
      x.dispose();
      assert.deepEqual(y.dataSync(), expected, `${dtype}: values survive the input's disposal`);
      y.dispose();
      assert.equal(tf.backend().numDataIds(), dataIds - 1, 'freed with its last user');
    }
  });

  test('rejects NCHW with a clear error', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 3, 8, 8]);
    const dy = tf.zeros([1, 4, 6, 6]);
    const attrs = { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 3, 4] };
    assert.throws(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs),
      /supports dataFormat 'NHWC' only/,
    );
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
