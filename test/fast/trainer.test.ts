import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import type { LossLogLine } from '../../src/contract/job.ts';
import type { JobSettings } from '../../src/contract/job-request.ts';
import { storedJobSettings } from '../support/job-settings.ts';
import type { Dataset } from '../../src/datasets/dataset.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { SeededRandom } from '../../src/random.ts';
import { startBackend } from '../../src/backends/select.ts';
import { augmentBatch, cropPadding } from '../../src/training/augment.ts';
import type { TrainingCheckpoint } from '../../src/training/checkpoint.ts';
import { train, type TrainingListener, type TrainingOptions } from '../../src/training/trainer.ts';

const settings: JobSettings = { ...storedJobSettings, batchSize: 32, seed: 11, testLimit: 200, logEvery: 5 };

function recorder(overrides: Partial<TrainingListener> = {}) {
  const logs: LossLogLine[] = [];
  const tensorsAfterEpoch: number[] = [];
  const listener: TrainingListener = {
    onLog: async (line) => void logs.push(line),
    onProgress: async () => undefined,
    onEpoch: async () => void tensorsAfterEpoch.push(tf.memory().numTensors),
    nextStep: async () => 'continue',
    onCheckpoint: async () => undefined,
    ...overrides,
  };
  return { logs, tensorsAfterEpoch, listener };
}

async function run(
  dataset: Dataset,
  overrides: Partial<JobSettings>,
  listenerOverrides: Partial<TrainingListener> = {},
  options: TrainingOptions = {},
) {
  const job = { ...settings, ...overrides };
  const model = lenet5.build(dataset.shape, 10, job.seed);
  const record = recorder(listenerOverrides);
  try {
    const outcome = await train(model, dataset, job, record.listener, options);
    return { ...record, outcome };
  } finally {
    model.dispose();
  }
}

