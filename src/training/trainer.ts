import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { assertDeviceHealthy, assertModelFitsDevice } from '../backends/device.ts';
import type { ConcreteBackend } from '../backends/select.ts';
import type { EpochSummary, JobProgress, LossLogLine } from '../contract/job.ts';
import type { JobSettings } from '../contract/job-request.ts';
import { batchesPerEpoch, progressAt } from '../contract/progress.ts';
import type { Dataset, ImageSplit } from '../datasets/dataset.ts';
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
import { stateSlots } from './optimizers/optimizer.ts';
import { learningRateOf } from './schedule.ts';
import { TrainingStep } from './training-step.ts';
import { splitForValidation } from './validation.ts';

/**
 * What the trainer is told after each batch: go on; checkpoint and stop (the worker shuts down); or
 * stop now, for the reason given (the job was cancelled, or another worker took it over).
 */
type TrainingInstruction = 'continue' | 'pause' | 'cancelled' | 'superseded';

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

/**
 * Why training stopped, with what the caller needs to act on it:
 *
 * | reason | when | with |
 * | --- | --- | --- |
 * | completed | after the last epoch | the result |
 * | earlyStopped | after an epoch but the last, the validation metric having stopped improving | the epoch, the result |
 * | terminated | after an epoch but the last, when the listener's endAfterEpoch said so (successive halving) | the epoch, the result |
 * | cancelled | after a batch, when nextStep said so | nothing: the job is over |
 * | superseded | after a batch, when nextStep said so | nothing: another worker's attempt has the job |
 * | paused | after a batch, when nextStep said so, the checkpoint handed to onCheckpoint | nothing: the checkpoint goes on |
 * | timeLimit | after a batch or an evaluation, the job's timeoutSeconds spent | the message to fail the job with |
 */
export type TrainingStop =
  | { readonly reason: 'completed'; readonly result: TrainingResult }
  | { readonly reason: 'earlyStopped' | 'terminated'; readonly afterEpoch: number; readonly result: TrainingResult }
  | { readonly reason: 'cancelled' | 'superseded' | 'paused' }
  | { readonly reason: 'timeLimit'; readonly message: string };

/** A stop after training to its end, or to the end of an epoch: the model is trained, its result ready. */
export type TrainedStop = Extract<TrainingStop, { readonly result: TrainingResult }>;

/** What a run that trained to its end (every epoch, or stopped after one) leaves. */
interface TrainingResult {
  /** On the test set, with the weights the model ends with. */
  readonly evaluation: Evaluation;
  readonly trainSeconds: number;
  /** How the replicas spent the run, when there were several. */
  readonly replicaTimes: ReplicaTimes | null;
  /** Where early stopping left the run, when the job asked for it. */
  readonly earlyStopping: EarlyStoppingOutcome | null;
}

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

/**
 * A mean loss this many times that of guessing (ln of the class count) means the weights have blown
 * up: the stable softmax cross-entropy stays finite long after training is lost, so NaN alone
 * would let a hopeless job burn all its epochs.
 */
const divergenceFactor = 100;

/**
 * The notebook's loop: the job's optimizer (the notebook's SGD with momentum by default) over shuffled batches,
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
): Promise<TrainingStop> {
  const run = await TrainingRun.start(model, dataset, settings, listener, options);
  try {
    return await run.toTheEnd();
  } finally {
    run.dispose();
  }
}

/** How an epoch ended the run after training to its end: the run's result is taken from there. */
interface TrainedEnd {
  readonly reason: TrainedStop['reason'];
  readonly epoch: number;
  /** On the test set, with the epoch's weights. */
  readonly evaluation: Evaluation;
}

/**
 * One run of `train`, from where it starts (or resumes) to why it stopped (TrainingStop). An epoch
 * is these parts, in order, one method each:
 *
 * | part | does | may end the run with |
 * | --- | --- | --- |
 * | trainBatches | the epoch's batches (trainBatch), a log line every logEvery (reportLoss), then asks the listener what next (betweenBatches) | cancelled, superseded, paused, timeLimit |
 * | evaluateEpoch | the test set and the validation split | timeLimit |
 * | judgeEarlyStopping | whether the validation metric stopped improving; keeps the best weights | earlyStopped, once onEpoch has the summary |
 * | summarise | the epoch's summary, for onEpoch | completed after the last epoch; terminated when endAfterEpoch says so |
 * | checkpointNextEpoch | the checkpoint to resume from at the next epoch's start | |
 *
 * A run that trained to its end (completed, earlyStopped, terminated) finishes with its result,
 * evaluated on the weights it keeps.
 */
