import * as tf from '@tensorflow/tfjs-core';
import type { Logger } from 'pino';
import type { JobProgress } from '../contract/job.ts';
import type { JobSettings } from '../contract/job-request.ts';
import { batchesPerEpoch, progressAt } from '../contract/progress.ts';
import { saveArtifact } from '../models/artifact.ts';
import { models } from '../models/index.ts';
import { JobRun, type RunStatus } from '../queue/job-run.ts';
import type { JobStore } from '../queue/job-store.ts';
import { CheckpointError, type CheckpointStore, type TrainingCheckpoint, type TrainingPosition } from '../training/checkpoint.ts';
import type { DatasetCache } from './dataset-cache.ts';
import { train, type TrainingListener } from '../training/trainer.ts';

export interface JobRunnerDependencies {
  readonly store: JobStore;
  readonly datasets: DatasetCache;
  readonly artifactsDir: string;
  readonly checkpoints: CheckpointStore;
  /** Seconds of training between checkpoints within an epoch; 0: at epoch ends only. */
  readonly checkpointSeconds: number;
  readonly backend: string;
  readonly logger: Logger;
  /** True once the worker is shutting down: running jobs checkpoint and are handed back. */
  readonly shuttingDown: () => boolean;
}

/**
 * `ended`: completed, failed or cancelled; `handedBack`: checkpointed and `queued` again, for the
 * queue to give to another worker; `superseded`: another worker took the job over meanwhile;
 * `skipped`: nothing to run.
 */
export type JobRunOutcome = 'ended' | 'handedBack' | 'superseded' | 'skipped';

/**
 * Runs one job from `queued` to `completed`, `failed` or (when the API cancelled it meanwhile)
 * `cancelled`, going on from its checkpoint when an earlier worker trained part of it. Every
 * failure ends in the job's record with a readable message: a job never stays `running` because
 * its worker hit an error.
 */
export async function runJob(jobId: string, dependencies: JobRunnerDependencies): Promise<JobRunOutcome> {
  const { store, logger, checkpoints } = dependencies;
  const log = logger.child({ jobId });
  const job = await store.get(jobId);
  if (!job) {
    log.warn('queued job has no record; skipped');
    return 'skipped';
  }
  // `running` too: a job whose worker died is handed to another worker, which takes it over.
  const started = await store.transition(jobId, ['queued', 'running'], 'running', job.startedAt ? {} : { startedAt: new Date().toISOString() });
  if (!started.ok) {
    log.info({ state: started.current }, 'job is no longer waiting; skipped');
    // Cancelled while it was handed back: nobody will resume it.
    await checkpoints.remove(jobId);
    return 'skipped';
  }
  const run = new JobRun(store, jobId, started.attempt);
  let outcome: JobRunOutcome;
  try {
    outcome = await trainAndRecord(run, job.request, job.startedAt !== null, dependencies, log);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error({ err: error }, 'job failed');
    outcome = (await run.fail(message)) || (await run.status()) !== 'superseded' ? 'ended' : 'superseded';
  }
  // A superseded run leaves the checkpoint to the run that took over.
  if (outcome === 'ended') await checkpoints.remove(jobId);
  return outcome;
}

async function trainAndRecord(run: JobRun, settings: JobSettings, startedBefore: boolean, dependencies: JobRunnerDependencies, log: Logger): Promise<JobRunOutcome> {
  const { jobId } = run;
  const dataset = await dependencies.datasets.get(settings.dataset);
  const model = models[settings.model].build(dataset.shape, dataset.classNames.length, settings.seed);
  const resumeFrom = startedBefore ? await usableCheckpoint(jobId, dependencies.checkpoints, log) : null;
  try {
    if (startedBefore) {
      const position = resumeFrom?.position;
      const perEpoch = batchesPerEpoch(settings.trainLimit, settings.batchSize);
      await run.rewind({ logLines: position?.logLines ?? 0, epochs: position?.epochsDone ?? 0 }, progressOf(position, settings, perEpoch));
      log.info({ from: position ? { epochsDone: position.epochsDone, batchesDone: position.batchesDone } : 'start' }, 'taking the job over');
    }
    // What the trainer was last told, to say why it stopped.
    let status = 'current' as RunStatus;
    const listener: TrainingListener = {
      onLog: (line, progress) => run.appendLog(line, progress),
      onProgress: (progress) => run.setProgress(progress),
      onEpoch: (summary, progress) => {
        log.info(summary, 'epoch done');
        return run.appendEpoch(summary, progress);
      },
      nextStep: async () => {
        status = await run.status();
        if (status !== 'current') return 'stop';
        return dependencies.shuttingDown() ? 'pause' : 'continue';
      },
      // Never over the checkpoint of a run that took over.
      onCheckpoint: async (checkpoint) => {
        if ((await run.status()) === 'superseded') return;
        await dependencies.checkpoints.save(jobId, checkpoint);
      },
    };
    log.info({ settings, backend: dependencies.backend }, 'training');
    const outcome = await train(model, dataset, settings, listener, { resumeFrom: resumeFrom ?? undefined, checkpointSeconds: dependencies.checkpointSeconds });
    if (outcome.kind === 'stopped') {
      if (status === 'superseded') {
        log.warn('training stopped: another worker took the job over (this one stopped answering for longer than JOB_LOCK_SECONDS)');
        return 'superseded';
      }
      log.info('training stopped: the job was cancelled');
      return 'ended';
    }
    if (outcome.kind === 'paused') {
      const handedBack = await run.handBack();
      log.info({ handedBack }, 'training paused at a checkpoint: the worker is shutting down');
      return handedBack ? 'handedBack' : (await run.status()) === 'superseded' ? 'superseded' : 'ended';
    }
    if ((await run.status()) === 'superseded') return 'superseded';
    await saveArtifact(dependencies.artifactsDir, model, {
      jobId,
      dataset: dataset.name,
      shape: dataset.shape,
      classNames: dataset.classNames,
    });
    const { evaluation } = outcome;
    const completed = await run.complete({
      testAccuracy: evaluation.accuracy,
      testLoss: evaluation.loss,
      correct: evaluation.correct,
      total: evaluation.total,
      perClassAccuracy: evaluation.perClassAccuracy,
      confusionMatrix: evaluation.confusionMatrix,
      classNames: [...dataset.classNames],
      params: model.countParams(),
      trainSeconds: outcome.trainSeconds,
      backend: dependencies.backend,
    });
    log.info({ testAccuracy: evaluation.accuracy, recorded: completed }, 'job completed');
    return completed || (await run.status()) !== 'superseded' ? 'ended' : 'superseded';
  } finally {
    model.dispose();
    if (resumeFrom) tf.dispose([...resumeFrom.tensors]);
  }
}

/** The job's checkpoint; none (train from the start) when it has none or it is unusable, which is logged. */
async function usableCheckpoint(jobId: string, checkpoints: CheckpointStore, log: Logger): Promise<TrainingCheckpoint | null> {
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
