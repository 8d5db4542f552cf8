import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { assertDeviceHealthy, assertModelFitsDevice } from '../backends/device.ts';
import type { ConcreteBackend } from '../backends/select.ts';
import type { EpochSummary, JobProgress, LossLogLine } from '../contract/job.ts';
import type { JobSettings } from '../contract/job-request.ts';
import { batchesPerEpoch, progressAt } from '../contract/progress.ts';
import type { Dataset } from '../datasets/dataset.ts';
import { frozenWeightValues } from '../models/fine-tune.ts';
import { SeededDropout } from '../models/seeded-dropout.ts';
import { SeededRandom } from '../random.ts';
import { augmentBatch } from './augment.ts';
import { firstImages, gatherBatch } from './batches.ts';
import { CheckpointError, type TrainingCheckpoint, type TrainingPosition } from './checkpoint.ts';
import { TrainingClock } from './clock.ts';
import { evaluate, type Evaluation } from './evaluate.ts';
import { afterEpoch, noEarlyStoppingYet, type EarlyStoppingState } from './early-stopping.ts';
import { LossLog } from './loss-log.ts';
import { ReplicaGroup, type ReplicaFault, type ReplicaTimes } from './replicas/replica-group.ts';
import { learningRateOf } from './schedule.ts';
import { TrainingStep } from './training-step.ts';
import { splitForValidation } from './validation.ts';

/** What the trainer is told after each batch: go on, stop now (cancelled), or checkpoint and stop (the worker shuts down). */
type TrainingInstruction = 'continue' | 'stop' | 'pause';

/** How the trainer reports to whoever runs it; every call is awaited, so it also yields the event loop. */
export interface TrainingListener {
  onLog(line: LossLogLine, progress: JobProgress): Promise<void>;
  onProgress(progress: JobProgress): Promise<void>;
  onEpoch(summary: EpochSummary, progress: JobProgress): Promise<void>;
  /** Asked after every batch. */
  nextStep(): Promise<TrainingInstruction>;
  /** Asked after each epoch but the last: true ends training there, with that epoch's weights (an experiment's successive halving). */
  endAfterEpoch?(summary: EpochSummary): Promise<boolean>;
  /**
   * A checkpoint to keep: after every epoch but the last, every `checkpointSeconds` within an
   * epoch, and before pausing. Its tensors are the live ones: use them before returning.
   */
  onCheckpoint(checkpoint: TrainingCheckpoint): Promise<void>;
}

export interface TrainingOptions {
  /** A checkpoint of an earlier run of the same job: training goes on from where it was taken. */
  readonly resumeFrom?: TrainingCheckpoint | undefined;
  /** Seconds of training between checkpoints within an epoch; 0 or absent: at epoch ends only. */
  readonly checkpointSeconds?: number;
  /**
   * Data-parallel training: `replicas` in all, this thread and `replicas - 1` worker threads on
   * `backend` (one replicasOn allows), each training a slice of every batch. Absent or 1: this thread alone.
   */
  readonly parallel?:
    { readonly replicas: number; readonly backend: ConcreteBackend; readonly fault?: ReplicaFault | null } | undefined;
}

export type TrainingOutcome =
  | {
      readonly kind: 'completed';
      readonly evaluation: Evaluation;
      readonly trainSeconds: number;
      /** How the replicas spent the run, when there were several. */
      readonly replicaTimes: ReplicaTimes | null;
      /** Where early stopping left the run, when the job asked for it. */
      readonly earlyStopping: EarlyStoppingOutcome | null;
      /** The epoch after which endAfterEpoch ended training; null when it didn't. */
      readonly terminatedAfterEpoch: number | null;
    }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'paused' };

interface EarlyStoppingOutcome {
  readonly metric: NonNullable<JobSettings['earlyStopping']>['metric'];
  readonly bestEpoch: number;
  readonly bestValue: number | null;
  /** The epoch after which it stopped; null when it trained every epoch. */
  readonly stoppedAfterEpoch: number | null;
  /** The epoch whose weights the model ends with. */
  readonly keptEpoch: number;
}

class TrainingDivergedError extends Error {
  override readonly name = 'TrainingDivergedError';
}

export { TrainingTimeoutError } from './clock.ts';