class TrainingRun {
  private readonly classes: number;
  private readonly perEpoch: number;
  private readonly resumed: TrainingPosition | undefined;
  private readonly random: SeededRandom;
  private readonly clock: TrainingClock;
  private readonly log: LossLog;
  private readonly stopping: JobSettings['earlyStopping'];
  private stoppingState: EarlyStoppingState;
  /** The best epoch's weights, kept to end with (restoreBest): in memory, and in every checkpoint after it. */
  private bestWeights: tf.Tensor[] | null;
  /** With replicas, the optimizer's state is theirs; this thread's optimizer never steps. */
  private readonly optimizer: OptimizerState;
  /** Where the random generator stood when the epoch in progress drew its order of images. */
  private orderRandom = 0;

  private constructor(
    private readonly model: tfl.LayersModel,
    private readonly dataset: Dataset,
    private readonly settings: JobSettings,
    private readonly listener: TrainingListener,
    private readonly splits: { train: ImageSplit; validation: ImageSplit | null; test: ImageSplit },
    private readonly step: TrainingStep,
    private readonly dropouts: readonly SeededDropout[],
    private readonly group: ReplicaGroup | null,
    options: TrainingOptions,
  ) {
    this.classes = dataset.classNames.length;
    this.perEpoch = batchesPerEpoch(splits.train.count, settings.batchSize);
    const resumed = options.resumeFrom?.position;
    this.resumed = resumed;
    this.random = resumed ? SeededRandom.fromPosition(resumed.random) : new SeededRandom(settings.seed);
    this.clock = new TrainingClock(resumed, settings.timeoutSeconds, options.checkpointSeconds ?? 0);
    this.log = new LossLog(resumed?.logLines ?? 0);
    this.stopping = settings.earlyStopping;
    this.stoppingState = resumed?.earlyStopping ?? noEarlyStoppingYet;
    this.bestWeights = options.resumeFrom?.bestWeights?.map((tensor) => tensor.clone()) ?? null;
    this.optimizer = group ?? step;
  }

  /** Splits the data set, builds the step, restores the checkpoint to resume from and starts the replicas. */
  static async start(
    model: tfl.LayersModel,
    dataset: Dataset,
    settings: JobSettings,
    listener: TrainingListener,
    options: TrainingOptions,
  ): Promise<TrainingRun> {
    const { train: trainSplit, validation } = splitForValidation(
      firstImages(dataset.train, dataset.shape, settings.trainLimit),
      dataset,
      settings,
    );
    const test = firstImages(dataset.test, dataset.shape, settings.testLimit);
    const dropouts = model.layers.filter((layer): layer is SeededDropout => layer instanceof SeededDropout);
    assertModelFitsDevice(model, settings.batchSize);
    const step = new TrainingStep(model, dataset.shape, dataset.classNames.length, settings);
    if (options.resumeFrom) await restore(options.resumeFrom, model, step, dropouts, settings);
    // Before the clock starts: threads starting up are not training time.
    const group =
      options.parallel && options.parallel.replicas > 1
        ? await startReplicas(options.parallel, model, step, dropouts, dataset, settings)
        : null;
    const splits = { train: trainSplit, validation, test };
    return new TrainingRun(model, dataset, settings, listener, splits, step, dropouts, group, options);
  }

  /** Trains epoch after epoch until one ends the run, then releases the step and the replicas. */
  async toTheEnd(): Promise<TrainingStop> {
    let end: TrainingStop | TrainedEnd | null = null;
    try {
      for (let epoch = (this.resumed?.epochsDone ?? 0) + 1; epoch <= this.settings.epochs && !end; epoch++)
        end = await this.trainEpoch(epoch);
    } finally {
      await this.group?.close();
      this.log.dispose();
      this.step.dispose();
    }
    if (!end) throw new Error('a job has at least one epoch');
    return 'evaluation' in end ? await this.finish(end) : end;
  }

