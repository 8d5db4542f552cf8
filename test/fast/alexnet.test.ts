import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import type { ImageShape } from '../../src/datasets/dataset.ts';
import { AdaptiveAveragePooling2D, adaptiveAveragePooling2d } from '../../src/models/adaptive-average-pooling.ts';
import { alexnet } from '../../src/models/alexnet.ts';
import { loadArtifact, saveArtifact } from '../../src/models/artifact.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { SeededDropout, seededDropout } from '../../src/models/seeded-dropout.ts';
import { startBackend } from '../../src/backends/select.ts';
import { randomValues } from '../support/random-values.ts';

const MNIST_SHAPE: ImageShape = { height: 28, width: 28, channels: 1 };
const CIFAR_SHAPE: ImageShape = { height: 32, width: 32, channels: 3 };
const BACKENDS = ['cpu', 'wasm'] as const;
const silent = pino({ level: 'silent' });

const folders: string[] = [];
before(async () => {
  // Registers the wasm training kernels; cpu is started per test where it is used.
  assert.equal(await startBackend('wasm', silent), 'wasm');
});
after(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function useBackend(backend: (typeof BACKENDS)[number]): Promise<void> {
  assert.equal(await startBackend(backend, silent), backend);
  assert.equal(tf.getBackend(), backend);
}

/**
 * The values of the tensor `compute` returns, its intermediates disposed. (Not tf.tidy(() => …dataSync()):
 * tidy walks a returned typed array element by element, ~0.4 s per 600k values.)
 */
function valuesOf(compute: () => tf.Tensor): Float32Array {
  const result = tf.tidy(compute);
  try {
    return result.dataSync() as Float32Array;
  } finally {
    result.dispose();
  }
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= tolerance * Math.max(1, Math.abs(e))))
      assert.fail(`${what}: value ${i} is ${a}, expected ${e}`);
  }
}

function assertSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}: value ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Parameter counts
// ---------------------------------------------------------------------------------------------

describe('parameter counts', () => {
  for (const { shape, expected } of [
    { shape: MNIST_SHAPE, expected: 44_426 },
    { shape: CIFAR_SHAPE, expected: 62_006 },
  ]) {
    it(`lenet5 on ${shape.height}x${shape.width}x${shape.channels}: ${expected.toLocaleString('en')}`, () => {
      const network = lenet5.build(shape, 10, 3);
      try {
        assert.equal(network.countParams(), expected);
      } finally {
        network.dispose();
      }
    });
  }
  // AlexNet's two counts are checked under 'AlexNet' below, on the builds shared there (5 s each).
});

// ---------------------------------------------------------------------------------------------
// AdaptiveAveragePooling2D
// ---------------------------------------------------------------------------------------------

type Shape4 = [number, number, number, number];

/** PyTorch's window [start, end) for output cell i of m over n input cells, written out directly. */
function window(i: number, n: number, m: number): [number, number] {
  return [Math.floor((i * n) / m), Math.ceil(((i + 1) * n) / m)];
}

/**
 * Visits every output cell of PyTorch's adaptive average pooling on NHWC: its offset in the output
 * and the offsets of the input cells its window covers, row by row.
 */
function forEachWindow(
  [batch, height, width, channels]: Shape4,
  [outH, outW]: [number, number],
  visit: (outAt: number, inputAts: number[]) => void,
): void {
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < outH; i++) {
      const [h0, h1] = window(i, height, outH);
      for (let j = 0; j < outW; j++) {
        const [w0, w1] = window(j, width, outW);
        for (let c = 0; c < channels; c++) {
          const inputAts: number[] = [];
          for (let h = h0; h < h1; h++)
            for (let w = w0; w < w1; w++) inputAts.push(((b * height + h) * width + w) * channels + c);
          visit(((b * outH + i) * outW + j) * channels + c, inputAts);
        }
      }
    }
  }
}