/** The trainer's checkpoint tensors are its live ones: a test keeps copies. */
const copy = (checkpoint: TrainingCheckpoint): TrainingCheckpoint => ({
  position: checkpoint.position,
  tensors: checkpoint.tensors.map((tensor) => tensor.clone()),
});

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
    assert.equal(outcome.reason, 'completed');
    assert.equal(tensorsAfterEpoch.length, 4);
    assert.ok(
      tensorsAfterEpoch.every((count) => count === tensorsAfterEpoch[0]),
      `live tensors per epoch: ${tensorsAfterEpoch.join(', ')}`,
    );
  });

  for (const reason of ['cancelled', 'superseded'] as const) {
    it(`stops after the batch during which it was told to stop, saying why (${reason})`, async () => {
      let batchesAsked = 0;
      const { logs, outcome } = await run(
        dataset,
        { logEvery: 1, epochs: 3 },
        { nextStep: async () => (++batchesAsked >= 3 ? reason : 'continue') },
      );
      assert.deepEqual(outcome, { reason });
      assert.equal(batchesAsked, 3);
      assert.deepEqual(
        logs.map((line) => line.batch),
        [1, 2, 3],
      );
    });
  }

  it('ends after the epoch its listener ends it at, with that epoch’s weights (successive halving)', async () => {
    const asked: number[] = [];
    const { outcome, tensorsAfterEpoch } = await run(
      dataset,
      { epochs: 3 },
      { endAfterEpoch: async (summary) => asked.push(summary.epoch) === 2 },
    );
    assert.deepEqual(asked, [1, 2], 'asked after each epoch until it ended');
    assert.equal(tensorsAfterEpoch.length, 2);
    assert.ok(outcome.reason === 'terminated', `stopped: ${outcome.reason}`);
    assert.equal(outcome.afterEpoch, 2);
    assert.equal(outcome.result.earlyStopping, null);
  });

  describe('checkpoints', () => {
    // 20 batches an epoch, a log line every 3: windows cross the checkpoints below.
    const job: Partial<JobSettings> = { epochs: 3, augment: true, logEvery: 3 };

    /** Trains, pausing after `pauseAfter` batches in all, then resumes from that checkpoint in a fresh model. */
    async function interrupted(pauseAfter: number, interruptedJob: Partial<JobSettings> = job) {
      let batches = 0;
      let saved: TrainingCheckpoint | null = null;
      const first = await run(dataset, interruptedJob, {
        nextStep: async () => (++batches === pauseAfter ? 'pause' : 'continue'),
        onCheckpoint: async (checkpoint) => {
          if (saved) tf.dispose([...saved.tensors]);
          saved = copy(checkpoint);
        },
      });
      assert.deepEqual(first.outcome, { reason: 'paused' });
      const checkpoint = saved as TrainingCheckpoint | null;
      assert.ok(checkpoint, 'it checkpointed before pausing');
      try {
        const second = await run(dataset, interruptedJob, {}, { resumeFrom: checkpoint });
        return { first, second, position: checkpoint.position, tensors: checkpoint.tensors.length };
      } finally {
        tf.dispose([...checkpoint.tensors]);
      }
    }

    it('a run paused mid-epoch and resumed from its checkpoint logs and ends exactly like an uninterrupted one', async () => {
      const whole = await run(dataset, job);
      const { first, second, position } = await interrupted(27);
      assert.deepEqual(
        { epochsDone: position.epochsDone, batchesDone: position.batchesDone },
        { epochsDone: 1, batchesDone: 7 },
      );
      assert.equal(position.logLines, first.logs.length);
      assert.deepEqual([...first.logs, ...second.logs], whole.logs, 'the same loss log, no line twice');
      assert.equal(second.outcome.reason, 'completed');
      assert.equal(whole.outcome.reason, 'completed');
      if (second.outcome.reason === 'completed' && whole.outcome.reason === 'completed') {
        assert.deepEqual(second.outcome.result.evaluation, whole.outcome.result.evaluation);
      }
      assert.equal(second.tensorsAfterEpoch.length, 2, 'the resumed run trains epochs 2 and 3 only');
    });

    for (const optimizer of ['adam', 'adamw'] as const) {
      it(`an ${optimizer} run (its moments and step count in the checkpoint) paused mid-epoch and resumed ends exactly like an uninterrupted one`, async () => {
        const adamJob: Partial<JobSettings> = {
          ...job,
          epochs: 2,
          optimizer,
          learningRate: 1e-3,
          weightDecay: 0.01,
          learningRateSchedule: { type: 'cosine', warmupEpochs: 1, minLearningRate: 0 },
        };
        const whole = await run(dataset, adamJob);
        const { first, second, position, tensors } = await interrupted(13, adamJob);
        assert.equal(position.optimizerIterations, 13);
        assert.equal(tensors, 3 * 10, 'the weights, then a first and a second moment per variable');
        assert.deepEqual([...first.logs, ...second.logs], whole.logs, 'the same loss log, no line twice');
        assert.ok(second.outcome.reason === 'completed' && whole.outcome.reason === 'completed');
        assert.deepEqual(second.outcome.result.evaluation, whole.outcome.result.evaluation);
      });
    }

    it('resumes from the checkpoint at an epoch end (epoch 2 of 3) to the same result', async () => {
      const whole = await run(dataset, job);
      const checkpoints: TrainingCheckpoint[] = [];
      const first = await run(dataset, job, {
        onCheckpoint: async (checkpoint) => void checkpoints.push(copy(checkpoint)),
      });
      assert.deepEqual(
        checkpoints.map(({ position }) => [position.epochsDone, position.batchesDone]),
        [
          [1, 0],
          [2, 0],
        ],
        'one checkpoint after every epoch but the last',
      );
      const afterEpoch2 = checkpoints[1] as TrainingCheckpoint;
      const second = await run(dataset, job, {}, { resumeFrom: afterEpoch2 });
      tf.dispose(checkpoints.flatMap(({ tensors }) => [...tensors]));
      assert.deepEqual([...first.logs.slice(0, afterEpoch2.position.logLines), ...second.logs], whole.logs);
      assert.ok(second.outcome.reason === 'completed' && whole.outcome.reason === 'completed');
      assert.deepEqual(second.outcome.result.evaluation, whole.outcome.result.evaluation);
    });

    it('also checkpoints within an epoch when checkpointSeconds have passed', async () => {
      const positions: [number, number][] = [];
      await run(
        dataset,
        { epochs: 2 },
        { onCheckpoint: async ({ position }) => void positions.push([position.epochsDone, position.batchesDone]) },
        { checkpointSeconds: 1e-9 },
      );
      // Every batch but an epoch's last (the epoch's own checkpoint follows its evaluation).
      const expected = [
        ...Array.from({ length: 19 }, (_, i): [number, number] => [0, i + 1]),
        [1, 0],
        ...Array.from({ length: 19 }, (_, i): [number, number] => [1, i + 1]),
      ];
      assert.deepEqual(positions, expected);
    });

    it('refuses a checkpoint of another network', async () => {
      let saved: TrainingCheckpoint | null = null;
      await run(dataset, { epochs: 2 }, { onCheckpoint: async (checkpoint) => void (saved = copy(checkpoint)) });
      const checkpoint = saved as TrainingCheckpoint | null;
      assert.ok(checkpoint);
      const wrong: TrainingCheckpoint = { position: checkpoint.position, tensors: checkpoint.tensors.slice(1) };
      await assert.rejects(run(dataset, {}, {}, { resumeFrom: wrong }), /checkpoint doesn't fit this model/);
      tf.dispose([...checkpoint.tensors]);
    });
  });

  it('stops a run that passes its time limit, saying where, counting the time of the runs it resumes', async () => {
    const { outcome, logs } = await run(dataset, { timeoutSeconds: 1e-6, logEvery: 1 });
    assert.ok(outcome.reason === 'timeLimit', `stopped: ${outcome.reason}`);
    assert.match(outcome.message, /ran past its time limit of 0.000001 s \(timeoutSeconds\) in epoch 1, batch 1$/);
    assert.equal(logs.length, 1, 'it stopped after the first batch');
    let saved: TrainingCheckpoint | null = null;
    await run(dataset, { epochs: 2 }, { onCheckpoint: async (checkpoint) => void (saved = copy(checkpoint)) });
    const checkpoint = saved as TrainingCheckpoint | null;
    assert.ok(checkpoint);
    // An hour allowed, an hour and a second spent by the runs before.
    const spent: TrainingCheckpoint = {
      position: { ...checkpoint.position, activeSeconds: 3601 },
      tensors: checkpoint.tensors,
    };
    const resumed = await run(dataset, { epochs: 2, timeoutSeconds: 3600 }, {}, { resumeFrom: spent });
    assert.ok(resumed.outcome.reason === 'timeLimit');
    assert.match(resumed.outcome.message, /time limit of 3600 s \(timeoutSeconds\) in epoch 2, batch 1$/);
    tf.dispose([...checkpoint.tensors]);
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

  it('is a shift within 4 black pixels of padding, mirrored half the time, and covers every case (natural images)', () => {
    const random = new SeededRandom(3);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const output = augmentBatch(source, 1, shape, 'natural', random);
      const how = explain(output);
      assert.ok(how, `output ${i} is no padded crop or mirror of the input`);
      seen.add(`${how.dy},${how.dx},${how.mirrored}`);
    }
    // 81 offsets × mirrored or not; a few shifts of this tiny image coincide, so most suffice.
    assert.ok(seen.size > 150, `only ${seen.size} distinct augmentations`);
    assert.ok([...seen].some((key) => key.endsWith('true')) && [...seen].some((key) => key.endsWith('false')));
  });

  it('only shifts strokes (digits, letters), never mirrors them, and covers every shift', () => {
    const random = new SeededRandom(3);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const output = augmentBatch(source, 1, shape, 'strokes', random);
      const how = explain(output);
      assert.ok(how, `output ${i} is no padded crop of the input`);
      // explain tries the unmirrored crops first: an output that only a mirror explains is one.
      assert.equal(how.mirrored, false, `output ${i} is mirrored`);
      seen.add(`${how.dy},${how.dx}`);
    }
    // The 81 offsets but the few shifts of this tiny image that coincide (all black).
    assert.ok(seen.size > 75, `only ${seen.size} distinct shifts`);
  });

  it('treats each image of a batch on its own and leaves its input untouched', () => {
    const batch = new Uint8Array([...source, ...source.map((value) => value + 100)]);
    const copy = batch.slice();
    const output = augmentBatch(batch, 2, shape, 'natural', new SeededRandom(5));
    assert.deepEqual(batch, copy);
    assert.ok(explain(output.subarray(0, 60)));
    assert.ok([...output.subarray(60)].every((value) => value === 0 || value > 100));
  });
});
