import * as tf from '@tensorflow/tfjs-core';
import type { Logger } from 'pino';
import { backendDevice } from '../backends/device.ts';
import type { ConcreteBackend } from '../backends/select.ts';
import type { EpochSummary, JobProgress } from '../contract/job.ts';
import type { JobSettings } from '../contract/job-request.ts';
import { batchesPerEpoch, progressAt, trainingImages } from '../contract/progress.ts';
import type * as tfl from '@tensorflow/tfjs-layers';
import { loadArtifact, saveArtifact } from '../models/artifact.ts';
import { applyBase } from '../bases/apply-base.ts';
import { startFromImagenet } from '../bases/imagenet.ts';
import { loadBase, readBaseDescription } from '../bases/stored-base.ts';
import { builtInBaseOf } from '../bases/built-in.ts';
import { networkFor, networkParameters } from '../models/build-for-job.ts';
import { initialiseFrom } from '../models/fine-tune.ts';
import { JobAttempt } from '../store/job-attempt.ts';
import type { ExperimentStore } from '../store/experiment-store.ts';
import type { JobStore } from '../store/job-store.ts';
import { goesOn, isRung, rungScore } from '../training/successive-halving.ts';
import {
  CheckpointError,
  type CheckpointStore,
  type TrainingCheckpoint,
  type TrainingPosition,
} from '../training/checkpoint.ts';
import { replicasOn, type ReplicaFault } from '../training/replicas/replica-group.ts';
import { classMetrics } from '../training/class-metrics.ts';
import { train, type TrainedStop, type TrainingListener, type TrainingStop } from '../training/trainer.ts';
import type { Dataset } from '../datasets/dataset.ts';
import type { DatasetCache } from './dataset-cache.ts';

export interface TrainingJobDependencies {
  readonly store: JobStore;
  /** For the runs of experiments that stop weak runs (successive halving). */
  readonly experiments: ExperimentStore;
  readonly datasets: DatasetCache;
  readonly artifactsDir: string;
  /** Where uploaded bases are (BASES_DIR): a job's initFrom may name one. */
  readonly basesDir: string;
  readonly checkpoints: CheckpointStore;
  /** Seconds of training between checkpoints within an epoch; 0: at epoch ends only. */
  readonly checkpointSeconds: number;
  readonly backend: ConcreteBackend;
  /** Replicas to train each job with (TRAIN_THREADS), where the backend allows. */
  readonly trainThreads: number;
  readonly replicaFault: ReplicaFault | null;
  readonly logger: Logger;
  /** True once the worker is shutting down: running jobs checkpoint and are handed back. */
  readonly shuttingDown: () => boolean;
}

/**
 * `ended`: completed, failed or cancelled; `handedBack`: checkpointed and `queued` again, for the
 * queue to give to another worker; `superseded`: another worker took the job over meanwhile;
 * `skipped`: nothing to run.
 */
export type TrainingJobOutcome = 'ended' | 'handedBack' | 'superseded' | 'skipped';

/**
 * The worker's BullMQ processor: trains one job from `queued` to `completed`, `failed` or (when
 * the API cancelled it meanwhile) `cancelled`, going on from its checkpoint when an earlier worker
 * trained part of it. Every failure ends in the job's record with a readable message: a job never
 * stays `running` because its worker hit an error.
 */
export async function processTrainingJob(
  jobId: string,
  dependencies: TrainingJobDependencies,
): Promise<TrainingJobOutcome> {
  const { store, logger, checkpoints } = dependencies;
  const log = logger.child({ jobId });
  const job = await store.get(jobId);
  if (!job) {
    log.warn('queued job has no record; skipped');
    return 'skipped';
  }
  // Also a take-over: a job whose worker died is handed to another worker, still `running`.
  const started = await store.lifecycle.start(jobId, job.startedAt ? undefined : new Date());
  if (!started.ok) {
    log.info({ state: started.current }, 'job is no longer waiting; skipped');
    // Cancelled while it was handed back: nobody will resume it.
    await checkpoints.remove(jobId);
    return 'skipped';
  }
  const attempt = new JobAttempt(store, jobId, started.attempt);
  let outcome: TrainingJobOutcome;
  try {
    outcome = await trainAndRecord(
      attempt,
      job.request,
      job.experimentId ?? null,
      job.startedAt !== null,
      dependencies,
      log,
    );
  } catch (error) {
    log.error({ err: error }, 'job failed');
    outcome = await failAttempt(attempt, error instanceof Error ? error.message : String(error));
  }
  // A superseded attempt leaves the checkpoint to the attempt that took over.
  if (outcome === 'ended') await checkpoints.remove(jobId);
  return outcome;
}