  dispose(): void {
    if (this.bestWeights) tf.dispose(this.bestWeights);
  }

  private progress(epoch: number, batch: number): JobProgress {
    return progressAt(this.settings.epochs, this.perEpoch, epoch, batch);
  }

  private timeLimit(where: string): TrainingStop {
    return {
      reason: 'timeLimit',
      message: `the job ran past its time limit of ${this.settings.timeoutSeconds} s (timeoutSeconds) ${where}`,
    };
  }

  private async checkpoint(position: TrainingPosition): Promise<void> {
    const state = await this.optimizer.optimizerState();
    try {
      await this.listener.onCheckpoint({
        position: { ...position, earlyStopping: this.stoppingState },
        tensors: [...this.model.getWeights(), ...state],
        bestWeights: this.bestWeights ?? undefined,
      });
    } finally {
      tf.dispose(state);
    }
    this.clock.checkpointed();
  }

  /** One epoch, part by part (see the class's table): null when the run goes on to the next. */
  private async trainEpoch(epoch: number): Promise<TrainingStop | TrainedEnd | null> {
    const learningRate = learningRateOf(this.settings, epoch);
    const interrupted = await this.trainBatches(epoch, learningRate);
    if (interrupted) return interrupted;
    const seconds = this.clock.finishEpoch();
    const { test, validation } = await this.evaluateEpoch();
    if (this.clock.pastTimeLimit()) return this.timeLimit(`while evaluating epoch ${epoch}`);
    const stopEarly = validation ? this.judgeEarlyStopping(epoch, validation) : false;
    const summary = this.summarise(epoch, learningRate, seconds, test, validation);
    // Stopping early: the job is done.
    const { perEpoch } = this;
    await this.listener.onEpoch(
      summary,
      stopEarly ? progressAt(epoch, perEpoch, epoch, perEpoch) : this.progress(epoch, perEpoch),
    );
    if (stopEarly) return { reason: 'earlyStopped', epoch, evaluation: test };
    // No checkpoint after the last: the finished model is saved as the job's artifact instead.
    if (epoch === this.settings.epochs) return { reason: 'completed', epoch, evaluation: test };
    if (await this.listener.endAfterEpoch?.(summary)) return { reason: 'terminated', epoch, evaluation: test };
    await this.checkpointNextEpoch(epoch);
    return null;
  }

  /** The test set, and the validation split when the job has one, on the epoch's weights. */
  private async evaluateEpoch(): Promise<{ test: Evaluation; validation: Evaluation | null }> {
    const { model, classes } = this;
    const { shape } = this.dataset;
    const test = await evaluate(model, this.splits.test, shape, classes);
    const validation = this.splits.validation ? await evaluate(model, this.splits.validation, shape, classes) : null;
    assertDeviceHealthy();
    return { test, validation };
  }

  /**
   * Whether early stopping ends the run after this epoch (never after the last: training ends
   * there anyway), keeping this epoch's weights when they are the best so far and the job keeps the best.
   */
  private judgeEarlyStopping(epoch: number, validation: Evaluation): boolean {
    const { stopping } = this;
    if (!stopping) return false;
    const judged = afterEpoch(
      stopping,
      this.stoppingState,
      epoch,
      stopping.metric === 'validationLoss' ? validation.loss : validation.accuracy,
    );
    this.stoppingState = judged.state;
    if (judged.best && stopping.restoreBest) {
      if (this.bestWeights) tf.dispose(this.bestWeights);
      this.bestWeights = this.model.getWeights().map((weight) => weight.clone());
    }
    return judged.stop && epoch < this.settings.epochs;
  }

  private summarise(
    epoch: number,
    learningRate: number,
    seconds: number,
    test: Evaluation,
    validation: Evaluation | null,
  ): EpochSummary {
    return {
      epoch,
      loss: this.log.epochLoss / this.perEpoch,
      testAccuracy: test.accuracy,
      testLoss: test.loss,
      seconds: round(seconds, 3),
      imagesPerSecond: round(this.splits.train.count / seconds, 1),
      learningRate,
      ...(validation ? { validationLoss: validation.loss, validationAccuracy: validation.accuracy } : {}),
    };
  }

