/**
 * ResNet-20's BatchNorm: batch statistics and moving averages in the training step, the moving
 * averages in inference; the moving averages travel with checkpoints and with the replicas, whose
 * main thread's (replica 0's) are the ones evaluated, checkpointed and saved.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import type { ConcreteBackend } from '../../src/backends/select.ts';
import { startBackend } from '../../src/backends/select.ts';
import type { LossLogLine } from '../../src/contract/job.ts';
import type { JobSettings } from '../../src/contract/job-request.ts';
import type { Dataset } from '../../src/datasets/dataset.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { resnet20 } from '../../src/models/resnet20.ts';
import type { TrainingCheckpoint } from '../../src/training/checkpoint.ts';
import { train, type TrainingListener, type TrainingStop } from '../../src/training/trainer.ts';
import { TrainingStep } from '../../src/training/training-step.ts';
import { storedJobSettings } from '../support/job-settings.ts';

const job: JobSettings = {
  ...storedJobSettings,
  model: 'resnet20',
  epochs: 1,
  batchSize: 16,
  learningRate: 0.05,
  weightDecay: 1e-4,
  seed: 5,
  trainLimit: 64,
  testLimit: 32,
  logEvery: 1,
};

/** BatchNorm's moving means and variances, copied, in layer order. */
function movingStatistics(model: tfl.LayersModel): Float32Array[] {
  return model.weights
    .filter((weight) => weight.name.includes('moving_'))
    .map((weight) => weight.read().dataSync() as Float32Array)
    .map((values) => values.slice());
}

interface Run {
  readonly logs: LossLogLine[];
  readonly outcome: TrainingStop;
  readonly statistics: Float32Array[];
}

async function trainResNet(
  dataset: Dataset,
  replicas: number,
  listener: Partial<TrainingListener> = {},
  resumeFrom?: TrainingCheckpoint,
): Promise<Run> {
  const model = resnet20.build(dataset.shape, dataset.classNames.length, job.seed);
  const logs: LossLogLine[] = [];
  try {
    const outcome = await train(
      model,
      dataset,
      job,
      {
        onLog: async (line) => void logs.push(line),
        onProgress: async () => undefined,
        onEpoch: async () => undefined,
        nextStep: async () => 'continue',
        onCheckpoint: async () => undefined,
        ...listener,
      },
      { resumeFrom, parallel: { replicas, backend: tf.getBackend() as ConcreteBackend, fault: null } },
    );
    return { logs, outcome, statistics: movingStatistics(model) };
  } finally {
    model.dispose();
  }
}

/** Trains, pausing after `pauseAfter` batches, then resumes from that checkpoint in a fresh model. */
async function pausedAndResumed(dataset: Dataset, replicas: number, pauseAfter: number) {
  let batches = 0;
  let saved: TrainingCheckpoint | null = null;
  const first = await trainResNet(dataset, replicas, {
    nextStep: async () => (++batches === pauseAfter ? 'pause' : 'continue'),
    onCheckpoint: async (checkpoint) => {
      if (saved) tf.dispose([...saved.tensors]);
      saved = { position: checkpoint.position, tensors: checkpoint.tensors.map((tensor) => tensor.clone()) };
    },
  });
  assert.deepEqual(first.outcome, { reason: 'paused' });
  const checkpoint = saved as TrainingCheckpoint | null;
  assert.ok(checkpoint, 'it checkpointed before pausing');
  try {
    const second = await trainResNet(dataset, replicas, {}, checkpoint);
    return { logs: [...first.logs, ...second.logs], second };
  } finally {
    tf.dispose([...checkpoint.tensors]);
  }
}

function accuracy(run: Run): number {
  assert.equal(run.outcome.reason, 'completed');
  return run.outcome.reason === 'completed' ? run.outcome.result.evaluation.accuracy : Number.NaN;
}