async function trainAndRecord(
  attempt: JobAttempt,
  settings: JobSettings,
  experimentId: string | null,
  startedBefore: boolean,
  dependencies: TrainingJobDependencies,
  log: Logger,
): Promise<TrainingJobOutcome> {
  const { jobId } = attempt;
  const dataset = await dependencies.datasets.get(settings.dataset);
  const model = networkFor(settings, dataset.shape, dataset.classNames.length);
  const resumeFrom = startedBefore ? await usableCheckpoint(jobId, dependencies.checkpoints, log) : null;
  try {
    // A checkpoint holds every weight; without one, a fine-tuning job starts from its source's.
    if (settings.initFrom !== null && !resumeFrom) {
      if (builtInBaseOf(settings) !== null) {
        const layers = startFromImagenet(model);
        log.info({ initFrom: settings.initFrom, layers }, 'starting from the ImageNet base');
      } else {
        await startFrom(model, settings.initFrom, dependencies, log);
      }
    }
    if (startedBefore) {
      const position = resumeFrom?.position;
      const perEpoch = batchesPerEpoch(trainingImages(settings), settings.batchSize);
      await attempt.rewind(
        { logLines: position?.logLines ?? 0, epochs: position?.epochsDone ?? 0 },
        progressOf(position, settings, perEpoch),
      );
      log.info(
        { from: position ? { epochsDone: position.epochsDone, batchesDone: position.batchesDone } : 'start' },
        'taking the job over',
      );
    }
    const listener: TrainingListener = {
      onLog: (line, progress) => attempt.appendLog(line, progress),
      onProgress: (progress) => attempt.setProgress(progress),
      onEpoch: (summary, progress) => {
        log.info(summary, 'epoch done');
        return attempt.appendEpoch(summary, progress);
      },
      ...(experimentId === null
        ? {}
        : {
            endAfterEpoch: (summary: EpochSummary) => weakAtRung(dependencies.experiments, experimentId, summary, log),
          }),
      nextStep: async () => {
        const status = await attempt.status();
        if (status === 'stopped') return 'cancelled';
        if (status === 'superseded') return 'superseded';
        return dependencies.shuttingDown() ? 'pause' : 'continue';
      },
      // Never over the checkpoint of an attempt that took over.
      onCheckpoint: async (checkpoint) => {
        if ((await attempt.status()) === 'superseded') return;
        await dependencies.checkpoints.save(jobId, checkpoint);
      },
    };
    const { backend } = dependencies;
    const { replicas, reason } = replicasOn(backend, dependencies.trainThreads);
    if (reason) log.info(reason);
    log.info({ settings, backend, replicas }, 'training');
    const stop = await train(model, dataset, settings, listener, {
      resumeFrom: resumeFrom ?? undefined,
      checkpointSeconds: dependencies.checkpointSeconds,
      parallel: { replicas, backend, fault: dependencies.replicaFault },
    });
    return await recordStop(attempt, stop, { model, dataset, settings, replicas }, dependencies, log);
  } finally {
    model.dispose();
    if (resumeFrom) tf.dispose([...resumeFrom.tensors, ...(resumeFrom.bestWeights ?? [])]);
  }
}

/** Acts on why training stopped: the job ends, is handed back, or is left to the worker that took it over. */
async function recordStop(
  attempt: JobAttempt,
  stop: TrainingStop,
  run: TrainedRun,
  dependencies: TrainingJobDependencies,
  log: Logger,
): Promise<TrainingJobOutcome> {
  switch (stop.reason) {
    case 'cancelled':
      log.info('training stopped: the job was cancelled');
      return 'ended';
    case 'superseded':
      log.warn(
        'training stopped: another worker took the job over (this one stopped answering for longer than JOB_LOCK_SECONDS)',
      );
      return 'superseded';
    case 'paused': {
      const handedBack = await attempt.handBack();
      log.info({ handedBack }, 'training paused at a checkpoint: the worker is shutting down');
      return handedBack ? 'handedBack' : await endedUnlessSuperseded(attempt);
    }
    case 'timeLimit':
      log.error({ reason: stop.message }, 'job failed');
      return await failAttempt(attempt, stop.message);
    case 'completed':
    case 'earlyStopped':
    case 'terminated':
      return await complete(attempt, stop, run, dependencies, log);
  }
}

/** What a training run was, for its result. */
interface TrainedRun {
  readonly model: tfl.LayersModel;
  readonly dataset: Dataset;
  readonly settings: JobSettings;
  readonly replicas: number;
}