  /** The checkpoint at the start of the epoch after `epoch`: nothing of it trained yet. */
  private async checkpointNextEpoch(epoch: number): Promise<void> {
    await this.checkpoint({
      ...(await this.position(epoch - 1, 0)),
      epochsDone: epoch,
      epochLoss: 0,
      windowLoss: 0,
      windowBatches: 0,
      epochSeconds: 0,
    });
  }

  /** The epoch's batches, from the first a resumed run has not trained: a stop when told to stop or past the time limit. */
  private async trainBatches(epoch: number, learningRate: number): Promise<TrainingStop | null> {
    this.step.setLearningRate(learningRate);
    // The epoch a checkpoint was taken in goes on where it stopped, in the order it was drawn in.
    const { resumed } = this;
    const continued = resumed && epoch === resumed.epochsDone + 1 && resumed.batchesDone > 0 ? resumed : null;
    this.orderRandom = continued ? continued.orderRandom : this.random.position;
    const order = (continued ? SeededRandom.fromPosition(this.orderRandom) : this.random).permutation(
      this.splits.train.count,
    );
    this.clock.startEpoch(continued?.epochSeconds ?? 0);
    this.log.startEpoch(continued);
    for (let batch = (continued?.batchesDone ?? 0) + 1; batch <= this.perEpoch; batch++) {
      await this.trainBatch(
        order.subarray((batch - 1) * this.settings.batchSize, batch * this.settings.batchSize),
        learningRate,
      );
      await this.reportLoss(epoch, batch);
      const stop = await this.betweenBatches(epoch, batch);
      if (stop) return stop;
    }
    return null;
  }

  /** One step on the images at `indices`, augmented when the job asks; its loss goes to the log's window. */
  private async trainBatch(indices: Uint32Array, learningRate: number): Promise<void> {
    const { shape } = this.dataset;
    const { images, labels } = gatherBatch(this.splits.train, shape, indices);
    const batchImages = this.settings.augment
      ? augmentBatch(images, labels.length, shape, this.dataset.imageKind, this.random)
      : images;
    this.log.add(
      this.group ? await this.group.run(batchImages, labels, learningRate) : this.step.run(batchImages, labels),
    );
  }

  /**
   * A log line every logEvery batches, the loss read back also at the epoch's end (for its summary)
   * and checked for divergence; between log lines, the progress now and then.
   */
  private async reportLoss(epoch: number, batch: number): Promise<void> {
    const { settings, clock } = this;
    if (batch % settings.logEvery === 0 || batch === this.perEpoch) {
      const mean = await this.log.closeWindow();
      // The read waited for the batches' kernels: any the GPU rejected has been reported by now.
      assertDeviceHealthy();
      if (!Number.isFinite(mean) || mean > divergenceFactor * Math.log(this.classes)) {
        throw new TrainingDivergedError(
          `training diverged: the loss became ${mean.toPrecision(3)} in epoch ${epoch}, batch ${batch}; try a smaller learningRate (it was ${settings.learningRate})`,
        );
      }
      if (batch % settings.logEvery === 0) {
        await this.listener.onLog({ epoch, batch, loss: mean }, this.progress(epoch, batch));
        this.log.lineWritten();
        clock.progressWritten();
      }
    } else if (clock.progressDue()) {
      await this.listener.onProgress(this.progress(epoch, batch));
      clock.progressWritten();
    }
  }

  /** Asks the listener what next and checks the time limit; checkpoints when pausing or when one is due within the epoch. */
  private async betweenBatches(epoch: number, batch: number): Promise<TrainingStop | null> {
    const instruction = await this.listener.nextStep();
    if (instruction === 'cancelled' || instruction === 'superseded') return { reason: instruction };
    if (this.clock.pastTimeLimit()) return this.timeLimit(`in epoch ${epoch}, batch ${batch}`);
    if (instruction === 'pause' || (this.clock.checkpointDue() && batch < this.perEpoch)) {
      await this.checkpoint(await this.position(epoch - 1, batch));
      if (instruction === 'pause') return { reason: 'paused' };
    }
    return null;
  }

