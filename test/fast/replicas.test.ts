/**
 * Data-parallel training (src/training/replicas/): a seeded job trains to the same losses and
 * accuracy on one replica as on several, goes on from a checkpoint exactly, stops when told, and
 * fails with a readable message when a replica throws or its thread ends.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend, type ConcreteBackend } from '../../src/backends/select.ts';
import type { LossLogLine } from '../../src/contract/job.ts';
import type { JobSettings } from '../../src/contract/job-request.ts';
import { storedJobSettings } from '../support/job-settings.ts';
import { cifar10 } from '../../src/datasets/cifar10.ts';
import type { Dataset } from '../../src/datasets/dataset.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initialiseFrom, setTrainableLayers } from '../../src/models/fine-tune.ts';
import { models } from '../../src/models/index.ts';
import type { TrainingCheckpoint } from '../../src/training/checkpoint.ts';
import { replicasOn, type ReplicaFault } from '../../src/training/replicas/replica-group.ts';
import { sliceOf } from '../../src/training/replicas/replica.ts';
import { train, type TrainingListener, type TrainingStop } from '../../src/training/trainer.ts';
import { cifarPathForTests } from '../support/cifar10-source.ts';

const lenetJob: JobSettings = {
  ...storedJobSettings,
  epochs: 2,
  batchSize: 32,
  weightDecay: 1e-4,
  augment: true,
  seed: 21,
  trainLimit: 650 /* 20 full batches and one of 10 an epoch */,
  testLimit: 300,
  logEvery: 4,
};

/** What the issue asks: losses equal within 1e-4 relative, whatever the number of replicas. */
const lossTolerance = 1e-4;

interface Run {
  readonly logs: LossLogLine[];
  readonly epochLosses: number[];
  readonly outcome: TrainingStop;
}

async function trainWith(
  dataset: Dataset,
  job: JobSettings,
  replicas: number,
  options: {
    listener?: Partial<TrainingListener>;
    resumeFrom?: TrainingCheckpoint;
    fault?: ReplicaFault;
    prepare?: (model: tfl.LayersModel) => void;
  } = {},
): Promise<Run> {
  const model = models[job.model].build(dataset.shape, dataset.classNames.length, job.seed);
  options.prepare?.(model);
  const logs: LossLogLine[] = [];
  const epochLosses: number[] = [];
  const listener: TrainingListener = {
    onLog: async (line) => void logs.push(line),
    onProgress: async () => undefined,
    onEpoch: async (summary) => void epochLosses.push(summary.loss),
    nextStep: async () => 'continue',
    onCheckpoint: async () => undefined,
    ...options.listener,
  };
  try {
    const outcome = await train(model, dataset, job, listener, {
      resumeFrom: options.resumeFrom,
      parallel: { replicas, backend: tf.getBackend() as ConcreteBackend, fault: options.fault ?? null },
    });
    return { logs, epochLosses, outcome };
  } finally {
    model.dispose();
  }
}

function assertSameTraining(actual: Run, expected: Run, what: string): void {
  assert.deepEqual(
    actual.logs.map((line) => `${line.epoch}/${line.batch}`),
    expected.logs.map((line) => `${line.epoch}/${line.batch}`),
    `${what}: the same log lines`,
  );
  actual.logs.forEach((line, i) => {
    const reference = (expected.logs[i] as LossLogLine).loss;
    assert.ok(
      Math.abs(line.loss - reference) <= lossTolerance * Math.abs(reference),
      `${what}: line ${line.epoch}/${line.batch} loss ${line.loss}, one replica's ${reference}`,
    );
  });
  actual.epochLosses.forEach((loss, i) => {
    const reference = expected.epochLosses[i] as number;
    assert.ok(
      Math.abs(loss - reference) <= lossTolerance * reference,
      `${what}: epoch ${i + 1} loss ${loss}, one replica's ${reference}`,
    );
  });
  assert.equal(actual.outcome.reason, 'completed');
  assert.equal(expected.outcome.reason, 'completed');
  if (actual.outcome.reason === 'completed' && expected.outcome.reason === 'completed') {
    // Float rounding may tip an image whose two best classes score alike: one image of the test set at most.
    const { total } = expected.outcome.result.evaluation;
    assert.ok(
      Math.abs(actual.outcome.result.evaluation.accuracy - expected.outcome.result.evaluation.accuracy) <=
        1 / total + 1e-9,
      `${what}: accuracy ${actual.outcome.result.evaluation.accuracy}, one replica's ${expected.outcome.result.evaluation.accuracy}`,
    );
  }
}