/** nn.AdaptiveAvgPool2d on NHWC by direct summation over each window. */
function referencePool(x: Float32Array, shape: Shape4, outSize: [number, number]): Float32Array {
  const out = new Float32Array(shape[0] * outSize[0] * outSize[1] * shape[3]);
  forEachWindow(shape, outSize, (outAt, inputAts) => {
    let sum = 0;
    for (const at of inputAts) sum += x[at] as number;
    out[outAt] = sum / inputAts.length;
  });
  return out;
}

/** d/dx Σ pool(x)·g: each input cell receives g/count from every window that covers it. */
function referencePoolGradient(g: Float32Array, shape: Shape4, outSize: [number, number]): Float32Array {
  const dx = new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]);
  forEachWindow(shape, outSize, (outAt, inputAts) => {
    const share = (g[outAt] as number) / inputAts.length;
    for (const at of inputAts) dx[at] = (dx[at] as number) + share;
  });
  return dx;
}

function pool(layer: AdaptiveAveragePooling2D, x: tf.Tensor): Float32Array {
  return valuesOf(() => layer.apply(x) as tf.Tensor);
}

/** Output of the 6x6 pool of arange(n²) on an n×n map: out[i][j] = n·a[i] + a[j], a the window means of 0..n-1. */
function separableExpectation(n: number, a: readonly number[]): number[] {
  return a.flatMap((ai) => a.map((aj) => n * ai + aj));
}

describe('AdaptiveAveragePooling2D', () => {
  // Window means of 0..n-1, worked out by hand from PyTorch's floor/ceil windows:
  //   n=4: [0,1) [0,2) [1,2) [2,3) [2,4) [3,4)   n=3: [0,1) [0,1) [1,2) [1,2) [2,3) [2,3)
  //   n=8: [0,2) [1,3) [2,4) [4,6) [5,7) [6,8)   n=6: [i,i+1)
  const handWorked: Record<number, number[]> = {
    4: [0, 0.5, 1, 2, 2.5, 3],
    3: [0, 0, 1, 1, 2, 2],
    8: [0.5, 1.5, 2.5, 4.5, 5.5, 6.5],
    6: [0, 1, 2, 3, 4, 5],
  };

  for (const backend of BACKENDS) {
    for (const n of [4, 3, 8, 6]) {
      it(`${n}x${n} → 6x6 on ${backend} matches PyTorch's windows`, async () => {
        await useBackend(backend);
        const shape: Shape4 = [1, n, n, 1];
        const values = Float32Array.from({ length: n * n }, (_, i) => i);
        const layer = adaptiveAveragePooling2d({ outputSize: [6, 6] });
        const x = tf.tensor4d(values, shape);
        const actual = pool(layer, x);
        x.dispose();
        const expected = referencePool(values, shape, [6, 6]);
        assertClose(expected, separableExpectation(n, handWorked[n] as number[]), 1e-6, 'direct loop vs hand-worked');
        assertClose(actual, expected, 1e-6, `${n}x${n} → 6x6`);
        if (n === 6) assertSameValues(actual, values, 'same size is the identity');
      });
    }

    it(`batch 2, 3 channels, unequal axes (5x7 → 3x4, 3x7 → 5x2) on ${backend}`, async () => {
      await useBackend(backend);
      for (const [shape, size] of [
        [
          [2, 5, 7, 3],
          [3, 4],
        ],
        [
          [2, 3, 7, 3],
          [5, 2],
        ],
      ] as [Shape4, [number, number]][]) {
        const values = randomValues(
          shape.reduce((a, b) => a * b),
          11,
        );
        const layer = adaptiveAveragePooling2d({ outputSize: size });
        const x = tf.tensor4d(values, shape);
        const y = tf.tidy(() => layer.apply(x) as tf.Tensor);
        assert.deepEqual(y.shape, [shape[0], size[0], size[1], shape[3]]);
        assert.deepEqual(layer.computeOutputShape([null, shape[1], shape[2], shape[3]]), [
          null,
          size[0],
          size[1],
          shape[3],
        ]);
        assertClose(y.dataSync(), referencePool(values, shape, size), 1e-5, `${shape} → ${size}`);
        tf.dispose([x, y]);
      }
    });

    it(`gradient of Σ pool(x)·w on ${backend} equals w/count summed over covering windows`, async () => {
      await useBackend(backend);
      for (const [shape, size] of [
        [
          [1, 4, 4, 1],
          [6, 6],
        ],
        [
          [1, 3, 3, 1],
          [6, 6],
        ],
        [
          [2, 8, 8, 3],
          [6, 6],
        ],
        [
          [2, 5, 7, 2],
          [3, 4],
        ],
      ] as [Shape4, [number, number]][]) {
        const layer = adaptiveAveragePooling2d({ outputSize: size });
        const wValues = randomValues(shape[0] * size[0] * size[1] * shape[3], 5);
        const x = tf.tensor4d(
          randomValues(
            shape.reduce((a, b) => a * b),
            6,
          ),
          shape,
        );
        const w = tf.tensor4d(wValues, [shape[0], size[0], size[1], shape[3]]);
        const before = tf.memory().numTensors;
        const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, w)))(x);
        assert.equal(tf.memory().numTensors, before + 1, 'only the gradient is left');
        assert.deepEqual(dx.shape, shape);
        assertClose(dx.dataSync(), referencePoolGradient(wValues, shape, size), 1e-5, `gradient ${shape} → ${size}`);
        tf.dispose([x, w, dx]);
      }
    });
  }

  it('rejects a bad outputSize and serialises its own', () => {
    assert.throws(() => adaptiveAveragePooling2d({ outputSize: [6, 0] }), /positive integer/);
    assert.throws(() => adaptiveAveragePooling2d({ outputSize: [6, 2.5] }), /positive integer/);
    const layer = adaptiveAveragePooling2d({ outputSize: 5, name: 'pool' });
    assert.deepEqual(layer.getConfig()['outputSize'], [5, 5]);
    assert.equal(AdaptiveAveragePooling2D.className, 'AdaptiveAveragePooling2D');
  });
});

