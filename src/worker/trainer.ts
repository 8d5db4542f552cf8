import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { EpochSummary, JobProgress, LossLogLine } from '../contract/job.ts';
import type { JobSettings } from '../contract/job-request.ts';
import { batchesPerEpoch, progressAt } from '../contract/progress.ts';
import type { Dataset } from '../datasets/dataset.ts';
import { normalisedImages } from '../datasets/normalise.ts';
import { SeededRandom } from '../random.ts';
import { augmentBatch } from './augment.ts';
import { firstImages, gatherBatch } from './batches.ts';
import { evaluate, type Evaluation } from './evaluate.ts';

/** How the trainer reports to whoever runs it; every call is awaited, so it also yields the event loop. */
export interface TrainingListener {
  onLog(line: LossLogLine, progress: JobProgress): Promise<void>;
  onProgress(progress: JobProgress): Promise<void>;
  onEpoch(summary: EpochSummary, progress: JobProgress): Promise<void>;
  /** Asked after every batch; true stops training (the job was cancelled). */
  shouldStop(): Promise<boolean>;
}

export type TrainingOutcome =
  | { readonly kind: 'completed'; readonly evaluation: Evaluation; readonly trainSeconds: number }
  | { readonly kind: 'stopped' };

export class TrainingDivergedError extends Error {
  override readonly name = 'TrainingDivergedError';
}

/**
 * A mean loss this many times that of guessing (ln of the class count) means the weights have blown
 * up: the stable softmax cross-entropy stays finite long after training is lost, so NaN alone
 * would let a hopeless job burn all its epochs.
 */
const divergenceFactor = 100;

/** Progress writes between log lines, at most this often, so Redis isn't written every batch. */
const progressIntervalMs = 1000;

/**
 * The notebook's loop: SGD with momentum and PyTorch-style weight decay over shuffled batches,
 * with the loss read back only when a log line is due (reading it every batch stalls the backend).
 */
export async function train(model: tfl.LayersModel, dataset: Dataset, settings: JobSettings, listener: TrainingListener): Promise<TrainingOutcome> {
  const random = new SeededRandom(settings.seed);
  const classes = dataset.classNames.length;
  const trainSplit = firstImages(dataset.train, dataset.shape, settings.trainLimit);
  const testSplit = firstImages(dataset.test, dataset.shape, settings.testLimit);
  const perEpoch = batchesPerEpoch(trainSplit.count, settings.batchSize);
  const progress = (epoch: number, batch: number): JobProgress => progressAt(settings.epochs, perEpoch, epoch, batch);

  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const optimizer = tf.train.momentum(settings.learningRate, settings.momentum);
  const step = (images: Uint8Array, labels: Int32Array): tf.Scalar =>
    tf.tidy(() => {
      const xs = normalisedImages(images, labels.length, dataset.shape);
      const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor) as tf.Scalar,
        variables,
      );
      // PyTorch's SGD adds weight decay to the gradient before momentum, biases included.
      optimizer.applyGradients(
        variables.map((variable) => {
          const gradient = grads[variable.name] as tf.Tensor;
          return { name: variable.name, tensor: settings.weightDecay > 0 ? tf.add(gradient, tf.mul(variable, settings.weightDecay)) : gradient };
        }),
      );
      return value;
    });

  let trainSeconds = 0;
  let evaluation: Evaluation | null = null;
  try {
    for (let epoch = 1; epoch <= settings.epochs; epoch++) {
      const order = random.permutation(trainSplit.count);
      const started = performance.now();
      let lastProgressWrite = started;
      let windowLoss: tf.Scalar = tf.scalar(0);
      let windowBatches = 0;
      let epochLoss = 0;
      for (let batch = 1; batch <= perEpoch; batch++) {
        const { images, labels } = gatherBatch(trainSplit, dataset.shape, order.subarray((batch - 1) * settings.batchSize, batch * settings.batchSize));
        const loss = step(settings.augment ? augmentBatch(images, labels.length, dataset.shape, random) : images, labels);
        const summed = tf.add<tf.Scalar>(windowLoss, loss);
        tf.dispose([windowLoss, loss]);
        windowLoss = summed;
        windowBatches++;
        if (batch % settings.logEvery === 0 || batch === perEpoch) {
          const sum = (await windowLoss.data())[0] as number;
          const mean = sum / windowBatches;
          if (!Number.isFinite(mean) || mean > divergenceFactor * Math.log(classes)) {
            throw new TrainingDivergedError(
              `training diverged: the loss became ${mean.toPrecision(3)} in epoch ${epoch}, batch ${batch}; try a smaller learningRate (it was ${settings.learningRate})`,
            );
          }
          epochLoss += sum;
          if (batch % settings.logEvery === 0) {
            await listener.onLog({ epoch, batch, loss: mean }, progress(epoch, batch));
            lastProgressWrite = performance.now();
          }
          windowLoss.dispose();
          windowLoss = tf.scalar(0);
          windowBatches = 0;
        } else if (performance.now() - lastProgressWrite >= progressIntervalMs) {
          await listener.onProgress(progress(epoch, batch));
          lastProgressWrite = performance.now();
        }
        if (await listener.shouldStop()) {
          windowLoss.dispose();
          return { kind: 'stopped' };
        }
      }
      windowLoss.dispose();
      const seconds = (performance.now() - started) / 1000;
      trainSeconds += seconds;
      evaluation = await evaluate(model, testSplit, dataset.shape, classes);
      await listener.onEpoch(
        {
          epoch,
          loss: epochLoss / perEpoch,
          testAccuracy: evaluation.accuracy,
          seconds: round(seconds, 3),
          imagesPerSecond: round(trainSplit.count / seconds, 1),
        },
        progress(epoch, perEpoch),
      );
    }
  } finally {
    optimizer.dispose();
  }
  if (!evaluation) throw new Error('a job has at least one epoch');
  return { kind: 'completed', evaluation, trainSeconds: round(trainSeconds, 3) };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