  /** Where the run stands after `batchesDone` batches of the epoch after `epochsDone`. */
  private async position(epochsDone: number, batchesDone: number): Promise<TrainingPosition> {
    const losses = await this.log.position();
    const times = this.clock.position();
    return {
      epochsDone,
      batchesDone,
      orderRandom: this.orderRandom,
      random: this.random.position,
      dropoutRandom: this.dropouts.map((dropout) => dropout.randomPosition),
      optimizerIterations: this.optimizer.iterations,
      epochLoss: losses.epochLoss,
      windowLoss: losses.windowLoss,
      windowBatches: losses.windowBatches,
      trainSeconds: times.trainSeconds,
      epochSeconds: times.epochSeconds,
      activeSeconds: times.activeSeconds,
      logLines: losses.logLines,
    };
  }

  /** The run's result from the epoch that ended it, with the best epoch's weights when the job keeps those. */
  private async finish(end: TrainedEnd): Promise<TrainingStop> {
    const { stopping, stoppingState, bestWeights } = this;
    let { evaluation } = end;
    const keptEpoch = stopping?.restoreBest && bestWeights ? stoppingState.bestEpoch : end.epoch;
    if (bestWeights && keptEpoch !== end.epoch) {
      // The result is the kept weights': the test set is evaluated on them again.
      this.model.setWeights(bestWeights);
      evaluation = await evaluate(this.model, this.splits.test, this.dataset.shape, this.classes);
    }
    const result: TrainingResult = {
      evaluation,
      trainSeconds: round(this.clock.trainSeconds, 3),
      replicaTimes: this.group?.times ?? null,
      earlyStopping: stopping
        ? {
            metric: stopping.metric,
            bestEpoch: stoppingState.bestEpoch,
            bestValue: stoppingState.bestValue,
            stoppedAfterEpoch: end.reason === 'earlyStopped' ? end.epoch : null,
            keptEpoch,
          }
        : null,
    };
    return end.reason === 'completed'
      ? { reason: 'completed', result }
      : { reason: end.reason, afterEpoch: end.epoch, result };
  }
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

/** Where the optimizer stands: this thread's TrainingStep's, or the replicas' between them. */
interface OptimizerState {
  readonly iterations: number;
  /** The optimizer's state, as StepOptimizer.state gives it (none before the first step), the caller's to dispose. */
  optimizerState(): Promise<tf.Tensor[]>;
}

async function restore(
  checkpoint: TrainingCheckpoint,
  model: tfl.LayersModel,
  step: TrainingStep,
  dropouts: SeededDropout[],
  settings: JobSettings,
): Promise<void> {
  const weights = model.getWeights();
  const { position, tensors } = checkpoint;
  const mismatch = (problem: string) => new CheckpointError(`the checkpoint doesn't fit this model: ${problem}`);
  const trained = model.trainableWeights.map((weight) => weight.read());
  const state = Array.from({ length: stateSlots(settings.optimizer) }, () => trained).flat();
  if (tensors.length !== weights.length + state.length) {
    throw mismatch(
      `${tensors.length} tensors for ${weights.length} weights and ${state.length} tensors of ${settings.optimizer} state`,
    );
  }
  if (position.dropoutRandom.length !== dropouts.length)
    throw mismatch(`${position.dropoutRandom.length} dropout generators for ${dropouts.length} layers`);
  const reference = [...weights, ...state];
  reference.forEach((tensor, index) => {
    const stored = tensors[index] as tf.Tensor;
    if (!tf.util.arraysEqual(stored.shape, tensor.shape))
      throw mismatch(`tensor ${index} has shape [${stored.shape}], the model's [${tensor.shape}]`);
  });
  model.setWeights(tensors.slice(0, weights.length));
  await step.setOptimizerState(position.optimizerIterations, tensors.slice(weights.length));
  dropouts.forEach((dropout, index) => {
    dropout.randomPosition = position.dropoutRandom[index] as number;
  });
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
