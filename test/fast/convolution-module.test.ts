import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffset } from '../../src/backends/wasm/kernel-calls.ts';
import { convolutionKernels, type ConvolutionKernels } from '../../src/backends/wasm/convolution-module.ts';
import { registerWasmKernels } from '../../src/backends/wasm/register.ts';
import { registerTrainingGradients } from '../../src/backends/gradients/register.ts';
import { randomValues } from '../support/random-values.ts';

const simdFolder = path.join(import.meta.dirname, '../../src/backends/wasm/simd');

interface Case {
  readonly name: string;
  readonly x: [number, number, number, number];
  readonly filter: [number, number, number, number];
  readonly strides: [number, number];
  readonly pad: 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
}

/**
 * Every output-channel remainder of the kernels' 4- and 8-wide vectors (1-16), output rows that
 * are not a multiple of the 4-pixel tile, filter rows (kw·ci) with every remainder of the 4-row
 * tile, padding on every side, strides.
 */
const CASES: readonly Case[] = [
  ...Array.from({ length: 16 }, (_, i): Case => ({
    name: `${i + 1} output channels, same padding`,
    x: [2, 7, 9, 1 + (i % 3)],
    filter: [3, 3, 1 + (i % 3), i + 1],
    strides: [1, 1],
    pad: 'same',
  })),
  { name: 'LeNet-5 conv1', x: [3, 28, 28, 1], filter: [5, 5, 1, 6], strides: [1, 1], pad: 'valid' },
  { name: 'LeNet-5 conv2', x: [3, 12, 12, 6], filter: [5, 5, 6, 16], strides: [1, 1], pad: 'valid' },
  { name: 'CIFAR-10 first layer', x: [2, 32, 32, 3], filter: [3, 3, 3, 16], strides: [1, 1], pad: 'same' },
  { name: "MobileNetV2's first layer", x: [2, 17, 16, 3], filter: [3, 3, 3, 32], strides: [2, 2], pad: 'same' },
  { name: 'stride 2, odd sizes', x: [2, 11, 13, 5], filter: [3, 3, 5, 7], strides: [2, 2], pad: 'same' },
  { name: 'unequal strides, non-square filter', x: [2, 11, 9, 3], filter: [3, 2, 3, 9], strides: [2, 3], pad: 'same' },
  { name: '11x11 stride 4', x: [1, 35, 35, 3], filter: [11, 11, 3, 8], strides: [4, 4], pad: 'same' },
  {
    name: 'explicit, uneven padding',
    x: [2, 8, 7, 3],
    filter: [3, 3, 3, 4],
    strides: [2, 2],
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
  {
    name: 'a filter wider than the padded image reach',
    x: [1, 4, 3, 2],
    filter: [5, 5, 2, 3],
    strides: [1, 1],
    pad: 'same',
  },
  // An input gradient recast as a convolution: 'full' padding, most tiles at an edge, some columns seen by one pixel of a tile.
  {
    name: "LeNet-5 conv2's input gradient, full padding",
    x: [2, 8, 8, 16],
    filter: [5, 5, 16, 6],
    strides: [1, 1],
    pad: [
      [0, 0],
      [4, 4],
      [4, 4],
      [0, 0],
    ],
  },
];

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Float32 values the cpu backend computes for `compute`. */
async function onCpu(compute: () => tf.Tensor): Promise<Float32Array> {
  await tf.setBackend('cpu');
  return tf.tidy(() => compute().dataSync() as Float32Array);
}

const GUARD = 64;
const SENTINEL = -12345.5;

/**
 * Runs `call` with an output buffer of `count` floats inside sentinel-filled guards on the wasm
 * backend's heap, checks the guards are untouched and returns the output.
 */
function withGuardedOutput(backend: BackendWasm, count: number, call: (out: number) => void): Float32Array {
  const buffer = tf.fill([count + 2 * GUARD], SENTINEL);
  try {
    call(heapOffset(backend, buffer, 'test') + 4 * GUARD);
    const values = buffer.dataSync() as Float32Array;
    for (let i = 0; i < GUARD; i++) {
      assert.equal(values[i], SENTINEL, `overwrote the float ${GUARD - i} before the output`);
      assert.equal(values[GUARD + count + i], SENTINEL, `overwrote the float ${i + 1} after the output`);
    }
    return values.slice(GUARD, GUARD + count);
  } finally {
    buffer.dispose();
  }
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i] ?? NaN));
    diff = Math.max(diff, Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)));
  }
  // A zero result would make a kernel that writes zeros pass.
  assert.ok(scale > 0.1, `${what}: the reference is degenerate (max ${scale})`);
  assert.ok(diff <= 1e-5 * scale, `${what}: max |ours − cpu| = ${diff}, max |cpu| = ${scale}`);
}