/**
 * A mean loss this many times that of guessing (ln of the class count) means the weights have blown
 * up: the stable softmax cross-entropy stays finite long after training is lost, so NaN alone
 * would let a hopeless job burn all its epochs.
 */
const divergenceFactor = 100;

/**
 * The notebook's loop: SGD with momentum and PyTorch-style weight decay over shuffled batches,
 * with the loss read back only when a log line is due (reading it every batch stalls the backend).
 * It can stop between any two batches and, given the checkpoint it handed out, go on from there
 * as if it had never stopped.
 */
export async function train(
  model: tfl.LayersModel,
  dataset: Dataset,
  settings: JobSettings,
  listener: TrainingListener,
  options: TrainingOptions = {},
): Promise<TrainingOutcome> {
  const classes = dataset.classNames.length;
  const { train: trainSplit, validation } = splitForValidation(
    firstImages(dataset.train, dataset.shape, settings.trainLimit),
    dataset,
    settings,
  );
  const testSplit = firstImages(dataset.test, dataset.shape, settings.testLimit);
  const perEpoch = batchesPerEpoch(trainSplit.count, settings.batchSize);
  const progress = (epoch: number, batch: number): JobProgress => progressAt(settings.epochs, perEpoch, epoch, batch);

  const dropouts = model.layers.filter((layer): layer is SeededDropout => layer instanceof SeededDropout);
  assertModelFitsDevice(model, settings.batchSize);
  const step = new TrainingStep(model, dataset.shape, classes, settings);

  const resumed = options.resumeFrom?.position;
  if (options.resumeFrom) await restore(options.resumeFrom, model, step, dropouts);
  // Before the clock starts: threads starting up are not training time.
  const group =
    options.parallel && options.parallel.replicas > 1
      ? await startReplicas(options.parallel, model, step, dropouts, dataset, settings)
      : null;
  const random = resumed ? SeededRandom.fromPosition(resumed.random) : new SeededRandom(settings.seed);
  const clock = new TrainingClock(resumed, settings.timeoutSeconds, options.checkpointSeconds ?? 0);
  const log = new LossLog(resumed?.logLines ?? 0);
  const stopping = settings.earlyStopping;
  let stoppingState: EarlyStoppingState = resumed?.earlyStopping ?? noEarlyStoppingYet;
  // The best epoch's weights, kept to end with (restoreBest): in memory, and in every checkpoint after it.
  let bestWeights: tf.Tensor[] | null = options.resumeFrom?.bestWeights?.map((tensor) => tensor.clone()) ?? null;
  // With replicas, the optimiser's state is theirs; this thread's optimiser never steps.
  const optimiser: OptimiserState = group ?? step;
  const checkpoint = async (position: TrainingPosition): Promise<void> => {
    const momentum = await optimiser.momentum();
    try {
      await listener.onCheckpoint({
        position: { ...position, earlyStopping: stoppingState },
        tensors: [...model.getWeights(), ...momentum],
        bestWeights: bestWeights ?? undefined,
      });
    } finally {
      tf.dispose(momentum);
    }
    clock.checkpointed();
  };

  let evaluation: Evaluation | null = null;
  let stoppedAfter: number | null = null;
  let terminatedAfter: number | null = null;
  try {
    for (let epoch = (resumed?.epochsDone ?? 0) + 1; epoch <= settings.epochs; epoch++) {
      const learningRate = learningRateOf(settings, epoch);
      step.setLearningRate(learningRate);
      // The epoch a checkpoint was taken in goes on where it stopped, in the order it was drawn in.
      const continued = resumed && epoch === resumed.epochsDone + 1 && resumed.batchesDone > 0 ? resumed : null;
      const orderRandom = continued ? continued.orderRandom : random.position;
      const order = (continued ? SeededRandom.fromPosition(orderRandom) : random).permutation(trainSplit.count);
      clock.startEpoch(continued?.epochSeconds ?? 0);
      log.startEpoch(continued);
      const where = { epochsDone: epoch - 1, orderRandom, random, dropouts, optimiser, log, clock };
      const positionAfter = (batchesDone: number): Promise<TrainingPosition> => positionOf(where, batchesDone);

      for (let batch = (continued?.batchesDone ?? 0) + 1; batch <= perEpoch; batch++) {
        const { images, labels } = gatherBatch(
          trainSplit,
          dataset.shape,
          order.subarray((batch - 1) * settings.batchSize, batch * settings.batchSize),
        );
        const batchImages = settings.augment ? augmentBatch(images, labels.length, dataset.shape, random) : images;
        log.add(group ? await group.run(batchImages, labels, learningRate) : step.run(batchImages, labels));
        if (batch % settings.logEvery === 0 || batch === perEpoch) {
          const mean = await log.closeWindow();
          // The read waited for the batches' kernels: any the GPU rejected has been reported by now.
          assertDeviceHealthy();
          if (!Number.isFinite(mean) || mean > divergenceFactor * Math.log(classes)) {
            throw new TrainingDivergedError(
              `training diverged: the loss became ${mean.toPrecision(3)} in epoch ${epoch}, batch ${batch}; try a smaller learningRate (it was ${settings.learningRate})`,
            );
          }
          if (batch % settings.logEvery === 0) {
            await listener.onLog({ epoch, batch, loss: mean }, progress(epoch, batch));
            log.lineWritten();
            clock.progressWritten();
          }
        } else if (clock.progressDue()) {
          await listener.onProgress(progress(epoch, batch));
          clock.progressWritten();
        }
        const instruction = await listener.nextStep();
        if (instruction === 'stop') return { kind: 'stopped' };
        clock.enforceTimeLimit(`in epoch ${epoch}, batch ${batch}`);
        if (instruction === 'pause' || (clock.checkpointDue() && batch < perEpoch)) {
          await checkpoint(await positionAfter(batch));
          if (instruction === 'pause') return { kind: 'paused' };
        }
      }
      const seconds = clock.finishEpoch();
      evaluation = await evaluate(model, testSplit, dataset.shape, classes);
      const validated = validation ? await evaluate(model, validation, dataset.shape, classes) : null;
      assertDeviceHealthy();
      clock.enforceTimeLimit(`while evaluating epoch ${epoch}`);
      let stop = false;
      if (stopping && validated) {
        const judged = afterEpoch(
          stopping,
          stoppingState,
          epoch,
          stopping.metric === 'validationLoss' ? validated.loss : validated.accuracy,
        );
        stoppingState = judged.state;
        // Patience running out in the last epoch stops nothing: training ends there anyway.
        stop = judged.stop && epoch < settings.epochs;
        if (judged.best && stopping.restoreBest) {
          if (bestWeights) tf.dispose(bestWeights);
          bestWeights = model.getWeights().map((weight) => weight.clone());
        }
      }
      const summary: EpochSummary = {
        epoch,
        loss: log.epochLoss / perEpoch,
        testAccuracy: evaluation.accuracy,
        testLoss: evaluation.loss,
        seconds: round(seconds, 3),
        imagesPerSecond: round(trainSplit.count / seconds, 1),
        learningRate,
        ...(validated ? { validationLoss: validated.loss, validationAccuracy: validated.accuracy } : {}),
      };
      // Stopping early: the job is done.
      await listener.onEpoch(summary, stop ? progressAt(epoch, perEpoch, epoch, perEpoch) : progress(epoch, perEpoch));
      if (stop) {
        stoppedAfter = epoch;
        break;
      }
      if (epoch < settings.epochs && (await listener.endAfterEpoch?.(summary))) {
        terminatedAfter = epoch;
        break;
      }
      // None after the last: the finished model is saved as the job's artifact instead.
      if (epoch < settings.epochs) {
        // The start of the next epoch: nothing of it trained yet.
        await checkpoint({
          ...(await positionAfter(0)),
          epochsDone: epoch,
          epochLoss: 0,
          windowLoss: 0,
          windowBatches: 0,
          epochSeconds: 0,
        });
      }
    }
  } finally {
    await group?.close();
    log.dispose();
    step.dispose();
  }
  if (!evaluation) throw new Error('a job has at least one epoch');
  const lastEpoch = stoppedAfter ?? terminatedAfter ?? settings.epochs;
  const keptEpoch = stopping?.restoreBest && bestWeights ? stoppingState.bestEpoch : lastEpoch;
  if (bestWeights && keptEpoch !== lastEpoch) {
    // The result is the kept weights': the test set is evaluated on them again.
    model.setWeights(bestWeights);
    evaluation = await evaluate(model, testSplit, dataset.shape, classes);
  }
  if (bestWeights) tf.dispose(bestWeights);
  const earlyStopping = stopping
    ? {
        metric: stopping.metric,
        bestEpoch: stoppingState.bestEpoch,
        bestValue: stoppingState.bestValue,
        stoppedAfterEpoch: stoppedAfter,
        keptEpoch,
      }
    : null;
  return {
    kind: 'completed',
    evaluation,
    trainSeconds: round(clock.trainSeconds, 3),
    replicaTimes: group?.times ?? null,
    earlyStopping,
    terminatedAfterEpoch: terminatedAfter,
  };
}