/** Trains `job` on `replicas` until it pauses after `pauseAfter` batches in all: the run and a copy of the checkpoint it paused with. */
async function pausedAfter(
  dataset: Dataset,
  job: JobSettings,
  replicas: number,
  pauseAfter: number,
): Promise<{ first: Run; checkpoint: TrainingCheckpoint }> {
  let batches = 0;
  let saved: TrainingCheckpoint | null = null;
  const first = await trainWith(dataset, job, replicas, {
    listener: {
      nextStep: async () => (++batches === pauseAfter ? 'pause' : 'continue'),
      onCheckpoint: async (checkpoint) => {
        if (saved) tf.dispose([...saved.tensors]);
        saved = { position: checkpoint.position, tensors: checkpoint.tensors.map((tensor) => tensor.clone()) };
      },
    },
  });
  assert.equal(first.outcome.reason, 'paused');
  const checkpoint = saved as TrainingCheckpoint | null;
  assert.ok(checkpoint, 'it checkpointed before pausing');
  return { first, checkpoint };
}

describe('slices and shards', () => {
  it('cuts a batch into contiguous slices that differ by one image at most and cover it once', () => {
    for (const [count, replicas] of [
      [64, 2],
      [10, 3],
      [1, 2],
      [2, 3],
      [44426, 2],
    ] as const) {
      const slices = Array.from({ length: replicas }, (_, replica) => sliceOf(count, replicas, replica));
      assert.equal(slices[0]?.start, 0);
      slices.forEach((slice, i) => assert.equal(slice.start, i === 0 ? 0 : slices[i - 1]?.end));
      assert.equal(slices.at(-1)?.end, count);
      const sizes = slices.map((slice) => slice.end - slice.start);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${count} over ${replicas}: ${sizes.join(', ')}`);
    }
  });

  it('trains on one replica where the backend can not run in worker threads, saying why', () => {
    assert.deepEqual(replicasOn('wasm', 2), { replicas: 2 });
    assert.deepEqual(replicasOn('cpu', 3), { replicas: 3 });
    assert.deepEqual(replicasOn('webgpu', 1), { replicas: 1 });
    for (const backend of ['webgpu', 'tensorflow'] as const) {
      const { replicas, reason } = replicasOn(backend, 2);
      assert.equal(replicas, 1);
      assert.match(reason ?? '', new RegExp(`the ${backend} backend doesn't run in worker threads`));
    }
  });
});