let backend: BackendWasm;
let kernels: ConvolutionKernels;

before(async () => {
  registerWasmKernels();
  registerTrainingGradients();
  assert.equal(await tf.setBackend('wasm'), true);
  backend = tf.backend() as BackendWasm;
  const found = convolutionKernels(backend);
  assert.ok(found, 'the SIMD convolution module did not load on the wasm backend');
  kernels = found;
});

describe('the SIMD convolution kernels on the wasm heap match cpu and write nothing outside their output', () => {
  CASES.forEach((c, i) => {
    const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad);
    const xValues = randomValues(size(c.x), 100 * i);
    const filterValues = randomValues(size(c.filter), 100 * i + 1);
    const dyValues = randomValues(size(info.outShape), 100 * i + 2);
    const shapeArgs = [
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      info.outChannels,
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    ] as const;

    test(`conv2d: ${c.name}`, async () => {
      const expected = await onCpu(() =>
        tf.conv2d(tf.tensor4d(xValues, c.x), tf.tensor4d(filterValues, c.filter), c.strides, c.pad),
      );
      await tf.setBackend('wasm');
      const x = tf.tensor4d(xValues, c.x);
      const filter = tf.tensor4d(filterValues, c.filter);
      const rows = info.filterHeight * info.filterWidth * info.inChannels;
      const packed = withGuardedOutput(backend, rows * Math.ceil(info.outChannels / 8) * 8, (at) =>
        kernels.pack_filter(heapOffset(backend, filter, 'test'), at, rows, info.outChannels),
      );
      const packedTensor = tf.tensor1d(packed);
      const actual = withGuardedOutput(backend, size(info.outShape), (at) =>
        kernels.conv2d(heapOffset(backend, x, 'test'), heapOffset(backend, packedTensor, 'test'), at, ...shapeArgs),
      );
      tf.dispose([x, filter, packedTensor]);
      assertClose(actual, expected, 'conv2d');
    });

    test(`conv2d_backprop_filter and conv2d_backprop_filter_direct: ${c.name}`, async () => {
      const expected = await onCpu((): tf.Tensor => {
        const x = tf.tensor4d(xValues, c.x);
        const dy = tf.tensor4d(dyValues, info.outShape);
        return tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x, dy },
            { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: c.filter },
          );
      });
      await tf.setBackend('wasm');
      const x = tf.tensor4d(xValues, c.x);
      const dy = tf.tensor4d(dyValues, info.outShape);
      // Panels for 7 pixels at a time: every case runs over several blocks, most with a short last one.
      const scratchFloats =
        7 * kernels.filter_gradient_pixel_floats(info.inChannels, info.filterWidth, info.outChannels);
      const scratch = tf.zeros([scratchFloats]);
      const actual = withGuardedOutput(backend, size(c.filter), (at) =>
        kernels.conv2d_backprop_filter(
          heapOffset(backend, x, 'test'),
          heapOffset(backend, dy, 'test'),
          at,
          heapOffset(backend, scratch, 'test'),
          scratchFloats,
          ...shapeArgs,
        ),
      );
      const direct = withGuardedOutput(backend, size(c.filter), (at) =>
        kernels.conv2d_backprop_filter_direct(
          heapOffset(backend, x, 'test'),
          heapOffset(backend, dy, 'test'),
          at,
          ...shapeArgs,
        ),
      );
      tf.dispose([x, dy, scratch]);
      assertClose(actual, expected, 'conv2d_backprop_filter');
      assertClose(direct, expected, 'conv2d_backprop_filter_direct');
    });

    test(`conv2d_backprop_input_direct: ${c.name}`, async () => {
      const expected = await onCpu((): tf.Tensor => {
        const dy = tf.tensor4d(dyValues, info.outShape);
        const filter = tf.tensor4d(filterValues, c.filter);
        return tf
          .engine()
          .runKernel(
            'Conv2DBackpropInput',
            { dy, filter },
            { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x },
          );
      });
      await tf.setBackend('wasm');
      const dy = tf.tensor4d(dyValues, info.outShape);
      const filter = tf.tensor4d(filterValues, c.filter);
      const actual = withGuardedOutput(backend, size(c.x), (at) =>
        kernels.conv2d_backprop_input_direct(
          heapOffset(backend, dy, 'test'),
          heapOffset(backend, filter, 'test'),
          at,
          ...shapeArgs,
        ),
      );
      tf.dispose([dy, filter]);
      assertClose(actual, expected, 'conv2d_backprop_input_direct');
    });
  });
});