/** The replicas that train beside this thread, from where `step` stands; `step` is disposed when they can't start. */
async function startReplicas(
  parallel: NonNullable<TrainingOptions['parallel']>,
  model: tfl.LayersModel,
  step: TrainingStep,
  dropouts: readonly SeededDropout[],
  dataset: Dataset,
  settings: JobSettings,
): Promise<ReplicaGroup> {
  try {
    return await ReplicaGroup.start({
      ...parallel,
      step,
      dropouts,
      frozen: frozenWeightValues(model),
      shape: dataset.shape,
      classes: dataset.classNames.length,
      settings,
    });
  } catch (error) {
    step.dispose();
    throw error;
  }
}

/** What a checkpoint's position is made of, besides the batches done. */
interface PositionParts {
  readonly epochsDone: number;
  readonly orderRandom: number;
  readonly random: SeededRandom;
  readonly dropouts: readonly SeededDropout[];
  readonly optimiser: OptimiserState;
  readonly log: LossLog;
  readonly clock: TrainingClock;
}

/** Where the run stands after `batchesDone` batches of the epoch in progress. */
async function positionOf(parts: PositionParts, batchesDone: number): Promise<TrainingPosition> {
  const losses = await parts.log.position();
  const times = parts.clock.position();
  return {
    epochsDone: parts.epochsDone,
    batchesDone,
    orderRandom: parts.orderRandom,
    random: parts.random.position,
    dropoutRandom: parts.dropouts.map((dropout) => dropout.randomPosition),
    optimizerIterations: parts.optimiser.iterations,
    epochLoss: losses.epochLoss,
    windowLoss: losses.windowLoss,
    windowBatches: losses.windowBatches,
    trainSeconds: times.trainSeconds,
    epochSeconds: times.epochSeconds,
    activeSeconds: times.activeSeconds,
    logLines: losses.logLines,
  };
}

