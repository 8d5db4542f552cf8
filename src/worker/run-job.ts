import type { Logger } from 'pino';
import type { JobSettings } from '../contract/job-request.ts';
import { saveArtifact } from '../models/artifact.ts';
import { models } from '../models/index.ts';
import type { JobStore } from '../queue/job-store.ts';
import type { DatasetCache } from './dataset-cache.ts';
import { train, type TrainingListener } from './trainer.ts';

export interface JobRunnerDependencies {
  readonly store: JobStore;
  readonly datasets: DatasetCache;
  readonly artifactsDir: string;
  readonly backend: string;
  readonly logger: Logger;
}

/**
 * Runs one job from `queued` to `completed`, `failed` or (when the API cancelled it meanwhile)
 * `cancelled`. Every failure ends in the job's record with a readable message: a job never stays
 * `running` because its worker hit an error.
 */
export async function runJob(jobId: string, dependencies: JobRunnerDependencies): Promise<void> {
  const { store, logger } = dependencies;
  const log = logger.child({ jobId });
  const job = await store.get(jobId);
  if (!job) {
    log.warn('queued job has no record; skipped');
    return;
  }
  // `running` too: a job whose worker died is handed to another worker and starts over.
  const started = await store.transition(jobId, ['queued', 'running'], 'running', { startedAt: new Date().toISOString() });
  if (!started.ok) {
    log.info({ state: started.current }, 'job is no longer waiting; skipped');
    return;
  }
  if (started.previous === 'running') await store.clearHistory(jobId);
  try {
    await trainAndRecord(jobId, job.request, dependencies, log);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error({ err: error }, 'job failed');
    await store.transition(jobId, ['running'], 'failed', { finishedAt: new Date().toISOString(), error: { message } });
  }
}

async function trainAndRecord(jobId: string, settings: JobSettings, dependencies: JobRunnerDependencies, log: Logger): Promise<void> {
  const { store } = dependencies;
  const dataset = await dependencies.datasets.get(settings.dataset);
  const model = models[settings.model].build(dataset.shape, dataset.classNames.length, settings.seed);
  try {
    const listener: TrainingListener = {
      onLog: (line, progress) => store.appendLog(jobId, line, progress),
      onProgress: (progress) => store.setProgress(jobId, progress),
      onEpoch: (summary, progress) => {
        log.info(summary, 'epoch done');
        return store.appendEpoch(jobId, summary, progress);
      },
      shouldStop: async () => (await store.state(jobId)) !== 'running',
    };
    log.info({ settings, backend: dependencies.backend }, 'training');
    const outcome = await train(model, dataset, settings, listener);
    if (outcome.kind === 'stopped') {
      log.info('training stopped: the job was cancelled');
      return;
    }
    await saveArtifact(dependencies.artifactsDir, model, {
      jobId,
      dataset: dataset.name,
      shape: dataset.shape,
      classNames: dataset.classNames,
    });
    const { evaluation } = outcome;
    const completed = await store.transition(jobId, ['running'], 'completed', {
      finishedAt: new Date().toISOString(),
      result: {
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
      },
    });
    log.info({ testAccuracy: evaluation.accuracy, recorded: completed.ok }, 'job completed');
  } finally {
    model.dispose();
  }
}