interface DepthwiseCase {
  readonly name: string;
  readonly x: [number, number, number, number];
  /** [kh, kw, inC, channel multiplier] */
  readonly filter: [number, number, number, number];
  readonly strides: [number, number];
  readonly pad: Case['pad'] | number;
  readonly dimRoundingMode?: 'ceil';
}

/**
 * Channel counts around the 4-wide vector (1-9, 13), multipliers 1-3, strides 1 and 2 with every
 * padding, images smaller than the filter's reach, MobileNetV2's 3x3 layers on small images.
 */
const DEPTHWISE_CASES: readonly DepthwiseCase[] = [
  ...Array.from({ length: 9 }, (_, i): DepthwiseCase => ({
    name: `${i + 1} channels, 3x3 same`,
    x: [2, 7, 6, i + 1],
    filter: [3, 3, i + 1, 1],
    strides: [1, 1],
    pad: 'same',
  })),
  ...Array.from({ length: 5 }, (_, i): DepthwiseCase => ({
    name: `${i + 3} channels, 3x3 stride 2 same, odd and even sizes`,
    x: [2, 9 + (i % 2), 8 - (i % 2), i + 3],
    filter: [3, 3, i + 3, 1],
    strides: [2, 2],
    pad: 'same',
  })),
  { name: '13 channels, stride 2 valid', x: [2, 10, 9, 13], filter: [3, 3, 13, 1], strides: [2, 2], pad: 'valid' },
  // The forward kernel takes 16 channels at a time, then 4: every remainder of both.
  ...[15, 16, 17, 19, 20, 33].map((channels): DepthwiseCase => ({
    name: `${channels} channels, 3x3 same`,
    x: [2, 5, 6, channels],
    filter: [3, 3, channels, 1],
    strides: [1, 1],
    pad: 'same',
  })),
  { name: 'stride 1 valid, 5x5', x: [1, 9, 9, 6], filter: [5, 5, 6, 1], strides: [1, 1], pad: 'valid' },
  { name: 'unequal strides, non-square', x: [2, 9, 11, 5], filter: [2, 3, 5, 1], strides: [1, 2], pad: 'same' },
  {
    name: 'numeric pad 1, stride 2, ceil',
    x: [1, 8, 8, 4],
    filter: [3, 3, 4, 1],
    strides: [2, 2],
    pad: 1,
    dimRoundingMode: 'ceil',
  },
  {
    name: 'explicit, uneven padding',
    x: [2, 8, 7, 6],
    filter: [3, 3, 6, 1],
    strides: [2, 2],
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
  { name: 'a filter wider than the image', x: [1, 2, 3, 5], filter: [5, 5, 5, 1], strides: [1, 1], pad: 'same' },
  { name: 'multiplier 2', x: [2, 6, 5, 3], filter: [3, 3, 3, 2], strides: [1, 1], pad: 'same' },
  { name: 'multiplier 3, stride 2', x: [2, 7, 7, 5], filter: [3, 3, 5, 3], strides: [2, 2], pad: 'same' },
  {
    name: 'MobileNetV2 block 1 (32 channels)',
    x: [2, 16, 16, 32],
    filter: [3, 3, 32, 1],
    strides: [1, 1],
    pad: 'same',
  },
  {
    name: 'MobileNetV2 block 2 (96 channels, stride 2)',
    x: [2, 16, 16, 96],
    filter: [3, 3, 96, 1],
    strides: [2, 2],
    pad: 'same',
  },
];

describe('the SIMD depthwise convolution gradients on the wasm heap match cpu and write nothing outside their output', () => {
  DEPTHWISE_CASES.forEach((c, i) => {
    const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, c.dimRoundingMode, true);
    const xValues = randomValues(size(c.x), 300 * i);
    const filterValues = randomValues(size(c.filter), 300 * i + 1);
    const dyValues = randomValues(size(info.outShape), 300 * i + 2);
    const attrs = {
      strides: c.strides,
      pad: c.pad,
      dilations: 1,
      ...(c.dimRoundingMode === undefined ? {} : { dimRoundingMode: c.dimRoundingMode }),
    };
    const shapeArgs = [
      info.batchSize,
      info.inHeight,
      info.inWidth,
      info.inChannels,
      info.outHeight,
      info.outWidth,
      c.filter[3],
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    ] as const;

    test(`depthwise_conv2d and its gradients depthwise_conv2d_backprop_input and _filter: ${c.name}`, async () => {
      const gradients = [
        {
          kernel: 'DepthwiseConv2dNative',
          inputs: { x: [xValues, c.x], filter: [filterValues, c.filter] },
          attrs: {},
          outputSize: size(info.outShape),
          run: kernels.depthwise_conv2d,
        },
        {
          kernel: 'DepthwiseConv2dNativeBackpropInput',
          inputs: { dy: [dyValues, info.outShape], filter: [filterValues, c.filter] },
          attrs: { inputShape: c.x },
          outputSize: size(c.x),
          run: kernels.depthwise_conv2d_backprop_input,
        },
        {
          kernel: 'DepthwiseConv2dNativeBackpropFilter',
          inputs: { x: [xValues, c.x], dy: [dyValues, info.outShape] },
          attrs: { filterShape: c.filter },
          outputSize: size(c.filter),
          run: kernels.depthwise_conv2d_backprop_filter,
        },
      ] as const;
      for (const g of gradients) {
        const tensors = (): Record<string, tf.Tensor4D> =>
          Object.fromEntries(
            Object.entries(g.inputs).map(([name, [values, shape]]) => [name, tf.tensor4d(values, shape)]),
          );
        const expected = await onCpu(() => tf.engine().runKernel(g.kernel, tensors(), { ...attrs, ...g.attrs }));
        await tf.setBackend('wasm');
        const [first, second] = Object.values(tensors());
        assert.ok(first && second);
        const actual = withGuardedOutput(backend, g.outputSize, (at) =>
          g.run(heapOffset(backend, first, 'test'), heapOffset(backend, second, 'test'), at, ...shapeArgs),
        );
        tf.dispose([first, second]);
        assertClose(actual, expected, g.kernel);
      }
    });
  });
});