// ---------------------------------------------------------------------------------------------
// SeededDropout
// ---------------------------------------------------------------------------------------------

function trainingOutput(layer: tfl.layers.Layer, x: tf.Tensor): Float32Array {
  return valuesOf(() => layer.apply(x, { training: true }) as tf.Tensor);
}

describe('SeededDropout', () => {
  it('repeats the same sequence of masks for a seed, with a new mask every call', async () => {
    await useBackend('wasm');
    const x = tf.ones([2000]);
    const first = seededDropout({ rate: 0.5, seed: 42 });
    const second = seededDropout({ rate: 0.5, seed: 42 });
    const other = seededDropout({ rate: 0.5, seed: 43 });
    const a = [trainingOutput(first, x), trainingOutput(first, x), trainingOutput(first, x)];
    const b = [trainingOutput(second, x), trainingOutput(second, x), trainingOutput(second, x)];
    const c = trainingOutput(other, x);
    x.dispose();
    a.forEach((mask, i) => assertSameValues(b[i] as Float32Array, mask, `call ${i + 1}`));
    const differs = (p: Float32Array, q: Float32Array) => p.some((value, i) => value !== q[i]);
    assert.ok(differs(a[0] as Float32Array, a[1] as Float32Array), 'calls 1 and 2 differ');
    assert.ok(differs(a[1] as Float32Array, a[2] as Float32Array), 'calls 2 and 3 differ');
    assert.ok(differs(a[0] as Float32Array, c), 'another seed, another mask');
  });

  it('goes on with the masks of another layer from its randomPosition, as a resumed checkpoint needs', async () => {
    await useBackend('wasm');
    const x = tf.ones([2000]);
    const original = seededDropout({ rate: 0.5, seed: 7 });
    trainingOutput(original, x);
    const position = original.randomPosition;
    const expected = trainingOutput(original, x);
    const resumed = seededDropout({ rate: 0.5, seed: 7 });
    resumed.randomPosition = position;
    const actual = trainingOutput(resumed, x);
    const fresh = trainingOutput(seededDropout({ rate: 0.5, seed: 7 }), x);
    x.dispose();
    assertSameValues(actual, expected, 'the mask after the checkpoint');
    assert.ok(
      fresh.some((value, i) => value !== expected[i]),
      'a layer without the position would draw the first mask again',
    );
  });

  it('scales kept values by 1/(1 − rate) and drops about `rate` of them', async () => {
    await useBackend('wasm');
    const rate = 0.3;
    const values = randomValues(200_000, 9);
    const x = tf.tensor1d(values);
    const y = trainingOutput(seededDropout({ rate, seed: 1 }), x);
    x.dispose();
    let dropped = 0;
    for (let i = 0; i < values.length; i++) {
      if (y[i] === 0) dropped++;
      else assertClose([y[i] as number], [(values[i] as number) / (1 - rate)], 1e-6, `kept value ${i}`);
    }
    // σ of the fraction is √(0.3·0.7/200000) ≈ 0.001.
    assert.ok(
      Math.abs(dropped / values.length - rate) < 0.006,
      `dropped ${dropped / values.length}, expected ≈ ${rate}`,
    );
  });

  it('is the identity when not training, and sees `training` through model.apply', async () => {
    await useBackend('wasm');
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [50], units: 400 }), seededDropout({ rate: 0.5, seed: 2 })],
    });
    const layer = model.layers[1] as SeededDropout;
    const x = tf.tensor2d(randomValues(4 * 50, 3), [4, 50]);
    try {
      const values = x.dataSync();
      assertSameValues(
        valuesOf(() => layer.apply(x) as tf.Tensor),
        values,
        'layer.apply without kwargs',
      );
      assertSameValues(
        valuesOf(() => layer.apply(x, { training: false }) as tf.Tensor),
        values,
        'training: false',
      );
      const plain = valuesOf(() => model.predict(x) as tf.Tensor);
      const inferred = valuesOf(() => model.apply(x) as tf.Tensor);
      assertSameValues(inferred, plain, 'model.apply without training = predict');
      const trained = valuesOf(() => model.apply(x, { training: true }) as tf.Tensor);
      const zeroed = trained.filter((value, i) => value === 0 && plain[i] !== 0).length;
      assert.ok(
        zeroed > 0.3 * trained.length,
        `model.apply(x, {training: true}) drops units (${zeroed} of ${trained.length})`,
      );
      trained.forEach((value, i) => {
        if (value !== 0) assertClose([value], [(plain[i] as number) * 2], 1e-5, `kept unit ${i}`);
      });
    } finally {
      x.dispose();
      model.dispose();
    }
  });

  it('rejects a rate outside [0, 1)', () => {
    assert.throws(() => seededDropout({ rate: 1, seed: 0 }), /rate/);
    assert.throws(() => seededDropout({ rate: -0.1, seed: 0 }), /rate/);
  });
});