describe('ResNet-20', () => {
  let digits: Dataset;
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
    digits = await mnist.load({ dataDir: '/nonexistent-data-dir' });
  });

  it('gives one logit per class for 28x28x1 and 32x32x3 images, and for odd sizes', () => {
    for (const [height, width, channels] of [
      [28, 28, 1],
      [32, 32, 3],
      [17, 23, 3],
    ] as const) {
      const model = resnet20.build({ height, width, channels }, 7, 1);
      const logits = tf.tidy(() => model.predict(tf.ones([3, height, width, channels])) as tf.Tensor);
      assert.deepEqual(logits.shape, [3, 7], `${height}x${width}x${channels}`);
      tf.dispose(logits);
      model.dispose();
    }
  });

  it('is the same network for the same seed, and another for another seed', () => {
    const weights = (seed: number) => {
      const model = resnet20.build({ height: 28, width: 28, channels: 1 }, 10, seed);
      const values = model.getWeights().map((weight) => [...weight.dataSync()]);
      model.dispose();
      return values;
    };
    assert.deepEqual(weights(3), weights(3));
    assert.notDeepEqual(weights(3), weights(4));
  });

  it('normalises with batch statistics and updates the moving ones in training, with the moving ones otherwise', () => {
    const model = resnet20.build(digits.shape, 10, 2);
    const step = new TrainingStep(model, digits.shape, 10, job);
    const images = digits.train.images.subarray(0, 8 * 28 * 28);
    const labels = Int32Array.from(digits.train.labels.subarray(0, 8));
    const input = step.images(images, 8);
    try {
      const before = movingStatistics(model);
      const inference = tf.tidy(() => [...(model.predict(input) as tf.Tensor).dataSync()]);
      // In inference one image's logits don't depend on the rest of its batch.
      const alone = tf.tidy(() => [...(model.predict(tf.slice(input, 0, 1)) as tf.Tensor).dataSync()]);
      inference.slice(0, 10).forEach((logit, i) => assert.ok(Math.abs(logit - (alone[i] as number)) < 1e-4));
      assert.deepEqual(movingStatistics(model), before, 'inference leaves the moving statistics alone');
      const training = tf.tidy(() => [...(model.apply(input, { training: true }) as tf.Tensor).dataSync()]);
      assert.ok(
        training.some((logit, i) => Math.abs(logit - (inference[i] as number)) > 1e-3),
        'training mode normalises otherwise',
      );
      const afterForward = movingStatistics(model);
      assert.notDeepEqual(afterForward, before, 'a training-mode forward pass updates the moving statistics');
      tf.dispose(step.run(images, labels));
      assert.notDeepEqual(movingStatistics(model), afterForward, 'so does the training step');
    } finally {
      input.dispose();
      step.dispose();
      model.dispose();
    }
  });

  it('paused mid-epoch and resumed from its checkpoint, logs, ends and keeps its moving statistics exactly like an uninterrupted run', async () => {
    const whole = await trainResNet(digits, 1);
    const { logs, second } = await pausedAndResumed(digits, 1, 3);
    assert.deepEqual(logs, whole.logs);
    assert.deepEqual(second.statistics, whole.statistics);
    assert.equal(accuracy(second), accuracy(whole));
  });

  describe('on 2 replicas', () => {
    it('each normalises its own slice: the losses stay near one replica’s, not equal, and repeat exactly', async () => {
      const one = await trainResNet(digits, 1);
      const two = await trainResNet(digits, 2);
      assert.deepEqual(
        two.logs.map((line) => `${line.epoch}/${line.batch}`),
        one.logs.map((line) => `${line.epoch}/${line.batch}`),
      );
      const [first] = two.logs;
      const [reference] = one.logs;
      assert.ok(first && reference);
      assert.notEqual(first.loss, reference.loss, 'slices of 8 are normalised with their own statistics');
      assert.ok(
        Math.abs(first.loss - reference.loss) < 0.1 * reference.loss,
        `first loss ${first.loss}, one replica's ${reference.loss}`,
      );
      accuracy(two);
      assert.deepEqual((await trainResNet(digits, 2)).logs, two.logs);
    });

    it('resumed from a checkpoint, train and end like the uninterrupted run: the moving statistics are replica 0’s', async () => {
      const whole = await trainResNet(digits, 2);
      const { logs, second } = await pausedAndResumed(digits, 2, 3);
      assert.deepEqual(
        logs.map((line) => line.loss),
        whole.logs.map((line) => line.loss),
      );
      assert.deepEqual(second.statistics, whole.statistics);
      assert.equal(accuracy(second), accuracy(whole));
    });
  });
});
