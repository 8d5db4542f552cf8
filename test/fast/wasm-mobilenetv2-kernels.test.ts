import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
// Also registers tfjs-core's gradients, which tf.grad needs: tfjs-core's Node bundle does not.
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerTrainingGradients } from '../../src/backends/gradients/register.ts';
import { registerWasmKernels } from '../../src/backends/wasm/register.ts';
import { mobilenetv2 } from '../../src/models/mobilenetv2.ts';
import { randomValues } from '../support/random-values.ts';

/**
 * The wasm kernels MobileNetV2 trains and predicts through (src/backends/wasm/kernels/): BatchNorm
 * forward, its batch statistics (Mean) and the Tile of its gradient, the same-dtype Cast, ReLU6's
 * gradient (GreaterEqual, LessEqual, LogicalAnd, Select), the forward depthwise convolution, and a
 * 1x1 convolution on small maps, each against the cpu backend through TF.js's ops, in the forms
 * they take and those they pass on to the built-in kernels; then TF.js's own op tests for them.
 * convolution-module.test.ts tests the SIMD functions themselves on the heap.
 */

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

before(async () => {
  registerWasmKernels();
  registerTrainingGradients();
  assert.equal(await tf.setBackend('wasm'), true);
});

/** `compute`'s results on cpu, then on wasm. */
async function onBoth(compute: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: tf.Tensor[]; wasm: tf.Tensor[] }> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const out = compute();
    // Moved to cpu's side of the comparison as plain values: keeps the other backend's tensors out of it.
    return (Array.isArray(out) ? out : [out]).map((t) => {
      const copy = tf.tensor(t.dataSync(), t.shape, t.dtype);
      return copy;
    });
  };
  return { cpu: await run('cpu'), wasm: await run('wasm') };
}

/** Every value within `tolerance` of cpu's, relative to the larger of 1 and cpu's magnitude. */
function assertNear(actual: tf.Tensor, expected: tf.Tensor, tolerance: number, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  const [a, e] = [actual.dataSync(), expected.dataSync()];
  e.forEach((want, i) => {
    const got = a[i] ?? NaN;
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `${what}[${i}]: ${got}, not NaN`);
    else
      assert.ok(Math.abs(got - want) <= tolerance * Math.max(1, Math.abs(want)), `${what}[${i}]: ${got}, not ${want}`);
  });
}

function assertSame(actual: tf.Tensor, expected: tf.Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual(Array.from(actual.dataSync()), Array.from(expected.dataSync()), what);
}

describe('FusedBatchNorm on wasm matches cpu', () => {
  interface BatchNormCase {
    readonly name: string;
    readonly x: number[];
    /** The shape of mean and variance, and of scale and offset where given. */
    readonly parameters: number[];
    readonly scale: boolean;
    readonly offset: boolean;
    readonly epsilon?: number;
    /** Different shapes for scale and offset (same rank), e.g. one value for all. */
    readonly scaleShape?: number[];
  }
  const CASES: BatchNormCase[] = [
    // Channels around the 4-wide vector, every combination of scale and offset.
    ...[1, 2, 3, 4, 5, 7, 8, 9, 13, 16].flatMap((channels, i): BatchNormCase[] =>
      [
        [true, true],
        [false, false],
        [true, false],
        [false, true],
      ].map(([scale = true, offset = true]) => ({
        name: `[3,5,7,${channels}], ${scale ? 'scale' : 'no scale'}, ${offset ? 'offset' : 'no offset'}`,
        x: [3, 5, 7, channels],
        parameters: [channels],
        scale,
        offset,
        epsilon: [1e-3, 1e-5, 0.1][i % 3],
      })),
    ),
    { name: "MobileNetV2's [N,H,W,96]", x: [4, 6, 6, 96], parameters: [96], scale: true, offset: true },
    { name: 'parameters as [1,1,1,C]', x: [2, 3, 3, 6], parameters: [1, 1, 1, 6], scale: true, offset: true },
    { name: 'parameters as [W,C]', x: [2, 3, 5, 6], parameters: [5, 6], scale: true, offset: true },
    { name: 'parameters as [H,W,C]', x: [2, 3, 5, 6], parameters: [3, 5, 6], scale: true, offset: true },
    { name: 'x and parameters of one shape', x: [2, 3, 5, 6], parameters: [2, 3, 5, 6], scale: true, offset: true },
    { name: 'one value for all', x: [2, 3, 5, 6], parameters: [1], scale: true, offset: true },
    {
      name: 'one scale and offset for all',
      x: [2, 3, 5, 6],
      parameters: [6],
      scale: true,
      offset: true,
      scaleShape: [1],
    },
    { name: 'rank 2', x: [9, 10], parameters: [10], scale: true, offset: true },
    { name: 'rank 3', x: [4, 9, 10], parameters: [10], scale: true, offset: true },
    { name: 'rank 1', x: [11], parameters: [11], scale: true, offset: true },
    // Lengths that don't repeat whole along x: cyclic, as cpu indexes; left to the built-in kernel.
    {
      name: 'parameters of 4 along rows of 6 (built-in kernel)',
      x: [2, 6],
      parameters: [4],
      scale: true,
      offset: true,
    },
  ];
  CASES.forEach((c, i) => {
    test(c.name, async () => {
      const seed = 7000 + 10 * i;
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const x = tf.tensor(randomValues(size(c.x), seed), c.x);
          const parameter = (shape: number[], j: number, shift = 0) =>
            tf.tensor(
              randomValues(size(shape), seed + j).map((v) => v + shift),
              shape,
            );
          const mean = parameter(c.parameters, 1);
          // Variances in [0.05, 2.05): some small enough for epsilon to matter.
          const variance = parameter(c.parameters, 2, 1.05);
          const scale = c.scale ? parameter(c.scaleShape ?? c.parameters, 3) : undefined;
          const offset = c.offset ? parameter(c.scaleShape ?? c.parameters, 4) : undefined;
          return tf.batchNorm(x, mean, variance, offset, scale, c.epsilon);
        }),
      );
      assertNear(wasm[0] as tf.Tensor, cpu[0] as tf.Tensor, 1e-6, c.name);
      tf.dispose([...cpu, ...wasm]);
    });
  });

  test("a direct kernel call without varianceEpsilon takes tfjs-core's 0.001", async () => {
    const { cpu, wasm } = await onBoth(() =>
      tf.tidy(() => {
        const x = tf.tensor(randomValues(40, 1), [2, 4, 5]);
        const mean = tf.tensor1d(randomValues(5, 2));
        const variance = tf.fill([5], 0.001);
        return tf.engine().runKernel('FusedBatchNorm', { x, mean, variance }, {}) as tf.Tensor;
      }),
    );
    assertNear(wasm[0] as tf.Tensor, cpu[0] as tf.Tensor, 1e-6, 'no epsilon');
    tf.dispose([...cpu, ...wasm]);
  });
});