// ---------------------------------------------------------------------------------------------
// Serialisation
// ---------------------------------------------------------------------------------------------

describe('saving and loading the custom layers', () => {
  it('round-trips a small model with both layers through saveArtifact / loadArtifact', async () => {
    await useBackend('wasm');
    const shape: ImageShape = { height: 8, width: 8, channels: 3 };
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
        adaptiveAveragePooling2d({ outputSize: [3, 5] }),
        tfl.layers.flatten(),
        seededDropout({ rate: 0.25, seed: 77 }),
        tfl.layers.dense({ units: 5 }),
      ],
    });
    const root = await mkdtemp(path.join(tmpdir(), 'alexnet-test-'));
    folders.push(root);
    await saveArtifact(root, model, {
      jobId: 'custom-layers',
      dataset: 'tiny',
      shape,
      classNames: ['a', 'b', 'c', 'd', 'e'],
      imageKind: 'natural',
    });
    const loaded = (await loadArtifact(root, 'custom-layers')).model;
    const x = tf.tensor4d(randomValues(6 * 8 * 8 * 3, 4), [6, 8, 8, 3]);
    try {
      const pooling = loaded.layers[1];
      const dropout = loaded.layers[3];
      assert.ok(pooling instanceof AdaptiveAveragePooling2D, 'pooling layer restored as AdaptiveAveragePooling2D');
      assert.deepEqual(pooling.outputSize, [3, 5]);
      assert.ok(dropout instanceof SeededDropout, 'dropout layer restored as SeededDropout');
      assert.equal(dropout.rate, 0.25);
      assert.equal(dropout.seed, 77);
      const expected = valuesOf(() => model.predict(x) as tf.Tensor);
      assert.ok(expected.some((value) => value !== 0));
      assertSameValues(
        valuesOf(() => loaded.predict(x) as tf.Tensor),
        expected,
        'predictions',
      );
      // The seed travels too: the first training pass of each draws the same mask.
      const trainedOriginal = valuesOf(() => model.apply(x, { training: true }) as tf.Tensor);
      const trainedLoaded = valuesOf(() => loaded.apply(x, { training: true }) as tf.Tensor);
      assertSameValues(trainedLoaded, trainedOriginal, 'first training pass');
      assert.ok(
        trainedOriginal.some((value, i) => value !== expected[i]),
        'training differs from inference',
      );
    } finally {
      x.dispose();
      model.dispose();
      loaded.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// AlexNet: initialisation, topology round trip, training
// ---------------------------------------------------------------------------------------------

function layerValues(model: tfl.LayersModel, index: number): Float32Array {
  const kernel = model.layers[index]?.getWeights()[0];
  assert.ok(kernel, `layer ${index} has a kernel`);
  return kernel.dataSync() as Float32Array;
}

describe('AlexNet', () => {
  // Building one takes seconds and 227 MB, so three are built once and shared, in this order:
  // `a` and `b` with the same seed, `other` on MNIST with another; the last test trains `a`.
  const live = new Set<tfl.LayersModel>();
  const release = (model: tfl.LayersModel | undefined) => {
    if (model && live.delete(model)) model.dispose();
  };
  let a: tfl.LayersModel;
  let b: tfl.LayersModel;
  let other: tfl.LayersModel;
  before(async () => {
    await useBackend('wasm');
    const build = (shape: ImageShape, seed: number) => {
      const model = alexnet.build(shape, 10, seed);
      live.add(model);
      return model;
    };
    a = build(CIFAR_SHAPE, 2024);
    b = build(CIFAR_SHAPE, 2024);
    other = build(MNIST_SHAPE, 2025);
  });
  after(() => [...live].forEach(release));

  /*
   * AlexNet on 32x32x3, weights + biases per layer (every conv is 3x3):
   *   conv1    3·3·3·64    + 64    =      1,792
   *   conv2    3·3·64·192  + 192   =    110,784
   *   conv3    3·3·192·384 + 384   =    663,936
   *   conv4    3·3·384·256 + 256   =    884,992
   *   conv5    3·3·256·256 + 256   =    590,080
   *   dense1   6·6·256·4096 + 4096 = 37,752,832  (adaptive pooling always gives 6x6x256 = 9,216)
   *   dense2   4096·4096 + 4096    = 16,781,312
   *   dense3   4096·10 + 10        =     40,970
   *   total                        = 56,826,698
   * On 28x28x1 only conv1 changes: 3·3·1·64 + 64 = 640, 1,152 fewer: 56,826,698 − 1,152 = 56,825,546.
   * (28 → 14 → 7 → 3 after the pools; 3x3 is adapted up to 6x6, so dense1 is unchanged.)
   */
  it('has 56,826,698 parameters on 32x32x3 and 56,825,546 on 28x28x1', () => {
    assert.equal(a.countParams(), 56_826_698);
    assert.equal(other.countParams(), 56_825_546);
    assert.deepEqual(a.outputs[0]?.shape, [null, 10]);
    assert.deepEqual(
      other.layers.slice(7, 10).map((layer) => layer.outputShape),
      [
        [null, 3, 3, 256],
        [null, 6, 6, 256],
        [null, 9216],
      ],
      'MNIST: pooled 3x3, adapted to 6x6, flattened to 9,216',
    );
  });

  it('initialises like PyTorch, repeatably for a seed (weights and dropout seeds)', () => {
    const conv1 = 0;
    const dense3 = a.layers.length - 1;
    assertSameValues(layerValues(b, conv1), layerValues(a, conv1), 'conv1 kernel');
    assertSameValues(layerValues(b, dense3), layerValues(a, dense3), 'last dense kernel');
    const checksum = (model: tfl.LayersModel) => model.getWeights().map((w) => valuesOf(() => tf.sum(tf.abs(w)))[0]);
    assert.deepEqual(checksum(b), checksum(a), 'Σ|w| of every weight');
    // The last dense kernel has the same shape on MNIST; another seed gives other values.
    const otherDense3 = layerValues(other, dense3);
    assert.ok(
      layerValues(a, dense3).some((value, i) => value !== otherDense3[i]),
      'another seed, other weights',
    );
    // PyTorch's bound for dense1 is 1/√9216 = 1/96 (tfjs's Glorot would reach ±0.021).
    const dense1 = layerValues(a, 11);
    assert.equal(dense1.length, 9216 * 4096);
    const largest = dense1.reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    assert.ok(largest <= Math.fround(1 / 96) && largest > 0.999 / 96, `dense1 spans ±1/√fanIn (largest ${largest})`);
    const dropoutSeeds = (model: tfl.LayersModel) =>
      model.layers.filter((l) => l instanceof SeededDropout).map((l) => (l as SeededDropout).seed);
    assert.equal(dropoutSeeds(a).length, 2);
    assert.deepEqual(dropoutSeeds(b), dropoutSeeds(a));
    assert.notEqual(dropoutSeeds(a)[0], dropoutSeeds(a)[1]);
    assert.notDeepEqual(dropoutSeeds(other), dropoutSeeds(a));
  });

  it('round-trips its topology (no weights) through tfl.models.modelFromJSON', async () => {
    const fromJson = await tfl.models.modelFromJSON({
      modelTopology: a.toJSON(null, false) as tfl.ModelAndWeightsConfig['modelTopology'],
    });
    live.add(fromJson);
    try {
      assert.equal(fromJson.countParams(), 56_826_698);
      assert.deepEqual(
        fromJson.layers.map((l) => l.getClassName()),
        a.layers.map((l) => l.getClassName()),
      );
      assert.deepEqual((fromJson.layers[8] as AdaptiveAveragePooling2D).outputSize, [6, 6]);
    } finally {
      release(fromJson);
    }
  });

  it('takes an SGD step on wasm (batch of 2) that changes its weights', async () => {
    await useBackend('wasm');
    release(other);
    release(b);
    const conv1 = 0;
    const dense3 = a.layers.length - 1;
    const variables = a.trainableWeights.map((weight) => weight.read() as tf.Variable);
    const optimizer = tf.train.momentum(0.01, 0.9);
    const xs = tf.tensor4d(randomValues(2 * 32 * 32 * 3, 8), [2, 32, 32, 3]);
    const ys = tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10);
    const conv1Before = layerValues(a, conv1);
    const dense3Before = layerValues(a, dense3);
    try {
      // As the trainer takes them: momentum SGD with weight decay added to the gradient.
      // One step is enough to change every layer, and it costs seconds.
      for (let step = 0; step < 1; step++) {
        const loss = tf.tidy(() => {
          const { value, grads } = tf.variableGrads(
            () => tf.losses.softmaxCrossEntropy(ys, a.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar,
            variables,
          );
          optimizer.applyGradients(
            variables.map((v) => ({ name: v.name, tensor: tf.add(grads[v.name] as tf.Tensor, tf.mul(v, 1e-4)) })),
          );
          return value;
        });
        const value = loss.dataSync()[0] as number;
        loss.dispose();
        assert.ok(Number.isFinite(value) && value > 0, `loss ${value}`);
      }
      assert.ok(
        layerValues(a, conv1).some((value, i) => value !== conv1Before[i]),
        'conv1 kernel changed',
      );
      assert.ok(
        layerValues(a, dense3).some((value, i) => value !== dense3Before[i]),
        'last dense kernel changed',
      );
    } finally {
      optimizer.dispose();
      tf.dispose([xs, ys]);
    }
  });
});