describe('data-parallel training', () => {
  let digits: Dataset;
  let single: Run;
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
    digits = await mnist.load({ dataDir: '/nonexistent-data-dir' });
    single = await trainWith(digits, lenetJob, 1);
  });

  it('LeNet-5 (augmented, weight decay, a last batch of 10) trains on 2 and 3 replicas to one replica’s losses and accuracy', async () => {
    assert.equal(single.logs.length, 2 * 5);
    assertSameTraining(await trainWith(digits, lenetJob, 2), single, '2 replicas');
    assertSameTraining(await trainWith(digits, lenetJob, 3), single, '3 replicas');
  });

  it('reports how long each replica waited for the others', async () => {
    const run = await trainWith(digits, { ...lenetJob, epochs: 1 }, 2);
    assert.equal(run.outcome.reason, 'completed');
    const times = run.outcome.reason === 'completed' ? run.outcome.result.replicaTimes : null;
    assert.ok(times, 'replica times');
    assert.equal(times.batches, 21);
    assert.equal(times.waitedMs.length, 2);
    assert.ok(
      times.waitedMs.every((ms) => ms >= 0 && Number.isFinite(ms)),
      `waited ${times.waitedMs.join(', ')} ms`,
    );
    const oneReplica = single.outcome.reason === 'completed' ? single.outcome.result.replicaTimes : undefined;
    assert.equal(oneReplica, null, 'one replica has no replica times');
  });

  it('fine-tuning the dense layers only: 2 replicas train like one, the frozen layers as the job started them', async () => {
    // Frozen weights that differ from what a replica thread's own build would start with.
    const source = models.lenet5.build(digits.shape, 10, 99);
    const prepare = (model: tfl.LayersModel) => {
      initialiseFrom(model, source);
      setTrainableLayers(model, 'dense', 0);
    };
    const job: JobSettings = { ...lenetJob, epochs: 1, trainLayers: 'dense' };
    try {
      assertSameTraining(
        await trainWith(digits, job, 2, { prepare }),
        await trainWith(digits, job, 1, { prepare }),
        '2 replicas, dense layers only',
      );
    } finally {
      source.dispose();
    }
  });

  it('a learning-rate schedule reaches every replica: 2 replicas train like one', async () => {
    const job: JobSettings = {
      ...lenetJob,
      epochs: 2,
      trainLimit: 320,
      learningRateSchedule: { type: 'step', stepEpochs: 1, factor: 0.1 },
    };
    assertSameTraining(await trainWith(digits, job, 2), await trainWith(digits, job, 1), '2 replicas, a step schedule');
  });

  it('adam and adamw (weight decay, a cosine schedule with warm-up) train on 2 replicas to one replica’s losses', async () => {
    for (const optimizer of ['adam', 'adamw'] as const) {
      const job: JobSettings = {
        ...lenetJob,
        optimizer,
        learningRate: 1e-3,
        // Large enough that AdamW's shrinking of the weights shows in 20 steps' losses.
        weightDecay: 0.5,
        trainLimit: 320,
        learningRateSchedule: { type: 'cosine', warmupEpochs: 1, minLearningRate: 0 },
      };
      assertSameTraining(await trainWith(digits, job, 2), await trainWith(digits, job, 1), `${optimizer}, 2 replicas`);
    }
  });

  it('label smoothing reaches every replica: 2 replicas train like one, and not on plain cross-entropy', async () => {
    const job: JobSettings = { ...lenetJob, epochs: 1, labelSmoothing: 0.1, trainLimit: 320 };
    const smoothed = await trainWith(digits, job, 1);
    assertSameTraining(await trainWith(digits, job, 2), smoothed, '2 replicas, label smoothing 0.1');
    const plain = await trainWith(digits, { ...job, labelSmoothing: 0 }, 2);
    assert.notDeepEqual(
      plain.logs.map((line) => line.loss),
      smoothed.logs.map((line) => line.loss),
      'the replicas trained on the smoothed loss',
    );
  });

  it('an adam run paused on 2 replicas goes on from its checkpoint (moments and step count) on 1 like the uninterrupted run', async () => {
    const job: JobSettings = { ...lenetJob, optimizer: 'adam', learningRate: 1e-3, trainLimit: 320 };
    const whole = await trainWith(digits, job, 1);
    const { first, checkpoint } = await pausedAfter(digits, job, 2, 13);
    assert.equal(checkpoint.position.optimizerIterations, 13);
    assert.equal(checkpoint.tensors.length, 3 * 10, 'weights, then a first and a second moment per variable');
    try {
      const second = await trainWith(digits, job, 1, { resumeFrom: checkpoint });
      assertSameTraining(
        {
          ...second,
          logs: [...first.logs, ...second.logs],
          epochLosses: [...first.epochLosses, ...second.epochLosses],
        },
        whole,
        'adam resumed on one replica',
      );
    } finally {
      tf.dispose([...checkpoint.tensors]);
    }
  });

  it('trains a batch smaller than the number of replicas (some get no images)', async () => {
    const tiny = { ...lenetJob, epochs: 1, batchSize: 2, trainLimit: 9, logEvery: 1 };
    assertSameTraining(
      await trainWith(digits, tiny, 3),
      await trainWith(digits, tiny, 1),
      'batches of 2 (and 1) on 3 replicas',
    );
  });

  it('pauses mid-epoch with 2 replicas and, resumed from that checkpoint on 2 replicas, ends like the uninterrupted run', async () => {
    const whole = await trainWith(digits, lenetJob, 2);
    const { first, checkpoint } = await pausedAfter(digits, lenetJob, 2, 27);
    assert.deepEqual(
      {
        epochsDone: checkpoint.position.epochsDone,
        batchesDone: checkpoint.position.batchesDone,
        optimizerIterations: checkpoint.position.optimizerIterations,
      },
      { epochsDone: 1, batchesDone: 6, optimizerIterations: 27 },
    );
    assert.equal(checkpoint.tensors.length, 2 * 10, 'weights and a momentum buffer per variable');
    try {
      const second = await trainWith(digits, lenetJob, 2, { resumeFrom: checkpoint });
      assert.deepEqual([...first.logs, ...second.logs], whole.logs, 'the same loss log, no line twice');
      assert.equal(second.outcome.reason, 'completed');
      assert.equal(whole.outcome.reason, 'completed');
      if (second.outcome.reason === 'completed' && whole.outcome.reason === 'completed')
        assert.deepEqual(second.outcome.result.evaluation, whole.outcome.result.evaluation);
      // The checkpoint is one replica count's as much as another's.
      const onOne = await trainWith(digits, lenetJob, 1, { resumeFrom: checkpoint });
      assertSameTraining(
        { ...onOne, logs: [...first.logs, ...onOne.logs], epochLosses: [...first.epochLosses, ...onOne.epochLosses] },
        single,
        'resumed on one replica',
      );
    } finally {
      tf.dispose([...checkpoint.tensors]);
    }
  });

  it('stops after the batch it was told to stop in', async () => {
    let asked = 0;
    const run = await trainWith(digits, { ...lenetJob, logEvery: 1 }, 2, {
      listener: { nextStep: async () => (++asked >= 3 ? 'cancelled' : 'continue') },
    });
    assert.equal(run.outcome.reason, 'cancelled');
    assert.deepEqual(
      run.logs.map((line) => line.batch),
      [1, 2, 3],
    );
  });

  it('fails with the replica’s message when one throws mid-epoch, and when its thread ends', async () => {
    await assert.rejects(
      trainWith(digits, lenetJob, 2, { fault: { kind: 'throw', batch: 5 } }),
      /^ReplicaError: replica 1 failed: injected fault \(TEST_REPLICA_FAULT\) at batch 5$/,
    );
    await assert.rejects(
      trainWith(digits, lenetJob, 3, { fault: { kind: 'exit', batch: 3 } }),
      /^ReplicaError: replica 1 ended \(exit code 3\)$/,
    );
    // And the next job trains as if nothing had happened.
    assertSameTraining(await trainWith(digits, lenetJob, 2), single, 'after the failures');
  });

  describe('AlexNet with dropout', () => {
    let folder: string;
    let images: Dataset;
    before(async () => {
      folder = await mkdtemp(path.join(tmpdir(), 'replicas-cifar-'));
      const source = await cifarPathForTests(folder);
      images = await cifar10.load({ dataDir: folder, userPath: source.path });
    });
    after(() => rm(folder, { recursive: true, force: true }));

    it('draws the dropout masks and augmentation per sample: 2 replicas train to one replica’s losses', async () => {
      const job: JobSettings = {
        ...lenetJob,
        model: 'alexnet',
        dataset: 'cifar10',
        epochs: 1,
        batchSize: 5,
        trainLimit: 10,
        testLimit: 4,
        logEvery: 1,
      };
      const one = await trainWith(images, job, 1);
      assert.equal(one.logs.length, 2);
      assertSameTraining(await trainWith(images, job, 2), one, 'AlexNet on 2 replicas');
    });
  });
});

describe('data-parallel training on the cpu backend', () => {
  it('trains on 2 replicas to one replica’s losses', async () => {
    await startBackend('cpu', pino({ level: 'silent' }));
    try {
      const digits = await mnist.load({ dataDir: '/nonexistent-data-dir' });
      const job = { ...lenetJob, epochs: 1, trainLimit: 48, testLimit: 20, logEvery: 1 };
      assertSameTraining(await trainWith(digits, job, 2), await trainWith(digits, job, 1), 'cpu, 2 replicas');
    } finally {
      await startBackend('wasm', pino({ level: 'silent' }));
    }
  });
});