describe('the bias kernels on the wasm heap', () => {
  for (const channels of [1, 2, 3, 4, 5, 6, 7, 8, 16, 120]) {
    const rows = 37;
    const x = randomValues(rows * channels, channels);
    const bias = randomValues(channels, channels + 1);

    test(`add_bias and sum_rows with ${channels} channels`, async () => {
      await tf.setBackend('wasm');
      const xs = tf.tensor2d(x, [rows, channels]);
      const biasTensor = tf.tensor1d(bias);
      const added = withGuardedOutput(backend, rows * channels, (at) =>
        kernels.add_bias(heapOffset(backend, xs, 'test'), heapOffset(backend, biasTensor, 'test'), at, rows, channels),
      );
      const sums = withGuardedOutput(backend, channels, (at) =>
        kernels.sum_rows(heapOffset(backend, xs, 'test'), at, rows, channels),
      );
      tf.dispose([xs, biasTensor]);
      // float32 addition is exact to compare; the sums against float64, in the same row order.
      assert.deepEqual(
        added,
        Float32Array.from(x, (value, i) => value + (bias[i % channels] ?? NaN)),
      );
      const expected = new Float32Array(channels);
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let r = 0; r < rows; r++) sum += x[r * channels + c] ?? NaN;
        expected[c] = sum;
      }
      assertClose(sums, expected, 'sum_rows');
    });
  }

  test("tf.add of a bias and tf.sum over all axes but the last give the built-in kernels' values", async () => {
    const shape = [3, 5, 7, 6];
    const xValues = randomValues(size(shape), 7);
    const biasValues = randomValues(6, 8);
    const compute = (): tf.Tensor[] => {
      const xs = tf.tensor(xValues, shape);
      return [
        tf.add(xs, tf.tensor1d(biasValues)),
        tf.sum(xs, [0, 1, 2]),
        tf.sum(xs, [0, 1, 2], true),
        tf.sum(xs, [1, 2]),
      ];
    };
    await tf.setBackend('cpu');
    const expected = tf.tidy(compute).map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    await tf.setBackend('wasm');
    const actual = tf.tidy(compute).map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
    expected.forEach((e, i) => {
      assert.deepEqual(actual[i]?.shape, e.shape);
      assertClose(actual[i]?.values ?? new Float32Array(), e.values, `result ${i}`);
    });
  });
});