describe('Mean on wasm matches cpu', () => {
  const CASES: ReadonlyArray<{
    name: string;
    shape: number[];
    axis: number | number[] | undefined;
    keepDims?: boolean;
  }> = [
    // tf.moments over all but the channels, as BatchNorm in training takes it.
    ...[1, 3, 4, 5, 13].map((channels) => ({
      name: `[4,6,5,${channels}] over 0,1,2`,
      shape: [4, 6, 5, channels],
      axis: [0, 1, 2],
    })),
    { name: 'keepDims', shape: [4, 6, 5, 7], axis: [0, 1, 2], keepDims: true },
    { name: 'axes given out of order', shape: [4, 6, 5, 7], axis: [2, 0, 1] },
    { name: 'negative axes', shape: [4, 6, 5, 7], axis: [-4, -3, -2] },
    // Global average pooling.
    { name: 'over rows and columns', shape: [3, 4, 5, 9], axis: [1, 2] },
    { name: 'over rows and columns, keepDims', shape: [3, 4, 5, 9], axis: [1, 2], keepDims: true },
    { name: 'one middle axis', shape: [3, 4, 5], axis: 1 },
    { name: 'rank 2 over rows', shape: [300, 6], axis: 0 },
    { name: 'many rows, over several blocks', shape: [8, 30, 30, 3], axis: [0, 1, 2] },
    // Left to the built-in kernel.
    { name: 'the last axis (built-in kernel)', shape: [3, 4, 5], axis: -1 },
    { name: 'every axis (built-in kernel)', shape: [3, 4, 5], axis: undefined },
    { name: 'axes not in one run (built-in kernel)', shape: [3, 4, 5, 6], axis: [0, 2] },
  ];
  CASES.forEach((c, i) => {
    test(c.name, async () => {
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => tf.mean(tf.tensor(randomValues(size(c.shape), 8000 + i), c.shape), c.axis, c.keepDims)),
      );
      assertNear(wasm[0] as tf.Tensor, cpu[0] as tf.Tensor, 1e-6, c.name);
      tf.dispose([...cpu, ...wasm]);
    });
  });

  test('int32 and bool go to the built-in kernel, which casts them', async () => {
    const { cpu, wasm } = await onBoth(() => [
      tf.mean(tf.tensor2d([1, 5, 7, 3, 2, 8], [3, 2], 'int32'), 0),
      tf.mean(tf.tensor2d([1, 0, 1, 1, 0, 0], [3, 2], 'bool'), 0),
    ]);
    wasm.forEach((t, i) => assertNear(t, cpu[i] as tf.Tensor, 1e-6, `dtype ${i}`));
    tf.dispose([...cpu, ...wasm]);
  });
});

describe('Tile on wasm gives exactly what cpu gives', () => {
  const CASES: ReadonlyArray<{ shape: number[]; reps: number[]; dtype?: 'float32' | 'int32' | 'bool' }> = [
    // tfjs-core's FusedBatchNorm gradient: a [1,1,1,C] factor over the whole activation.
    { shape: [1, 1, 1, 5], reps: [3, 4, 6, 1] },
    { shape: [1, 1, 1, 96], reps: [2, 6, 6, 1] },
    { shape: [2, 3], reps: [3, 2] },
    { shape: [3, 1, 4], reps: [1, 5, 1] },
    { shape: [2, 3, 4], reps: [2, 1, 3] },
    { shape: [7], reps: [5] },
    { shape: [2, 1, 2, 1, 2], reps: [1, 3, 2, 2, 1] },
    { shape: [4, 3], reps: [1, 1] },
    { shape: [2, 3, 2], reps: [2, 2, 2], dtype: 'int32' },
    { shape: [3, 5], reps: [2, 3], dtype: 'bool' },
    { shape: [0, 3], reps: [2, 2] },
  ];
  CASES.forEach((c, i) => {
    test(`${c.dtype ?? 'float32'} [${c.shape}] by [${c.reps}]`, async () => {
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const values = randomValues(size(c.shape), 9000 + i);
          const x =
            c.dtype === 'bool'
              ? tf.tensor(
                  Array.from(values, (v) => v > 0),
                  c.shape,
                  'bool',
                )
              : tf.tensor(c.dtype === 'int32' ? values.map((v) => Math.round(100 * v)) : values, c.shape, c.dtype);
          return tf.tile(x, c.reps);
        }),
      );
      assertSame(wasm[0] as tf.Tensor, cpu[0] as tf.Tensor, 'tile');
      tf.dispose([...cpu, ...wasm]);
    });
  });
});

