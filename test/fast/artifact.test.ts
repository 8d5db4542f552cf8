import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import type { ImageShape } from '../../src/datasets/dataset.ts';
import { ArtifactError, loadArtifact, saveArtifact, type ArtifactMetadata } from '../../src/models/artifact.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { parameterCount } from '../../src/models/parameter-count.ts';
import { startBackend } from '../../src/backends/select.ts';

const MNIST_SHAPE: ImageShape = { height: 28, width: 28, channels: 1 };
const CIFAR_SHAPE: ImageShape = { height: 32, width: 32, channels: 3 };
const DIGITS = Array.from({ length: 10 }, (_, i) => String(i));
const CIFAR_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const folders: string[] = [];
async function tempRoot(): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), 'artifact-test-'));
  folders.push(folder);
  return folder;
}

before(async () => {
  assert.equal(await startBackend('wasm', pino({ level: 'silent' })), 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

after(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

function metadataFor(jobId: string, shape: ImageShape = MNIST_SHAPE): ArtifactMetadata {
  return { jobId, dataset: 'mnist', shape, classNames: DIGITS, imageKind: 'strokes' };
}

/** A fixed pseudo-random batch in [-1, 1], the range normalised images have. */
function randomBatch(count: number, shape: ImageShape, seed: number): tf.Tensor4D {
  return tf.randomUniform([count, shape.height, shape.width, shape.channels], -1, 1, 'float32', seed) as tf.Tensor4D;
}

function predictions(model: tfl.LayersModel, batch: tf.Tensor4D): Float32Array {
  return tf.tidy(() => (model.predict(batch) as tf.Tensor).dataSync() as Float32Array);
}

function allWeights(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((weight) => weight.dataSync() as Float32Array);
}

/** Exact equality of number arrays, reporting the first difference (a full diff of 44k floats takes minutes). */
function assertSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}: value ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

function assertSameWeights(actual: tfl.LayersModel, expected: tfl.LayersModel): void {
  const a = allWeights(actual);
  const e = allWeights(expected);
  assert.equal(a.length, e.length, 'number of weight tensors');
  e.forEach((weight, i) => assertSameValues(a[i] as Float32Array, weight, `weight ${i}`));
}

/** Everything in `root` other than the artifacts' own folders: leftovers of the temporary write. */
async function strayEntries(root: string, jobIds: readonly string[]): Promise<string[]> {
  return (await readdir(root)).filter((name) => !jobIds.includes(name));
}

describe('saveArtifact / loadArtifact', () => {
  it('loads back the same metadata and a model that predicts identically, leaving no temporary folder', async () => {
    const root = await tempRoot();
    const model = lenet5.build(MNIST_SHAPE, 10, 1234);
    const metadata = metadataFor('job-roundtrip');
    await saveArtifact(root, model, metadata);

    assert.deepEqual((await readdir(path.join(root, 'job-roundtrip'))).sort(), ['model.json', 'weights.bin']);
    assert.deepEqual(await strayEntries(root, ['job-roundtrip']), []);
    // 44,426 float32 parameters.
    assert.equal((await stat(path.join(root, 'job-roundtrip', 'weights.bin'))).size, 44_426 * 4);

    const loaded = await loadArtifact(root, 'job-roundtrip');
    try {
      assert.deepEqual(loaded.metadata, metadata);
      assert.equal(loaded.model.countParams(), 44_426);
      const batch = randomBatch(8, MNIST_SHAPE, 99);
      const expected = predictions(model, batch);
      const actual = predictions(loaded.model, batch);
      batch.dispose();
      assert.equal(actual.length, 8 * 10);
      assert.ok(
        expected.some((value) => value !== 0),
        'the original model predicts something other than zeros',
      );
      assertSameValues(actual, expected, 'predictions');
      // Weights themselves, not just their effect on one batch.
      assertSameWeights(loaded.model, model);
    } finally {
      loaded.model.dispose();
      model.dispose();
    }
  });

  it('round-trips a 3-channel model and its metadata', async () => {
    const root = await tempRoot();
    const model = lenet5.build(CIFAR_SHAPE, 10, 7);
    const metadata: ArtifactMetadata = {
      jobId: 'job-cifar',
      dataset: 'cifar10',
      shape: CIFAR_SHAPE,
      classNames: CIFAR_CLASSES,
      imageKind: 'natural',
    };
    await saveArtifact(root, model, metadata);
    const loaded = await loadArtifact(root, 'job-cifar');
    try {
      assert.deepEqual(loaded.metadata, metadata);
      const batch = randomBatch(4, CIFAR_SHAPE, 5);
      assertSameValues(predictions(loaded.model, batch), predictions(model, batch), 'predictions');
      batch.dispose();
    } finally {
      loaded.model.dispose();
      model.dispose();
    }
  });

  it('gives a model saved before artifacts recorded their kind the kind of its built-in data set, else natural', async () => {
    const root = await tempRoot();
    const model = lenet5.build(MNIST_SHAPE, 10, 3);
    for (const [dataset, kind] of [
      ['mnist', 'strokes'],
      ['cifar10', 'natural'],
      ['uploaded-someday', 'natural'],
    ] as const) {
      const jobId = `job-old-${dataset}`;
      await saveArtifact(root, model, { ...metadataFor(jobId), dataset });
      const file = path.join(root, jobId, 'model.json');
      const stored = JSON.parse(await readFile(file, 'utf8')) as { metadata: Record<string, unknown> };
      delete stored.metadata.imageKind;
      await writeFile(file, JSON.stringify(stored));
      const loaded = await loadArtifact(root, jobId);
      assert.equal(loaded.metadata.imageKind, kind, dataset);
      loaded.model.dispose();
    }
    model.dispose();
  });

  it('overwrites an existing artifact with the new model and metadata', async () => {
    const root = await tempRoot();
    const first = lenet5.build(MNIST_SHAPE, 10, 1);
    const second = lenet5.build(MNIST_SHAPE, 10, 2);
    await saveArtifact(root, first, metadataFor('job-overwrite'));
    const newMetadata: ArtifactMetadata = {
      ...metadataFor('job-overwrite'),
      classNames: DIGITS.map((d) => `digit ${d}`),
    };
    await saveArtifact(root, second, newMetadata);

    assert.deepEqual(await strayEntries(root, ['job-overwrite']), []);
    const loaded = await loadArtifact(root, 'job-overwrite');
    try {
      assert.deepEqual(loaded.metadata, newMetadata);
      const batch = randomBatch(4, MNIST_SHAPE, 3);
      const fromFirst = predictions(first, batch);
      const fromSecond = predictions(second, batch);
      const fromLoaded = predictions(loaded.model, batch);
      batch.dispose();
      assert.ok(
        fromFirst.some((value, i) => value !== fromSecond[i]),
        'two seeds give two different models',
      );
      assertSameValues(fromLoaded, fromSecond, 'predictions');
    } finally {
      loaded.model.dispose();
      first.dispose();
      second.dispose();
    }
  });

  it('keeps artifacts of different jobs apart in one root', async () => {
    const root = await tempRoot();
    const a = lenet5.build(MNIST_SHAPE, 10, 10);
    const b = lenet5.build(MNIST_SHAPE, 10, 20);
    await saveArtifact(root, a, metadataFor('job-a'));
    await saveArtifact(root, b, metadataFor('job-b'));
    assert.deepEqual((await readdir(root)).sort(), ['job-a', 'job-b']);
    const loadedA = await loadArtifact(root, 'job-a');
    const loadedB = await loadArtifact(root, 'job-b');
    try {
      assert.equal(loadedA.metadata.jobId, 'job-a');
      assert.equal(loadedB.metadata.jobId, 'job-b');
      assertSameWeights(loadedA.model, a);
      assertSameWeights(loadedB.model, b);
    } finally {
      for (const model of [a, b, loadedA.model, loadedB.model]) model.dispose();
    }
  });

  describe('refuses a damaged artifact with an ArtifactError that names the job', () => {
    /** A fresh saved artifact in its own root; returns the root and the artifact folder. */
    async function saved(jobId: string): Promise<{ root: string; folder: string }> {
      const root = await tempRoot();
      const model = lenet5.build(MNIST_SHAPE, 10, 42);
      await saveArtifact(root, model, metadataFor(jobId));
      model.dispose();
      return { root, folder: path.join(root, jobId) };
    }

    async function assertRefused(root: string, jobId: string, wording: RegExp): Promise<void> {
      let loaded: Awaited<ReturnType<typeof loadArtifact>> | undefined;
      let caught: unknown;
      try {
        loaded = await loadArtifact(root, jobId);
      } catch (error) {
        caught = error;
      }
      loaded?.model.dispose();
      assert.ok(loaded === undefined, `no model is loaded (got one with metadata ${JSON.stringify(loaded?.metadata)})`);
      assert.ok(caught instanceof ArtifactError, `expected an ArtifactError, got ${String(caught)}`);
      assert.equal(caught.name, 'ArtifactError');
      assert.ok(caught.message.includes(jobId), `"${caught.message}" names job ${jobId}`);
      assert.match(caught.message, wording);
    }

    it('a truncated weights.bin', async () => {
      const { root, folder } = await saved('job-truncated');
      const weights = await readFile(path.join(folder, 'weights.bin'));
      await writeFile(path.join(folder, 'weights.bin'), weights.subarray(0, weights.byteLength - 100));
      await assertRefused(root, 'job-truncated', /truncated/);
    });

    it('an empty weights.bin', async () => {
      const { root, folder } = await saved('job-empty-weights');
      await writeFile(path.join(folder, 'weights.bin'), Buffer.alloc(0));
      await assertRefused(root, 'job-empty-weights', /truncated/);
    });

    it('a weights.bin with one byte flipped', async () => {
      const { root, folder } = await saved('job-flipped');
      const weights = await readFile(path.join(folder, 'weights.bin'));
      const index = Math.floor(weights.byteLength / 2);
      weights[index] = (weights[index] as number) ^ 0x01;
      await writeFile(path.join(folder, 'weights.bin'), weights);
      await assertRefused(root, 'job-flipped', /corrupt/);
    });

    it('a missing weights.bin', async () => {
      const { root, folder } = await saved('job-no-weights');
      await rm(path.join(folder, 'weights.bin'));
      await assertRefused(root, 'job-no-weights', /can't be read/);
    });

    it('a missing model.json', async () => {
      const { root, folder } = await saved('job-no-model');
      await rm(path.join(folder, 'model.json'));
      await assertRefused(root, 'job-no-model', /can't be read/);
    });

    it('a model.json that is not JSON', async () => {
      const { root, folder } = await saved('job-not-json');
      const text = await readFile(path.join(folder, 'model.json'), 'utf8');
      // Cut mid-document, as a crash while writing it would leave it.
      await writeFile(path.join(folder, 'model.json'), text.slice(0, Math.floor(text.length / 2)));
      await assertRefused(root, 'job-not-json', /corrupt: model.json is not a model description/);
    });

    /** Rewrites model.json as `change` makes it: valid JSON, but not the model the weights belong to. */
    async function alterModelJson(folder: string, change: (stored: Record<string, unknown>) => unknown): Promise<void> {
      const file = path.join(folder, 'model.json');
      const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify(change(stored)));
    }

    it('a model.json that is valid JSON but not an object (null)', async () => {
      const { root, folder } = await saved('job-null-json');
      await alterModelJson(folder, () => null);
      await assertRefused(root, 'job-null-json', /truncated|not in this service's format|corrupt|can't be read/);
    });

    it('a model.json whose weight specs no longer match weights.bin', async () => {
      const { root, folder } = await saved('job-altered-specs');
      await alterModelJson(folder, (stored) => ({
        ...stored,
        weightSpecs: (stored.weightSpecs as { shape: number[] }[]).map((spec, i) =>
          i === 0 ? { ...spec, shape: [5, 5, 1, 7] } : spec,
        ),
      }));
      await assertRefused(root, 'job-altered-specs', /truncated|not in this service's format|corrupt/);
    });

    it('a model.json without its metadata', async () => {
      const { root, folder } = await saved('job-no-metadata');
      await alterModelJson(folder, (stored) => ({ ...stored, metadata: undefined }));
      await assertRefused(root, 'job-no-metadata', /truncated|not in this service's format|corrupt/);
    });

    it('a job that was never saved', async () => {
      const root = await tempRoot();
      await assertRefused(root, 'job-never-saved', /can't be read/);
    });
  });
});

describe('LeNet-5 parameters and initialisation', () => {
  it('has exactly 44,426 parameters on 28x28x1 and 62,006 on 32x32x3', () => {
    const mnistModel = lenet5.build(MNIST_SHAPE, 10, 0);
    const cifarModel = lenet5.build(CIFAR_SHAPE, 10, 0);
    try {
      assert.equal(mnistModel.countParams(), 44_426);
      assert.equal(cifarModel.countParams(), 62_006);
    } finally {
      mnistModel.dispose();
      cifarModel.dispose();
    }
    assert.equal(parameterCount(lenet5, { name: 'mnist', shape: MNIST_SHAPE, classNames: DIGITS }), 44_426);
    assert.equal(parameterCount(lenet5, { name: 'cifar10', shape: CIFAR_SHAPE, classNames: CIFAR_CLASSES }), 62_006);
  });

  it('gives identical weights for the same seed and different ones for another seed', () => {
    const a = lenet5.build(MNIST_SHAPE, 10, 2024);
    const b = lenet5.build(MNIST_SHAPE, 10, 2024);
    const c = lenet5.build(MNIST_SHAPE, 10, 2025);
    try {
      const weightsA = allWeights(a);
      const weightsC = allWeights(c);
      assert.equal(weightsA.length, 10, 'five layers with a kernel and a bias each');
      assertSameWeights(b, a);
      // Every single tensor differs, not just one of them.
      weightsA.forEach((weight, i) =>
        assert.ok(
          weight.some((value, j) => value !== weightsC[i]?.[j]),
          `weight ${i} differs between seeds`,
        ),
      );
    } finally {
      for (const model of [a, b, c]) model.dispose();
    }
  });

  it('draws every kernel and bias from U(-1/sqrt(fanIn), 1/sqrt(fanIn)) as PyTorch does', () => {
    const model = lenet5.build(MNIST_SHAPE, 10, 31337);
    try {
      // fanIn of conv layers: kh * kw * inChannels; of dense layers: inputs.
      const expectedFanIns = [25, 150, 256, 120, 84];
      const weighted = model.layers.filter((layer) => layer.getWeights().length > 0);
      assert.equal(weighted.length, expectedFanIns.length);
      weighted.forEach((layer, i) => {
        const bound = 1 / Math.sqrt(expectedFanIns[i] as number);
        const [kernel, bias] = layer.getWeights();
        assert.ok(kernel && bias, `${layer.name} has a kernel and a bias`);
        for (const [what, tensor] of [
          ['kernel', kernel],
          ['bias', bias],
        ] as const) {
          const values = tensor.dataSync();
          let max = -Infinity;
          let min = Infinity;
          for (const value of values) {
            max = Math.max(max, value);
            min = Math.min(min, value);
          }
          assert.ok(max <= bound && min >= -bound, `${layer.name} ${what} in [${min}, ${max}] exceeds ±${bound}`);
          // Spread over the whole range, not a narrower default (Glorot for a 256→120 layer is ±0.118,
          // PyTorch's bound is 0.0625; zeros for biases would fail too).
          if (values.length >= 100) {
            assert.ok(
              max > 0.8 * bound && min < -0.8 * bound,
              `${layer.name} ${what} spans [${min}, ${max}] of ±${bound}`,
            );
          } else {
            assert.ok(
              values.some((value) => value !== 0),
              `${layer.name} ${what} is not all zeros`,
            );
          }
        }
      });
    } finally {
      model.dispose();
    }
  });
});