/**
 * Runs `call` with an output of `count` bytes inside guards of sentinel bytes on the wasm heap,
 * checks the guards are untouched and returns the output (bool tensors are one byte a value).
 */
function withGuardedBytes(backend: BackendWasm, count: number, call: (out: number) => void): Uint8Array {
  const guardBytes = 4 * GUARD;
  // Int32 words of 0x5a5a5a5a: every byte a sentinel, however the output ends inside a word.
  const buffer = tf.fill([Math.ceil((count + 2 * guardBytes) / 4)], 0x5a5a5a5a, 'int32');
  try {
    call(heapOffset(backend, buffer, 'test') + guardBytes);
    const bytes = new Uint8Array((buffer.dataSync() as Int32Array).buffer);
    for (let i = 0; i < guardBytes; i++)
      assert.equal(bytes[i], 0x5a, `overwrote the byte ${guardBytes - i} before the output`);
    for (let i = guardBytes + count; i < bytes.length; i++)
      assert.equal(bytes[i], 0x5a, `overwrote the byte ${i - guardBytes - count + 1} after the output`);
    return bytes.slice(guardBytes, guardBytes + count);
  } finally {
    buffer.dispose();
  }
}

describe('the BatchNorm and batch statistics kernels on the wasm heap', () => {
  // Columns around the 4-wide vector, a row of MobileNetV2's; strides 1 (a value per column) or 0 (one for all).
  const FORMS: ReadonlyArray<{
    name: string;
    scale: 0 | 1 | null;
    offset: 0 | 1 | null;
    mean: 0 | 1;
    variance: 0 | 1;
  }> = [
    { name: 'every parameter per column', mean: 1, variance: 1, scale: 1, offset: 1 },
    { name: 'no scale, no offset', mean: 1, variance: 1, scale: null, offset: null },
    { name: 'no offset', mean: 1, variance: 1, scale: 1, offset: null },
    { name: 'no scale', mean: 1, variance: 1, scale: null, offset: 1 },
    { name: 'one variance and one scale for all', mean: 1, variance: 0, scale: 0, offset: 1 },
    { name: 'one mean and one offset for all', mean: 0, variance: 1, scale: 1, offset: 0 },
  ];
  for (const columns of [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 96]) {
    for (const [f, form] of FORMS.entries()) {
      test(`batch_norm, ${columns} columns, ${form.name}`, async () => {
        await tf.setBackend('wasm');
        const rows = 7;
        const epsilon = [1e-3, 1e-5, 0.5][f % 3] ?? 1e-3;
        const seed = 1000 * columns + 10 * f;
        const x = randomValues(rows * columns, seed);
        const parameter = (stride: 0 | 1, i: number) => randomValues(stride === 1 ? columns : 1, seed + i);
        const mean = parameter(form.mean, 1);
        // Variances in [0.05, 2.05): positive, some small enough for epsilon to matter.
        const variance = parameter(form.variance, 2).map((v) => v + 1.05);
        const scale = form.scale === null ? null : parameter(form.scale, 3);
        const offset = form.offset === null ? null : parameter(form.offset, 4);
        const tensors = [x, mean, variance, scale ?? [0], offset ?? [0]].map((values) => tf.tensor1d(values));
        const [xs, means, variances, scales, offsets] = tensors.map((t) => heapOffset(backend, t, 'test'));
        const factors = tf.zeros([3 * columns]);
        const actual = withGuardedOutput(backend, rows * columns, (at) =>
          kernels.batch_norm(
            xs ?? NaN,
            means ?? NaN,
            variances ?? NaN,
            scale === null ? 0 : (scales ?? NaN),
            offset === null ? 0 : (offsets ?? NaN),
            heapOffset(backend, factors, 'test'),
            at,
            rows,
            columns,
            epsilon,
            form.mean,
            form.variance,
            form.scale ?? 0,
            form.offset ?? 0,
          ),
        );
        tf.dispose([...tensors, factors]);
        // cpu's formula, in float64.
        const expected = Float64Array.from(x, (value, i) => {
          const c = i % columns;
          const at = (values: Float32Array | null, stride: 0 | 1 | null, none: number) =>
            values === null ? none : (values[stride === 1 ? c : 0] ?? NaN);
          return (
            at(offset, form.offset, 0) +
            ((value - at(mean, form.mean, 0)) * at(scale, form.scale, 1)) /
              Math.sqrt(at(variance, form.variance, 0) + epsilon)
          );
        });
        actual.forEach((value, i) => {
          const want = expected[i] ?? NaN;
          assert.ok(Math.abs(value - want) <= 1e-6 * Math.max(1, Math.abs(want)), `value ${i}: ${value}, not ${want}`);
        });
      });
    }
  }

  // Row counts around the 256-row block, channels around the vector, several outer blocks.
  for (const [outer, rows, channels, shift] of [
    [1, 1, 1, 0],
    [1, 3, 5, 0],
    [2, 255, 4, 0],
    [1, 256, 7, 0],
    [3, 257, 13, 0],
    [2, 9, 96, 0],
    [1, 40_000, 3, 100],
  ] as const) {
    test(`mean_rows: ${outer} × ${rows} rows × ${channels} channels${shift ? `, around ${shift}` : ''}`, async () => {
      await tf.setBackend('wasm');
      const x = randomValues(outer * rows * channels, rows + channels).map((v) => v + shift);
      const xs = tf.tensor1d(x);
      const partial = tf.zeros([channels]);
      const actual = withGuardedOutput(backend, outer * channels, (at) =>
        kernels.mean_rows(
          heapOffset(backend, xs, 'test'),
          at,
          heapOffset(backend, partial, 'test'),
          outer,
          rows,
          channels,
        ),
      );
      tf.dispose([xs, partial]);
      for (let o = 0; o < outer; o++) {
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let r = 0; r < rows; r++) sum += x[(o * rows + r) * channels + c] ?? NaN;
          const want = sum / rows;
          const value = actual[o * channels + c] ?? NaN;
          // Blocks of 256 keep 40,000 rows around 100 within 1e-6 of the float64 mean; one running sum would not.
          assert.ok(
            Math.abs(value - want) <= 1e-6 * Math.max(1, Math.abs(want)),
            `[${o}, ${c}]: ${value}, not ${want}`,
          );
        }
      }
    });
  }
});