describe('Cast to the same dtype on wasm', () => {
  test('shares the buffer, which outlives the input; a real cast still converts', async () => {
    await tf.setBackend('wasm');
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      const x = tf.tensor([1, 0, 3, -2], [2, 2], dtype);
      const expected = x.dataSync();
      const dataIds = tf.backend().numDataIds();
      const y = tf.cast(x, dtype);
      assert.equal(tf.backend().numDataIds(), dataIds, `${dtype}: no new buffer`);
      x.dispose();
      assert.deepEqual(y.dataSync(), expected, `${dtype}: values survive the input's disposal`);
      y.dispose();
    }
    const x = tf.tensor1d([1.7, -0.2, 0, 3]);
    const y = tf.cast(x, 'int32');
    assert.equal(y.dtype, 'int32');
    assert.deepEqual(Array.from(y.dataSync()), [1, 0, 0, 3]);
    tf.dispose([x, y]);
  });
});

describe("ReLU6's gradient kernels on wasm give exactly what cpu gives", () => {
  /** Values with ties at 0 and 6, infinities and NaN among them. */
  const values = (count: number, seed: number): Float32Array =>
    randomValues(count, seed).map((v, i) => [0, 6, Infinity, -Infinity, NaN][i % 7] ?? v * 8 - 1);

  for (const count of [1, 15, 16, 17, 100]) {
    test(`greaterEqual and lessEqual against a value, logicalAnd, where: ${count} values`, async () => {
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const x = tf.tensor1d(values(count, count));
          const above = tf.greaterEqual(x, 0);
          const below = tf.lessEqual(x, tf.scalar(6));
          const inside = tf.logicalAnd(above, below);
          const dy = tf.tensor1d(randomValues(count, count + 1));
          return [above, below, inside, tf.where(inside, dy, tf.zerosLike(dy)), tf.where(inside, x, dy)];
        }),
      );
      wasm.forEach((t, i) => assertSame(t, cpu[i] as tf.Tensor, `result ${i}`));
      tf.dispose([...cpu, ...wasm]);
    });
  }

  test('the forms left to the built-in kernels give what cpu gives', async () => {
    const { cpu, wasm } = await onBoth(() =>
      tf.tidy(() => {
        const x = tf.tensor2d(values(12, 3), [3, 4]);
        const y = tf.tensor2d(values(12, 4), [3, 4]);
        const row = tf.tensor1d([true, false, true, true], 'bool');
        const mask = tf.greaterEqual(x, 0);
        return [
          tf.greaterEqual(x, y),
          tf.lessEqual(tf.tensor1d([1, 5, 7], 'int32'), 5),
          tf.greaterEqual(tf.scalar(2), x),
          tf.logicalAnd(mask, row),
          // A condition that picks whole rows: only the kernel takes it, tf.where broadcasts first.
          tf
            .engine()
            .runKernel('Select', { condition: tf.tensor1d([true, false, true], 'bool'), t: x, e: y }) as tf.Tensor,
          tf.where(
            mask,
            tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4], 'int32'),
            tf.zeros([3, 4], 'int32'),
          ),
        ];
      }),
    );
    wasm.forEach((t, i) => assertSame(t, cpu[i] as tf.Tensor, `result ${i}`));
    tf.dispose([...cpu, ...wasm]);
  });

  test('tf.grad of clipByValue(x, 0, 6), as every ReLU6 trains', async () => {
    const { cpu, wasm } = await onBoth(() =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(2 * 5 * 3 * 7, 5), [2, 5, 3, 7]);
        const dy = tf.tensor4d(randomValues(2 * 5 * 3 * 7, 6), [2, 5, 3, 7]);
        return tf.grad((input) => tf.clipByValue(input, 0, 6))(x, dy);
      }),
    );
    assertSame(wasm[0] as tf.Tensor, cpu[0] as tf.Tensor, 'dx');
    tf.dispose([...cpu, ...wasm]);
  });
});

describe('DepthwiseConv2dNative on wasm matches cpu through tf.depthwiseConv2d', () => {
  type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
  const CASES: ReadonlyArray<{
    name: string;
    x: [number, number, number, number];
    filter: [number, number, number, number];
    strides: number | [number, number];
    pad: Pad;
    dilations?: number;
    dimRoundingMode?: 'ceil';
  }> = [
    { name: "MobileNetV2's stride 1", x: [2, 8, 8, 32], filter: [3, 3, 32, 1], strides: 1, pad: 'same' },
    { name: "MobileNetV2's stride 2", x: [2, 9, 9, 144], filter: [3, 3, 144, 1], strides: 2, pad: 'same' },
    { name: '19 channels, valid', x: [3, 7, 6, 19], filter: [3, 3, 19, 1], strides: 1, pad: 'valid' },
    { name: 'multiplier 3 (built-in kernel)', x: [2, 6, 6, 5], filter: [3, 3, 5, 3], strides: 1, pad: 'same' },
    { name: 'numeric pad, ceil', x: [1, 8, 8, 6], filter: [3, 3, 6, 1], strides: 2, pad: 1, dimRoundingMode: 'ceil' },
    {
      name: 'dilation 2 (built-in kernel)',
      x: [2, 9, 9, 6],
      filter: [3, 3, 6, 1],
      strides: 1,
      pad: 'same',
      dilations: 2,
    },
  ];
  CASES.forEach((c, i) => {
    test(c.name, async () => {
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() =>
          tf.depthwiseConv2d(
            tf.tensor4d(randomValues(size(c.x), 10_000 + i), c.x),
            tf.tensor4d(randomValues(size(c.filter), 10_001 + i), c.filter),
            c.strides,
            c.pad,
            'NHWC',
            c.dilations ?? 1,
            c.dimRoundingMode,
          ),
        ),
      );
      assertNear(wasm[0] as tf.Tensor, cpu[0] as tf.Tensor, 1e-5, c.name);
      tf.dispose([...cpu, ...wasm]);
    });
  });
});