/** Where the optimiser stands: this thread's TrainingStep's, or the replicas' between them. */
interface OptimiserState {
  readonly iterations: number;
  /** One momentum buffer per trainable variable (none before the first step), the caller's to dispose. */
  momentum(): Promise<tf.Tensor[]>;
}

async function restore(
  checkpoint: TrainingCheckpoint,
  model: tfl.LayersModel,
  step: TrainingStep,
  dropouts: SeededDropout[],
): Promise<void> {
  const weights = model.getWeights();
  const { position, tensors } = checkpoint;
  const mismatch = (problem: string) => new CheckpointError(`the checkpoint doesn't fit this model: ${problem}`);
  if (tensors.length !== weights.length + model.trainableWeights.length) {
    throw mismatch(
      `${tensors.length} tensors for ${weights.length} weights and ${model.trainableWeights.length} momentum buffers`,
    );
  }
  if (position.dropoutRandom.length !== dropouts.length)
    throw mismatch(`${position.dropoutRandom.length} dropout generators for ${dropouts.length} layers`);
  const reference = [...weights, ...model.trainableWeights.map((weight) => weight.read())];
  reference.forEach((tensor, index) => {
    const stored = tensors[index] as tf.Tensor;
    if (!tf.util.arraysEqual(stored.shape, tensor.shape))
      throw mismatch(`tensor ${index} has shape [${stored.shape}], the model's [${tensor.shape}]`);
  });
  model.setWeights(tensors.slice(0, weights.length));
  await step.setMomentum(position.optimizerIterations, tensors.slice(weights.length));
  dropouts.forEach((dropout, index) => {
    dropout.randomPosition = position.dropoutRandom[index] as number;
  });
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