describe("the comparison and selection kernels of ReLU6's gradient on the wasm heap", () => {
  // Counts around the 16-value step of the comparisons and the 4-value step of the selection.
  const COUNTS = [1, 3, 4, 5, 15, 16, 17, 31, 33, 40];
  /** Values with ties at 0 and 6, infinities and NaN among them. */
  const values = (count: number, seed: number): Float32Array =>
    randomValues(count, seed).map((v, i) => [0, 6, Infinity, -Infinity, NaN][i % 7] ?? v * 8 - 1);

  for (const count of COUNTS) {
    test(`greater_equal_value and less_equal_value, ${count} values`, async () => {
      await tf.setBackend('wasm');
      const x = values(count, count);
      const xs = tf.tensor1d(x);
      for (const [name, kernel, rule] of [
        ['greater_equal_value', kernels.greater_equal_value, (v: number) => v >= 0],
        ['less_equal_value', kernels.less_equal_value, (v: number) => v <= 6],
      ] as const) {
        const bound = name === 'greater_equal_value' ? 0 : 6;
        const actual = withGuardedBytes(backend, count, (at) =>
          kernel(heapOffset(backend, xs, 'test'), bound, at, count),
        );
        assert.deepEqual(
          Array.from(actual),
          Array.from(x, (v) => (rule(v) ? 1 : 0)),
          name,
        );
      }
      xs.dispose();
    });

    test(`logical_and and select_values, ${count} values`, async () => {
      await tf.setBackend('wasm');
      const a = Array.from(randomValues(count, 2 * count), (v) => v > 0);
      const b = Array.from(randomValues(count, 2 * count + 1), (v) => v > -0.3);
      const t = values(count, 3 * count);
      const e = randomValues(count, 4 * count);
      const [as, bs] = [a, b].map((bits) => tf.tensor1d(bits.map(Number), 'bool'));
      const [ts, es] = [t, e].map((floats) => tf.tensor1d(floats));
      const at = (tensor: tf.Tensor | undefined) => heapOffset(backend, tensor as tf.Tensor, 'test');
      const both = withGuardedBytes(backend, count, (out) => kernels.logical_and(at(as), at(bs), out, count));
      assert.deepEqual(
        Array.from(both),
        a.map((bit, i) => (bit && b[i] ? 1 : 0)),
      );
      const chosen = withGuardedOutput(backend, count, (out) =>
        kernels.select_values(at(as), at(ts), at(es), out, count),
      );
      // Bit for bit, NaN included.
      assert.deepEqual(
        new Uint32Array(chosen.buffer),
        new Uint32Array(Float32Array.from(a, (bit, i) => (bit ? (t[i] ?? 0) : (e[i] ?? 0))).buffer),
      );
      tf.dispose([as, bs, ts, es]);
    });
  }
});

