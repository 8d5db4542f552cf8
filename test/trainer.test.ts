import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import type { LossLogLine } from '../src/contract/job.ts';
import type { JobSettings } from '../src/contract/job-request.ts';
import type { Dataset } from '../src/datasets/dataset.ts';
import { mnist } from '../src/datasets/mnist.ts';
import { lenet5 } from '../src/models/lenet5.ts';
import { SeededRandom } from '../src/random.ts';
import { startBackend } from '../src/runtime/backend.ts';
import { augmentBatch, cropPadding } from '../src/worker/augment.ts';
import { train, type TrainingListener } from '../src/worker/trainer.ts';

const settings: JobSettings = {
  model: 'lenet5',
  dataset: 'mnist',
  epochs: 1,
  batchSize: 32,
  learningRate: 0.01,
  momentum: 0.9,
  weightDecay: 0,
  augment: false,
  seed: 11,
  trainLimit: 640,
  testLimit: 200,
  logEvery: 5,
};

function recorder(overrides: Partial<TrainingListener> = {}) {
  const logs: LossLogLine[] = [];
  const tensorsAfterEpoch: number[] = [];
  const listener: TrainingListener = {
    onLog: async (line) => void logs.push(line),
    onProgress: async () => undefined,
    onEpoch: async () => void tensorsAfterEpoch.push(tf.memory().numTensors),
    shouldStop: async () => false,
    ...overrides,
  };
  return { logs, tensorsAfterEpoch, listener };
}

async function run(dataset: Dataset, overrides: Partial<JobSettings>, listenerOverrides: Partial<TrainingListener> = {}) {
  const job = { ...settings, ...overrides };
  const model = lenet5.build(dataset.shape, 10, job.seed);
  const record = recorder(listenerOverrides);
  try {
    const outcome = await train(model, dataset, job, record.listener);
    return { ...record, outcome };
  } finally {
    model.dispose();
  }
}

describe('the training loop', () => {
  let dataset: Dataset;
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
    dataset = await mnist.load({ dataDir: '/nonexistent-data-dir' });
  });

  it('repeats exactly for the same seed, augmentation included, and differs for another', async () => {
    const first = await run(dataset, { augment: true });
    const again = await run(dataset, { augment: true });
    const other = await run(dataset, { augment: true, seed: 12 });
    assert.equal(first.logs.length, 4);
    assert.deepEqual(again.logs, first.logs);
    assert.notDeepEqual(other.logs, first.logs);
  });

  it('keeps the number of live tensors flat from epoch to epoch', async () => {
    const { tensorsAfterEpoch, outcome } = await run(dataset, { epochs: 4, augment: true, weightDecay: 1e-4 });
    assert.equal(outcome.kind, 'completed');
    assert.equal(tensorsAfterEpoch.length, 4);
    assert.ok(tensorsAfterEpoch.every((count) => count === tensorsAfterEpoch[0]), `live tensors per epoch: ${tensorsAfterEpoch.join(', ')}`);
  });

  it('stops after the batch during which it was told to stop', async () => {
    let batchesAsked = 0;
    const { logs, outcome } = await run(dataset, { logEvery: 1, epochs: 3 }, { shouldStop: async () => ++batchesAsked >= 3 });
    assert.equal(outcome.kind, 'stopped');
    assert.equal(batchesAsked, 3);
    assert.deepEqual(logs.map((line) => line.batch), [1, 2, 3]);
  });

  it('applies weight decay as PyTorch does: it changes training from the same start', async () => {
    const plain = await run(dataset, {});
    const decayed = await run(dataset, { weightDecay: 0.05 });
    assert.notDeepEqual(decayed.logs, plain.logs);
  });
});

describe('augmentation', () => {
  const shape = { height: 6, width: 5, channels: 2 };
  const source = Uint8Array.from({ length: 6 * 5 * 2 }, (_, i) => i + 1);
  const pixel = (image: Uint8Array, y: number, x: number) => [...image.subarray((y * 5 + x) * 2, (y * 5 + x) * 2 + 2)];

  /** Which crop offset and mirroring turn `source` into `output`, or null when none does. */
  function explain(output: Uint8Array): { dy: number; dx: number; mirrored: boolean } | null {
    for (const mirrored of [false, true]) {
      for (let dy = -cropPadding; dy <= cropPadding; dy++) {
        for (let dx = -cropPadding; dx <= cropPadding; dx++) {
          let matches = true;
          for (let y = 0; y < 6 && matches; y++) {
            for (let x = 0; x < 5 && matches; x++) {
              const sy = y + dy;
              const sx = (mirrored ? 4 - x : x) + dx;
              const expected = sy >= 0 && sy < 6 && sx >= 0 && sx < 5 ? pixel(source, sy, sx) : [0, 0];
              matches = pixel(output, y, x).join() === expected.join();
            }
          }
          if (matches) return { dy, dx, mirrored };
        }
      }
    }
    return null;
  }

  it('is a shift within 4 black pixels of padding, mirrored half the time, and covers every case', () => {
    const random = new SeededRandom(3);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const output = augmentBatch(source, 1, shape, random);
      const how = explain(output);
      assert.ok(how, `output ${i} is no padded crop or mirror of the input`);
      seen.add(`${how.dy},${how.dx},${how.mirrored}`);
    }
    // 81 offsets × mirrored or not; a few shifts of this tiny image coincide, so most suffice.
    assert.ok(seen.size > 150, `only ${seen.size} distinct augmentations`);
    assert.ok([...seen].some((key) => key.endsWith('true')) && [...seen].some((key) => key.endsWith('false')));
  });

  it('treats each image of a batch on its own and leaves its input untouched', () => {
    const batch = new Uint8Array([...source, ...source.map((value) => value + 100)]);
    const copy = batch.slice();
    const output = augmentBatch(batch, 2, shape, new SeededRandom(5));
    assert.deepEqual(batch, copy);
    assert.ok(explain(output.subarray(0, 60)));
    assert.ok([...output.subarray(60)].every((value) => value === 0 || value > 100));
  });
});