/** Saves the trained model as the job's artifact and completes the job with its result, unless another worker took it over. */
async function complete(
  attempt: JobAttempt,
  stop: TrainedStop,
  run: TrainedRun,
  dependencies: TrainingJobDependencies,
  log: Logger,
): Promise<TrainingJobOutcome> {
  const { model, dataset, settings, replicas } = run;
  if ((await attempt.status()) === 'superseded') return 'superseded';
  await saveArtifact(dependencies.artifactsDir, model, {
    jobId: attempt.jobId,
    dataset: settings.dataset,
    shape: dataset.shape,
    classNames: dataset.classNames,
    imageKind: dataset.imageKind,
  });
  const { evaluation, trainSeconds, earlyStopping } = stop.result;
  const completed = await attempt.complete({
    testAccuracy: evaluation.accuracy,
    testLoss: evaluation.loss,
    correct: evaluation.correct,
    total: evaluation.total,
    perClassAccuracy: evaluation.perClassAccuracy,
    confusionMatrix: evaluation.confusionMatrix,
    classNames: [...dataset.classNames],
    ...classMetrics(evaluation.confusionMatrix, dataset.classNames),
    params: networkParameters(model),
    trainSeconds,
    backend: dependencies.backend,
    device: backendDevice(),
    replicas,
    ...(earlyStopping ? { earlyStopping } : {}),
    ...(stop.reason === 'terminated' ? { terminatedAfterEpoch: stop.afterEpoch } : {}),
  });
  log.info({ testAccuracy: evaluation.accuracy, recorded: completed }, 'job completed');
  return completed ? 'ended' : await endedUnlessSuperseded(attempt);
}

/**
 * Whether the experiment's successive halving ends this run after the epoch just recorded: at a
 * rung, when its score by the experiment's metric is not among the best of the runs that reached
 * the rung (its own summary is already in the store, so it is among them).
 */
async function weakAtRung(
  experiments: ExperimentStore,
  experimentId: string,
  summary: EpochSummary,
  log: Logger,
): Promise<boolean> {
  // Every run's epochs are read only at a rung: most epochs cost one read of the experiment.
  const judged = await experiments.earlyTermination(experimentId);
  if (!judged || !isRung(judged.rule, summary.epoch)) return false;
  const scores = (await experiments.rungSummaries(experimentId, summary.epoch)).map((reached) =>
    rungScore(judged.metric, reached),
  );
  const score = rungScore(judged.metric, summary);
  if (goesOn(judged.rule, score, scores)) return false;
  log.info(
    { experimentId, epoch: summary.epoch, metric: judged.metric, score, reached: scores.length },
    'successive halving ends this run: below the best runs at its rung',
  );
  return true;
}

/** Sets the weights of `model` from an uploaded base, or from the model the job `source` trained (fine-tuning). */
async function startFrom(
  model: tfl.LayersModel,
  source: string,
  { artifactsDir, basesDir }: Pick<TrainingJobDependencies, 'artifactsDir' | 'basesDir'>,
  log: Logger,
): Promise<void> {
  const isBase = await readBaseDescription(basesDir, source).then(
    () => true,
    () => false,
  );
  const what = isBase ? `the base ${source}` : `the model of job ${source}`;
  const loaded = await (isBase ? loadBase(basesDir, source) : loadArtifact(artifactsDir, source)).catch(
    (error: unknown) => {
      throw new Error(
        `${what} to start from can't be loaded: ${error instanceof Error ? error.message : String(error)}`,
      );
    },
  );
  try {
    const { newHead } = isBase ? applyBase(model, loaded.model) : initialiseFrom(model, loaded.model);
    log.info(
      { initFrom: source, newHead },
      `starting from the weights of ${isBase ? 'an uploaded base' : 'another job'}${newHead ? ', with a new last layer' : ''}`,
    );
  } finally {
    loaded.model.dispose();
  }
}

/** Ends the attempt's job failed with `message`, unless it was cancelled or taken over meanwhile. */
async function failAttempt(attempt: JobAttempt, message: string): Promise<'ended' | 'superseded'> {
  return (await attempt.fail(message)) ? 'ended' : await endedUnlessSuperseded(attempt);
}

/**
 * The outcome of an attempt whose last change (complete, fail, hand back) was refused:
 * `superseded` when another worker took the job over, else `ended` (it was cancelled meanwhile).
 */
async function endedUnlessSuperseded(attempt: JobAttempt): Promise<'ended' | 'superseded'> {
  return (await attempt.status()) === 'superseded' ? 'superseded' : 'ended';
}

/** The job's checkpoint; none (train from the start) when it has none or it is unusable, which is logged. */
async function usableCheckpoint(
  jobId: string,
  checkpoints: CheckpointStore,
  log: Logger,
): Promise<TrainingCheckpoint | null> {
  try {
    return await checkpoints.load(jobId);
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    log.warn({ err: error }, `${error.message}; the job trains again from the start`);
    return null;
  }
}

/** Progress at a checkpoint's position, or at the start without one. */
function progressOf(position: TrainingPosition | undefined, settings: JobSettings, perEpoch: number): JobProgress {
  if (!position) return progressAt(settings.epochs, perEpoch, 0, 0);
  return position.batchesDone > 0
    ? progressAt(settings.epochs, perEpoch, position.epochsDone + 1, position.batchesDone)
    : progressAt(settings.epochs, perEpoch, position.epochsDone, position.epochsDone === 0 ? 0 : perEpoch);
}