describe('a 1x1 convolution on small maps (pixels regrouped in rows of 16) matches cpu', () => {
  for (const x of [
    [32, 1, 1, 40],
    [16, 3, 3, 24],
    [4, 6, 6, 20],
    [2, 12, 12, 9],
    [5, 3, 3, 7], // 45 pixels: not regrouped
  ] as [number, number, number, number][]) {
    test(`[${x}]`, async () => {
      const channels = x[3];
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const input = tf.tensor4d(randomValues(size(x), x[0]), x);
          const filter = tf.tensor4d(randomValues(channels * 11, channels), [1, 1, channels, 11]);
          const dy = tf.tensor4d(randomValues((size(x) / channels) * 11, 3), [x[0], x[1], x[2], 11]);
          const forward = tf.conv2d(input, filter, 1, 'same');
          // The input gradient runs as a 1x1 convolution of dy, regrouped too.
          const dx = tf.grad((image) => tf.sum(tf.mul(tf.conv2d(image as tf.Tensor4D, filter, 1, 'valid'), dy)))(input);
          return [forward, dx];
        }),
      );
      wasm.forEach((t, i) => assertNear(t, cpu[i] as tf.Tensor, 1e-5, `result ${i}`));
      tf.dispose([...cpu, ...wasm]);
    });
  }
});

test("MobileNetV2's predictions on wasm (BatchNorm on its moving statistics) match cpu's", async () => {
  const shape = { height: 32, width: 32, channels: 3 };
  const { cpu, wasm } = await onBoth(() => {
    const model = mobilenetv2.build(shape, 10, 11);
    try {
      // Moving statistics of their own, not the start's 0 and 1, so BatchNorm's every term counts.
      for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
        const weights = layer.getWeights();
        const fresh = weights.map((w, j) =>
          tf.tensor(
            randomValues(w.size, 20 + j).map((v) => (j === 3 ? 1 + 0.5 * v : j === 0 ? 1 + 0.2 * v : 0.2 * v)),
            w.shape,
          ),
        );
        layer.setWeights(fresh);
        tf.dispose(fresh);
      }
      return tf.tidy(() => model.predict(tf.tensor4d(randomValues(4 * 32 * 32 * 3, 12), [4, 32, 32, 3])) as tf.Tensor);
    } finally {
      model.dispose();
    }
  });
  const [expected, actual] = [cpu[0], wasm[0]].map((t) => (t as tf.Tensor).dataSync());
  const scale = Math.max(...Array.from(expected ?? [], Math.abs));
  assert.ok(scale > 1e-3, `the logits are degenerate (max ${scale})`);
  const diff = Math.max(...Array.from(expected ?? [], (v, i) => Math.abs(v - (actual?.[i] ?? NaN))));
  assert.ok(diff <= 1e-4 * scale, `max |wasm − cpu| = ${diff}, max |cpu| = ${scale}`);
  tf.dispose([...cpu, ...wasm]);
});

/**
 * TF.js's own op tests for these kernels (tfjs-core 4.22, src/ops/batchnorm_test.ts, moments_test.ts,
 * tile_test.ts, clip_by_value_test.ts, depthwise_conv2d_test.ts), their inputs and expected values
 * as they are there, run on wasm. expectArraysClose is tfjs-core's own (its default tolerance).
 */
