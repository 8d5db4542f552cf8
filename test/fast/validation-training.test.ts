/**
 * Validation-driven training (src/training/validation.ts, schedule.ts, early-stopping.ts): the
 * held-out split, the learning rate of each epoch as PyTorch's schedulers give it, early stopping
 * with the best epoch's weights kept, and all of it going on exactly from a checkpoint.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import type { EpochSummary } from '../../src/contract/job.ts';
import type { JobSettings } from '../../src/contract/job-request.ts';
import { storedJobSettings } from '../support/job-settings.ts';
import { trainingImages } from '../../src/contract/progress.ts';
import type { Dataset } from '../../src/datasets/dataset.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { firstImages } from '../../src/training/batches.ts';
import { CheckpointStore, type TrainingCheckpoint } from '../../src/training/checkpoint.ts';
import { learningRateOf } from '../../src/training/schedule.ts';
import { train, type TrainingListener, type TrainingOptions, type TrainingStop } from '../../src/training/trainer.ts';
import { splitForValidation } from '../../src/training/validation.ts';

const settings: JobSettings = {
  ...storedJobSettings,
  epochs: 4,
  batchSize: 32,
  learningRate: 0.05,
  seed: 21,
  trainLimit: 480,
  testLimit: 200,
  logEvery: 5,
  validationSplit: 0.25,
};

let dataset: Dataset;
let folder: string;
before(async () => {
  await startBackend('wasm', pino({ level: 'silent' }));
  dataset = await mnist.load({ dataDir: '/nonexistent-data-dir' });
  folder = await mkdtemp(path.join(tmpdir(), 'validation-training-'));
});
after(async () => rm(folder, { recursive: true, force: true }));

async function run(
  overrides: Partial<JobSettings>,
  listener: Partial<TrainingListener> = {},
  options: TrainingOptions = {},
): Promise<{ epochs: EpochSummary[]; outcome: TrainingStop }> {
  const job = { ...settings, ...overrides };
  const model = lenet5.build(dataset.shape, 10, job.seed);
  const epochs: EpochSummary[] = [];
  try {
    const outcome = await train(
      model,
      dataset,
      job,
      {
        onLog: async () => undefined,
        onProgress: async () => undefined,
        onEpoch: async (summary) => void epochs.push(summary),
        nextStep: async () => 'continue',
        onCheckpoint: async () => undefined,
        ...listener,
      },
      options,
    );
    return { epochs, outcome };
  } finally {
    model.dispose();
  }
}

describe('the learning rate of each epoch', () => {
  it("steps as PyTorch's StepLR: learningRate × factor^⌊(epoch−1)/stepEpochs⌋", () => {
    const job = {
      learningRate: 0.1,
      epochs: 7,
      learningRateSchedule: { type: 'step' as const, stepEpochs: 3, factor: 0.5 },
    };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((epoch) => learningRateOf(job, epoch)),
      [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025],
    );
  });

  it('warms up linearly, then follows the cosine to minLearningRate in the last epoch', () => {
    const job = {
      learningRate: 0.1,
      epochs: 6,
      learningRateSchedule: { type: 'cosine' as const, warmupEpochs: 1, minLearningRate: 0.01 },
    };
    const rates = [1, 2, 3, 4, 5, 6].map((epoch) => learningRateOf(job, epoch));
    const cosine = (k: number) => 0.01 + (0.09 * (1 + Math.cos((Math.PI * k) / 4))) / 2;
    const expected = [0.05, cosine(0), cosine(1), cosine(2), cosine(3), cosine(4)];
    rates.forEach((rate, i) =>
      assert.ok(Math.abs(rate - (expected[i] as number)) < 1e-12, `epoch ${i + 1}: ${rate}, expected ${expected[i]}`),
    );
    assert.equal(
      learningRateOf({ ...job, learningRateSchedule: null }, 3),
      0.1,
      'no schedule: the learning rate throughout',
    );
  });
});

describe('the validation split', () => {
  it('holds out the fraction of the training images, stratified by class, the same for the same seed', () => {
    const train = firstImages(dataset.train, dataset.shape, 1000);
    const { train: kept, validation } = splitForValidation(train, dataset, settings);
    assert.ok(validation);
    assert.equal(validation.count, 250);
    assert.equal(kept.count, trainingImages({ trainLimit: 1000, validationSplit: 0.25 }));
    const counts = (labels: Uint8Array) =>
      Array.from({ length: 10 }, (_, label) => labels.filter((value) => value === label).length);
    const all = counts(train.labels);
    counts(validation.labels).forEach((count, label) =>
      assert.ok(Math.abs(count - (all[label] as number) / 4) < 1, `class ${label}: ${count} of ${all[label]}`),
    );
    assert.deepEqual(splitForValidation(train, dataset, settings).validation?.labels, validation.labels);
    assert.notDeepEqual(
      splitForValidation(train, dataset, { ...settings, seed: 22 }).validation?.images,
      validation.images,
    );
    // Every image once: in one split or the other.
    const key = (images: Uint8Array, i: number) =>
      Buffer.from(images.subarray(i * 784, (i + 1) * 784)).toString('base64');
    const union = new Set([
      ...Array.from({ length: kept.count }, (_, i) => key(kept.images, i)),
      ...Array.from({ length: validation.count }, (_, i) => key(validation.images, i)),
    ]);
    const original = new Set(Array.from({ length: train.count }, (_, i) => key(train.images, i)));
    assert.deepEqual(union, original);
  });
});

describe('validation-driven training', () => {
  it('reports the validation loss and accuracy and the learning rate of every epoch', async () => {
    const { epochs } = await run({ epochs: 2, learningRateSchedule: { type: 'step', stepEpochs: 1, factor: 0.5 } });
    assert.deepEqual(
      epochs.map((epoch) => epoch.learningRate),
      [0.05, 0.025],
    );
    for (const epoch of epochs) {
      assert.ok(epoch.validationLoss !== undefined && epoch.validationLoss > 0);
      assert.ok(epoch.validationAccuracy !== undefined && epoch.validationAccuracy > 0.1);
    }
    const plain = await run({ epochs: 2 });
    assert.notEqual(plain.epochs[1]?.loss, epochs[1]?.loss, 'the schedule changed the second epoch');
  });

  it('stops when the metric stops improving and ends with the best epoch’s weights', async () => {
    // No second epoch can beat the first by 10 in loss: it stops after patience (1) more epoch.
    const { epochs, outcome } = await run({
      earlyStopping: { metric: 'validationLoss', patience: 1, minDelta: 10, restoreBest: true },
    });
    assert.equal(epochs.length, 2, 'trained 2 of 4 epochs');
    assert.equal(outcome.reason, 'earlyStopped');
    if (outcome.reason !== 'earlyStopped') return;
    assert.equal(outcome.afterEpoch, 2);
    const { result } = outcome;
    assert.deepEqual(
      { ...result.earlyStopping, bestValue: undefined },
      { metric: 'validationLoss', bestEpoch: 1, bestValue: undefined, stoppedAfterEpoch: 2, keptEpoch: 1 },
    );
    assert.equal(result.earlyStopping?.bestValue, epochs[0]?.validationLoss);
    assert.equal(result.evaluation.accuracy, epochs[0]?.testAccuracy, "the result is epoch 1's weights'");
    const kept = await run({
      earlyStopping: { metric: 'validationLoss', patience: 1, minDelta: 10, restoreBest: false },
    });
    assert.ok(kept.outcome.reason === 'earlyStopped');
    assert.equal(kept.outcome.result.earlyStopping?.keptEpoch, 2);
    assert.equal(
      kept.outcome.result.evaluation.accuracy,
      kept.epochs[1]?.testAccuracy,
      'without restoreBest: the last epoch’s weights',
    );
  });

  it('paused mid-epoch and resumed from its stored checkpoint, stops at the same epoch with the same kept weights and result', async () => {
    const job: Partial<JobSettings> = {
      earlyStopping: { metric: 'validationAccuracy', patience: 1, minDelta: 1, restoreBest: true },
      learningRateSchedule: { type: 'cosine', warmupEpochs: 1, minLearningRate: 0 },
    };
    const whole = await run(job);
    const store = new CheckpointStore(folder);
    let batches = 0;
    // Epoch 2 of 12 batches (360 training images of 32): pause after its 5th.
    const first = await run(job, {
      nextStep: async () => (++batches === 17 ? 'pause' : 'continue'),
      onCheckpoint: async (checkpoint) => store.save('job', checkpoint),
    });
    assert.equal(first.outcome.reason, 'paused');
    const checkpoint = (await store.load('job')) as TrainingCheckpoint;
    assert.equal(
      checkpoint.bestWeights?.length,
      checkpoint.tensors.length - lenet5.build(dataset.shape, 10, 1).trainableWeights.length,
      'the best epoch’s weights travel in the checkpoint',
    );
    const second = await run(job, {}, { resumeFrom: checkpoint });
    tf.dispose([...checkpoint.tensors, ...(checkpoint.bestWeights ?? [])]);
    assert.deepEqual(
      [...first.epochs, ...second.epochs],
      whole.epochs.map((epoch, i) => ({
        ...epoch,
        seconds: [...first.epochs, ...second.epochs][i]?.seconds,
        imagesPerSecond: [...first.epochs, ...second.epochs][i]?.imagesPerSecond,
      })),
    );
    assert.ok(whole.outcome.reason === 'earlyStopped' && second.outcome.reason === 'earlyStopped');
    assert.equal(second.outcome.afterEpoch, whole.outcome.afterEpoch);
    assert.deepEqual(second.outcome.result.earlyStopping, whole.outcome.result.earlyStopping);
    assert.deepEqual(second.outcome.result.evaluation, whole.outcome.result.evaluation);
  });
});