describe('the dense product on the wasm heap', () => {
  // Row counts around the 4-row tile, columns around the 8- and 16-column panels, depths past one 256-deep pass.
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 5, 7],
    [4, 8, 8],
    [5, 256, 16],
    [7, 257, 17],
    [9, 600, 33],
    [64, 300, 120],
  ];
  for (const [m, k, n] of shapes) {
    test(`matmul ${m}×${k} · ${k}×${n}`, async () => {
      const aValues = randomValues(m * k, m + k);
      const bValues = randomValues(k * n, k + n);
      const expected = await onCpu(() => tf.matMul(tf.tensor2d(aValues, [m, k]), tf.tensor2d(bValues, [k, n])));
      await tf.setBackend('wasm');
      const a = tf.tensor2d(aValues, [m, k]);
      const b = tf.tensor2d(bValues, [k, n]);
      const panel = tf.zeros([256 * 16]);
      const actual = withGuardedOutput(backend, m * n, (at) =>
        kernels.matmul(
          heapOffset(backend, a, 'test'),
          heapOffset(backend, b, 'test'),
          at,
          heapOffset(backend, panel, 'test'),
          m,
          k,
          n,
        ),
      );
      tf.dispose([a, b, panel]);
      assertClose(actual, expected, 'matmul');
    });
  }
});

describe('simd/convolutions.wasm', () => {
  test('imports only the backend memory and is the build of convolutions.c as it stands (clang, lld)', () => {
    const committed = readFileSync(path.join(simdFolder, 'convolutions.wasm'));
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(committed));
    assert.deepEqual(imports, [{ module: 'env', name: 'memory', kind: 'memory' }]);
    const folder = mkdtempSync(path.join(tmpdir(), 'convolutions-'));
    try {
      const output = path.join(folder, 'convolutions.wasm');
      execFileSync('sh', [path.join(simdFolder, 'build.sh'), output], { stdio: 'pipe' });
      assert.ok(
        readFileSync(output).equals(committed),
        'convolutions.wasm is not the build of convolutions.c: run src/backends/wasm/simd/build.sh',
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