describe("TF.js's own op tests pass on wasm", () => {
  const { expectArraysClose, expectArraysEqual } = tf.test_util;
  const onWasm = (name: string, body: () => Promise<void>) =>
    test(name, async () => {
      await tf.setBackend('wasm');
      await body();
    });
  /** batchnorm_test.ts's expected values: the formula, from the test's own inputs. */
  const formula = (
    x: number[],
    mean: number[],
    variance: number[],
    offset: number[],
    scale: number[],
    epsilon = 0.001,
  ) =>
    x.map((v, i) => {
      const at = (values: number[]) => values[i % values.length] ?? NaN;
      return at(offset) + ((v - at(mean)) * at(scale)) / Math.sqrt(at(variance) + epsilon);
    });

  describe('batchNorm', () => {
    const x = [2, 4, 9, 23];
    for (const [name, offset, scale] of [
      ['simple batchnorm4D, no offset or scale, 2x1x1x2', null, null],
      ['simple batchnorm4D, no offset, 2x1x1x2', null, [4, 5]],
      ['simple batchnorm4D, no scale, 2x1x1x2', [3, 4], null],
      ['simple batchnorm4D, 2x1x1x2', [3, 4], [4, 5]],
    ] as const) {
      onWasm(name, async () => {
        const result = tf.batchNorm4d(
          tf.tensor4d(x, [2, 1, 1, 2]),
          tf.tensor1d([1, 2]),
          tf.tensor1d([2, 3]),
          offset === null ? undefined : tf.tensor1d([...offset]),
          scale === null ? undefined : tf.tensor1d([...scale]),
          0.001,
        );
        expectArraysClose(await result.data(), formula(x, [1, 2], [2, 3], [...(offset ?? [0])], [...(scale ?? [1])]));
      });
    }

    onWasm('simple batchnorm4D gradients, 2x1x1x2', async () => {
      const x = tf.tensor4d([2, 4, 9, 23], [2, 1, 1, 2]);
      const mean = tf.tensor1d([1, 2]);
      const variance = tf.tensor1d([2, 3]);
      const offset = tf.tensor1d([3, 4]);
      const scale = tf.tensor1d([2, 5]);
      const dy = tf.tensor4d([-1, -1, -1, -1], [2, 1, 1, 2]);
      const norm = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
        tf.batchNorm4d(a as tf.Tensor4D, m as tf.Tensor1D, v as tf.Tensor1D, o as tf.Tensor1D, s as tf.Tensor1D, 0.001);
      const gradX = tf.grad((a) => norm(a, mean, variance, offset, scale))(x, dy);
      expectArraysClose(await gradX.data(), [-1.414, -2.887, -1.414, -2.887]);
      assert.deepEqual(gradX.shape, [2, 1, 1, 2]);
      const gradMean = tf.grad((m) => norm(x, m, variance, offset, scale))(mean, dy);
      expectArraysClose(await gradMean.data(), [2.828, 5.773]);
      const gradVariance = tf.grad((v) => norm(x, mean, v, offset, scale))(variance, dy);
      expectArraysClose(await gradVariance.data(), [3.18, 11.06]);
      const gradOffset = tf.grad((o) => norm(x, mean, variance, o, scale))(offset, dy);
      expectArraysClose(await gradOffset.data(), await tf.sum(dy, [0, 1, 2]).data());
      const gradScale = tf.grad((s) => norm(x, mean, variance, offset, s))(scale, dy);
      expectArraysClose(await gradScale.data(), [-6.362, -13.277]);
      assert.deepEqual(gradScale.shape, [2]);
    });

    onWasm('batchnorm4D gradients, same shapes in x, mean and variance', async () => {
      const x = tf.tensor4d([10, 20, 30, 40], [2, 1, 1, 2]);
      const mean = tf.tensor4d([0, 5, 10, 15], [2, 1, 1, 2]);
      const variance = tf.tensor4d([2, 4, 6, 8], [2, 1, 1, 2]);
      const scale = tf.tensor4d([2, 5, 2, 5], [2, 1, 1, 2]);
      const offset = tf.tensor4d([0, 0, 0, 0], [2, 1, 1, 2]);
      const dy = tf.tensor4d([-1, -1, -1, -1], [2, 1, 1, 2]);
      const norm = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
        tf.batchNorm4d(a as tf.Tensor4D, m as tf.Tensor4D, v as tf.Tensor4D, o as tf.Tensor4D, s as tf.Tensor4D, 0.001);
      expectArraysClose(
        await tf
          .grad((a) => norm(a, mean, variance, offset, scale))(x, dy)
          .data(),
        [-1.414, -2.5, -0.816, -1.768],
      );
      expectArraysClose(
        await tf
          .grad((m) => norm(x, m, variance, offset, scale))(mean, dy)
          .data(),
        [1.414, 2.5, 0.816, 1.768],
      );
      expectArraysClose(
        await tf
          .grad((v) => norm(x, mean, v, offset, scale))(variance, dy)
          .data(),
        [3.533, 4.686, 1.36, 2.762],
      );
      expectArraysClose(
        await tf
          .grad((o) => norm(x, mean, variance, o, scale))(offset, dy)
          .data(),
        await dy.data(),
      );
      expectArraysClose(
        await tf
          .grad((s) => norm(x, mean, variance, offset, s))(scale, dy)
          .data(),
        [-7.069, -7.499, -8.164, -8.838],
      );
    });

    onWasm('batchnorm3D, x,mean,var,offset,scale are all 3D', async () => {
      const shape: [number, number, number] = [2, 1, 2];
      const [x, mean, variance, offset, scale] = [
        [2, 4, 9, 23],
        [1, 2, 3, 4],
        [2, 3, 4, 5],
        [3, 4, 5, 6],
        [4, 5, 6, 7],
      ] as const;
      const result = tf.batchNorm3d(
        tf.tensor3d([...x], shape),
        tf.tensor3d([...mean], shape),
        tf.tensor3d([...variance], shape),
        tf.tensor3d([...offset], shape),
        tf.tensor3d([...scale], shape),
        0.001,
      );
      expectArraysClose(await result.data(), formula([...x], [...mean], [...variance], [...offset], [...scale]));
    });

    onWasm('batchnorm matches tensorflow, 2x3x3', async () => {
      const x = tf.tensor3d(
        [
          0.49955603, 0.04158615, -1.09440524, 2.03854165, -0.61578344, 2.87533573, 1.18105987, 0.807462, 1.87888837,
          2.26563962, -0.37040935, 1.35848753, -0.75347094, 0.15683117, 0.91925946, 0.34121279, 0.92717143, 1.89683965,
        ],
        [2, 3, 3],
      );
      const mean = tf.tensor1d([0.39745062, -0.48062894, 0.4847822]);
      const variance = tf.tensor1d([0.32375343, 0.67117643, 1.08334653]);
      const offset = tf.tensor1d([0.69398749, -1.29056387, 0.9429723]);
      const scale = tf.tensor1d([-0.5607271, 0.9878457, 0.25181573]);
      const result = tf.batchNorm3d(x, mean, variance, offset, scale, 0.001);
      expectArraysClose(
        await result.data(),
        [
          0.59352049, -0.66135202, 0.5610874, -0.92077015, -1.45341019, 1.52106473, -0.07704776, 0.26144429, 1.28010017,
          -1.14422404, -1.15776136, 1.15425493, 1.82644104, -0.52249442, 1.04803919, 0.74932291, 0.40568101, 1.2844412,
        ],
      );
    });

    onWasm('batchnorm2D matches tensorflow, 3x3', async () => {
      const x = tf.tensor2d(
        [0.3136892, 0.92389025, 0.594782, 0.05021042, 0.67545404, 0.93910035, 0.13277993, 0.96474269, 0.88608916],
        [3, 3],
      );
      const mean = tf.tensor1d([0.19526312, 0.74857256, 0.45166398]);
      const variance = tf.tensor1d([0.22963001, 0.61521992, 0.46623685]);
      const offset = tf.tensor1d([0.43098484, 0.77712237, 0.47916298]);
      const scale = tf.tensor1d([0.62186907, 0.85673736, 0.19201061]);
      const result = tf.batchNorm2d(x, mean, variance, offset, scale, 0.001);
      expectArraysClose(
        await result.data(),
        [0.58433646, 0.96846228, 0.51936529, 0.24315402, 0.69732157, 0.61608542, 0.35007446, 1.01304821, 0.60119441],
      );
    });
  });

  describe('moments', () => {
    onWasm('basic', async () => {
      const { mean, variance } = tf.moments(tf.tensor2d([1, 2, 3, 0, 0, 1], [3, 2]));
      expectArraysClose(await mean.data(), 7 / 6);
      expectArraysClose(await variance.data(), 1.1389);
    });
    onWasm('propagates NaNs', async () => {
      const { mean, variance } = tf.moments(tf.tensor2d([1, 2, 3, NaN, 0, 1], [3, 2]));
      expectArraysEqual(await mean.data(), NaN);
      expectArraysEqual(await variance.data(), NaN);
    });
    onWasm('2D array with keep dim', async () => {
      const { mean, variance } = tf.moments(tf.tensor2d([1, 2, 3, 0, 0, 1], [3, 2]), undefined, true);
      assert.deepEqual(mean.shape, [1, 1]);
      expectArraysClose(await mean.data(), [7 / 6]);
      expectArraysClose(await variance.data(), [1.138889]);
    });
    onWasm('axis=0 in 2D array', async () => {
      const { mean, variance } = tf.moments(tf.tensor2d([1, 2, 3, 0, 0, 1], [3, 2]), [0]);
      assert.deepEqual(mean.shape, [2]);
      expectArraysClose(await mean.data(), [4 / 3, 1]);
      expectArraysClose(await variance.data(), [1.556, 2 / 3]);
    });
  });

  describe('tile', () => {
    onWasm('2D (tile)', async () => {
      const t = tf.tensor2d([1, 11, 2, 22], [2, 2]);
      expectArraysClose(await tf.tile(t, [1, 2]).data(), [1, 11, 1, 11, 2, 22, 2, 22]);
      expectArraysClose(await tf.tile(t, [2, 1]).data(), [1, 11, 2, 22, 1, 11, 2, 22]);
      expectArraysClose(await tf.tile(t, [2, 2]).data(), [1, 11, 1, 11, 2, 22, 2, 22, 1, 11, 1, 11, 2, 22, 2, 22]);
    });
    onWasm('4D (tile)', async () => {
      const t2 = tf.tile(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]), [1, 2, 1, 1]);
      assert.deepEqual(t2.shape, [1, 4, 2, 2]);
      expectArraysClose(await t2.data(), [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    });
    onWasm('6D (tile)', async () => {
      const t = tf.tensor6d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 2, 2, 2, 2]);
      const t2 = tf.tile(t, [1, 2, 1, 1, 1, 1]);
      assert.deepEqual(t2.shape, [1, 2, 2, 2, 2, 2]);
      expectArraysClose(
        await t2.data(),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
      );
    });
    onWasm('propagates NaNs', async () => {
      expectArraysClose(await tf.tile(tf.tensor1d([1, 2, NaN]), [2]).data(), [1, 2, NaN, 1, 2, NaN]);
    });
    onWasm('2D bool (tile)', async () => {
      const t = tf.tensor2d([true, false, true, true], [2, 2], 'bool');
      const t2 = tf.tile(t, [2, 2]);
      assert.equal(t2.dtype, 'bool');
      expectArraysEqual(await t2.data(), [1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1]);
    });
    onWasm('2D int32 (tile)', async () => {
      const t2 = tf.tile(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), [2, 2]);
      assert.equal(t2.dtype, 'int32');
      expectArraysEqual(await t2.data(), [1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4]);
    });
    onWasm('4D (tile) gradient', async () => {
      const x = tf.tensor4d([1, 2, 3, 4], [2, 2, 1, 1]);
      const dy = tf.tensor4d([0.01, 0.1, 1, 10, 0.02, 0.2, 2, 20, 0.03, 0.3, 3, 30, 0.04, 0.4, 4, 40], [2, 2, 2, 2]);
      const gradients = tf.grad((a) => tf.tile(a, [1, 1, 2, 2]))(x, dy);
      expectArraysClose(await gradients.data(), [11.11, 22.22, 33.33, 44.44]);
      assert.deepEqual(gradients.shape, [2, 2, 1, 1]);
    });
  });

  describe('clipByValue', () => {
    for (const [name, x, dy, expected] of [
      ['gradient: 1D tensor', [3, -2, 1], [5, 50, 500], [0, 0, 500]],
      ['gradient: 1D tensor with max or min value', [-1, 1, 2, 3], [1, 10, 100, 1000], [1, 10, 100, 0]],
      ['gradient: scalar', [-10], [5], [0]],
    ] as const) {
      onWasm(name, async () => {
        const shape = x.length === 1 ? [] : [x.length];
        const gradients = tf.grad((a) => tf.clipByValue(a, -1, 2))(tf.tensor([...x], shape), tf.tensor([...dy], shape));
        assert.deepEqual(gradients.shape, shape);
        assert.equal(gradients.dtype, 'float32');
        expectArraysClose(await gradients.data(), [...expected]);
      });
    }
  });

  describe('depthwiseConv2D', () => {
    const CASES: ReadonlyArray<{
      name: string;
      x: number[];
      xShape: [number, number, number, number];
      filter: number[];
      filterShape: [number, number, number, number];
      strides: number;
      pad: 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
      outShape: number[];
      expected: number[];
    }> = [
      {
        name: 'input=1x3x3x1,f=2,s=1,d=1,p=valid,chMul=1',
        x: [0.230664, 0.987388, 0.0685208, 0.419224, 0.887861, 0.731641, 0.0741907, 0.409265, 0.351377],
        xShape: [1, 3, 3, 1],
        filter: [0.303873, 0.229223, 0.144333, 0.803373],
        filterShape: [2, 2, 1, 1],
        strides: 1,
        pad: 'valid',
        outShape: [1, 2, 2, 1],
        expected: [1.07022, 1.03167, 0.67041, 0.778863],
      },
      {
        name: 'input=1x3x3x1,f=2,s=1,d=1,p=explicit,chMul=1',
        x: [0.230664, 0.987388, 0.0685208, 0.419224, 0.887861, 0.731641, 0.0741907, 0.409265, 0.351377],
        xShape: [1, 3, 3, 1],
        filter: [0.303873, 0.229223, 0.144333, 0.803373],
        filterShape: [2, 2, 1, 1],
        strides: 1,
        pad: [
          [0, 0],
          [1, 2],
          [0, 1],
          [0, 0],
        ],
        outShape: [1, 5, 3, 1],
        expected: [
          0.826533, 0.19756, 0.0098898, 1.070216, 1.031675, 0.126422, 0.6704096, 0.778863, 0.273041, 0.116357, 0.204908,
          0.106774, 0, 0, 0,
        ],
      },
      {
        name: 'input=1x5x5x1,f=3,s=1,d=1,p=valid,chMul=1',
        x: [
          0.149194, 0.089009, 0.654891, 0.083324, 0.537043, 0.644331, 0.563037, 0.211859, 0.633501, 0.186427, 0.777034,
          0.50001, 0.607341, 0.95303, 0.696479, 0.050387, 0.62045, 0.728049, 0.028043, 0.437009, 0.712881, 0.741935,
          0.974474, 0.621102, 0.171411,
        ],
        xShape: [1, 5, 5, 1],
        filter: [0.125386, 0.975199, 0.640437, 0.281895, 0.990968, 0.347208, 0.889702, 0.180695, 0.691992],
        filterShape: [3, 3, 1, 1],
        strides: 1,
        pad: 'valid',
        outShape: [1, 3, 3, 1],
        expected: [2.540022, 2.505885, 2.454062, 2.351701, 2.459601, 3.076421, 3.29848, 3.437421, 2.93419],
      },
      {
        name: 'input=1x3x3x2,f=2,s=1,d=1,p=same,chMul=1',
        x: [
          0.111057, 0.661818, 0.701979, 0.424362, 0.992854, 0.417599, 0.423036, 0.500499, 0.368484, 0.714135, 0.456693,
          0.531058, 0.636636, 0.345024, 0.0506303, 0.789682, 0.177473, 0.793569,
        ],
        xShape: [1, 3, 3, 2],
        filter: [0.614293, 0.0648011, 0.101113, 0.452887, 0.0582746, 0.426481, 0.872743, 0.765767],
        filterShape: [2, 2, 2, 1],
        strides: 1,
        pad: 'same',
        outShape: [1, 3, 3, 2],
        expected: [
          0.485445, 0.995389, 0.95166, 0.927856, 0.636516, 0.253547, 0.378414, 1.10771, 0.430373, 1.23126, 0.290885,
          0.372855, 0.3962, 0.379995, 0.0490466, 0.410569, 0.10902, 0.0514242,
        ],
      },
      {
        name: 'input=1x5x5x4,f=5,s=2,d=1,p=same,chMul=1',
        x: [
          0.149194, 0.089009, 0.654891, 0.083324, 0.537043, 0.644331, 0.563037, 0.211859, 0.633501, 0.186427, 0.777034,
          0.50001, 0.607341, 0.95303, 0.696479, 0.050387, 0.62045, 0.728049, 0.028043, 0.437009, 0.712881, 0.741935,
          0.974474, 0.621102, 0.171411, 0.675707, 0.758567, 0.413529, 0.963967, 0.217291, 0.101335, 0.804231, 0.329673,
          0.924503, 0.728742, 0.180217, 0.210459, 0.133869, 0.650827, 0.047613, 0.554795, 0.653365, 0.442196, 0.261945,
          0.0528113, 0.656698, 0.127345, 0.610039, 0.169131, 0.458647, 0.0988288, 0.966109, 0.0421747, 0.82035,
          0.274711, 0.359377, 0.512113, 0.689682, 0.941571, 0.31961, 0.743826, 0.858147, 0.984766, 0.926973, 0.579597,
          0.444104, 0.505969, 0.241437, 0.937999, 0.0957074, 0.773611, 0.46023, 0.469379, 0.363789, 0.269745, 0.486136,
          0.894215, 0.794299, 0.724615, 0.261945, 0.0528113, 0.656698, 0.127345, 0.610039, 0.169131, 0.458647,
          0.0988288, 0.966109, 0.0421747, 0.82035, 0.274711, 0.359377, 0.512113, 0.689682, 0.941571, 0.31961, 0.743826,
          0.858147, 0.984766, 0.926973,
        ],
        xShape: [1, 5, 5, 4],
        filter: [
          0.6511372, 0.8699447, 0.6511372, 0.8699447, 0.267792, 0.9981787, 0.267792, 0.9981787, 0.4913572, 0.3321196,
          0.4913572, 0.3321196, 0.5286497, 0.4241803, 0.5286497, 0.4241803, 0.0175446, 0.8365464, 0.0175446, 0.8365464,
          0.1768399, 0.2874831, 0.1768399, 0.2874831, 0.0933998, 0.5764548, 0.0933998, 0.5764548, 0.0661623, 0.8850273,
          0.0661623, 0.8850273, 0.8700929, 0.205422, 0.8700929, 0.205422, 0.149194, 0.089009, 0.654891, 0.083324,
          0.537043, 0.644331, 0.563037, 0.211859, 0.633501, 0.186427, 0.777034, 0.50001, 0.607341, 0.95303, 0.696479,
          0.050387, 0.62045, 0.728049, 0.028043, 0.437009, 0.712881, 0.741935, 0.974474, 0.621102, 0.171411, 0.125386,
          0.975199, 0.640437, 0.281895, 0.990968, 0.347208, 0.889702, 0.180695, 0.691992, 0.347154, 0.386692, 0.327191,
          0.483784, 0.591807, 0.24263, 0.95182, 0.174353, 0.592136, 0.623469, 0.988244, 0.660731, 0.946534, 0.0801365,
          0.864889, 0.874602, 0.240347, 0.906352, 0.478657, 0.825918, 0.380769, 0.184705, 0.238241, 0.201907, 0.294087,
          0.181165, 0.191303, 0.7225, 0.430064, 0.900622,
        ],
        filterShape: [5, 5, 4, 1],
        strides: 2,
        pad: 'same',
        outShape: [1, 3, 3, 4],
        expected: [
          2.2883458137512207, 2.5740344524383545, 2.3246560096740723, 2.27826189994812, 3.0600292682647705,
          5.021538734436035, 4.432307720184326, 2.6976213455200195, 1.8467353582382202, 3.617821216583252,
          2.0940940380096436, 1.3091316223144531, 2.4892354011535645, 4.767732620239258, 3.126866579055786,
          3.4326541423797607, 4.181705474853516, 8.082467079162598, 6.922453880310059, 5.922790050506592,
          2.819075345993042, 5.9510369300842285, 3.7211103439331055, 2.7263708114624023, 1.164026141166687,
          3.3068809509277344, 1.6575196981430054, 2.738445997238159, 2.288442850112915, 5.463253021240234,
          2.840029239654541, 3.8579823970794678, 1.440760612487793, 3.862100839614868, 2.3826799392700195,
          2.2323575019836426,
        ],
      },
      {
        name: 'input=1x3x3x2,f=2,s=1,p=same,chMul=2',
        x: [
          0.675707, 0.758567, 0.413529, 0.963967, 0.217291, 0.101335, 0.804231, 0.329673, 0.924503, 0.728742, 0.180217,
          0.210459, 0.133869, 0.650827, 0.047613, 0.554795, 0.653365, 0.442196,
        ],
        xShape: [1, 3, 3, 2],
        filter: [
          0.347154, 0.386692, 0.327191, 0.483784, 0.591807, 0.24263, 0.95182, 0.174353, 0.592136, 0.623469, 0.988244,
          0.660731, 0.946534, 0.0801365, 0.864889, 0.874602,
        ],
        filterShape: [2, 2, 2, 2],
        strides: 1,
        pad: 'same',
        outShape: [1, 3, 3, 4],
        expected: [
          1.83059, 0.937125, 2.1218, 1.39024, 0.990167, 0.803472, 1.31405, 1.14959, 0.182147, 0.196385, 0.241141,
          0.188081, 0.950656, 0.622581, 1.92451, 1.20179, 1.07422, 0.483268, 1.36948, 1.14256, 0.449444, 0.477042,
          0.505857, 0.393989, 0.0746509, 0.0633184, 0.74101, 0.41159, 0.403195, 0.176938, 0.602415, 0.345499, 0.226819,
          0.252651, 0.144682, 0.213927,
        ],
      },
      {
        name: 'input=2x3x3x2,f=2,s=1,p=same,chMul=2',
        x: [
          0.261945, 0.0528113, 0.656698, 0.127345, 0.610039, 0.169131, 0.458647, 0.0988288, 0.966109, 0.0421747,
          0.82035, 0.274711, 0.359377, 0.512113, 0.689682, 0.941571, 0.31961, 0.743826, 0.858147, 0.984766, 0.926973,
          0.579597, 0.444104, 0.505969, 0.241437, 0.937999, 0.0957074, 0.773611, 0.46023, 0.469379, 0.363789, 0.269745,
          0.486136, 0.894215, 0.794299, 0.724615,
        ],
        xShape: [2, 3, 3, 2],
        filter: [
          0.240347, 0.906352, 0.478657, 0.825918, 0.380769, 0.184705, 0.238241, 0.201907, 0.294087, 0.181165, 0.191303,
          0.7225, 0.430064, 0.900622, 0.670338, 0.33478,
        ],
        filterShape: [2, 2, 2, 2],
        strides: 1,
        pad: 'same',
        outShape: [2, 3, 3, 4],
        expected: [
          0.863379, 1.3119, 0.102795, 0.154853, 1.02704, 1.62173, 0.293466, 0.261764, 0.387876, 0.701529, 0.133508,
          0.338167, 0.880395, 1.28039, 0.786492, 0.775361, 0.884845, 1.43995, 0.764374, 1.0196, 0.291162, 0.801428,
          0.273788, 0.764303, 0.348985, 0.45311, 0.469447, 0.613073, 0.287461, 0.684128, 0.627899, 0.927844, 0.0768174,
          0.28968, 0.356037, 0.614339, 0.67138, 1.07894, 1.30747, 1.86705, 0.617971, 1.35402, 0.860607, 1.29693,
          0.242087, 0.485892, 0.331979, 0.757015, 0.410527, 0.740235, 1.28431, 1.42516, 0.68281, 0.975185, 1.13892,
          1.62237, 0.344208, 0.561029, 0.363292, 0.911203, 0.272541, 0.419513, 0.342154, 0.403335, 0.419286, 0.587321,
          0.600655, 0.884853, 0.190907, 0.719914, 0.346842, 0.598472,
        ],
      },
    ];
    for (const c of CASES) {
      onWasm(c.name, async () => {
        const result = tf.depthwiseConv2d(
          tf.tensor4d(c.x, c.xShape),
          tf.tensor4d(c.filter, c.filterShape),
          c.strides,
          c.pad,
        );
        assert.deepEqual(result.shape, c.outShape);
        expectArraysClose(await result.data(), c.expected);
      });
    }

    onWasm('input=1x3x3x1,f=2,s=1,d=2,p=valid,chMul=1', async () => {
      const x = tf.tensor4d(
        [0.230664, 0.987388, 0.0685208, 0.419224, 0.887861, 0.731641, 0.0741907, 0.409265, 0.351377],
        [1, 3, 3, 1],
      );
      const w = tf.tensor4d([0.303873, 0.229223, 0.144333, 0.803373], [2, 2, 1, 1]);
      // A dilation (the built-in kernel) is a filter with zeros between its taps (ours).
      const wDilated = tf.tensor4d([0.303873, 0, 0.229223, 0, 0, 0, 0.144333, 0, 0.803373], [3, 3, 1, 1]);
      const result = tf.depthwiseConv2d(x, w, 1, 'valid', 'NHWC', 2);
      const expectedResult = tf.depthwiseConv2d(x, wDilated, 1, 'valid');
      assert.deepEqual(result.shape, expectedResult.shape);
      expectArraysClose(await result.data(), await expectedResult.data());
    });
  });
});
