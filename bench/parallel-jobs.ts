/**
 * `npm run bench -- --parallel-jobs N`: the whole service's training throughput with N jobs queued
 * at once, trained by one worker process and then by a pool of N (WORKER_CONCURRENCY=N). Each run
 * is a real service (API, queue, job store, workers) on a private Redis in a fresh folder, fed
 * through the HTTP API as a user would, so it counts everything a job costs: queueing, data set
 * loading in each process, Redis writes, evaluation.
 */
import type { Job } from '../src/contract/job.ts';
import type { ModelName } from '../src/contract/names.ts';
import { withBenchService } from './bench-service.ts';

export interface ParallelJobsRequest {
  readonly model: ModelName;
  readonly dataset: string;
  readonly epochs: number;
  readonly trainLimit: number | null;
  readonly testLimit: number | null;
  readonly backend: string;
  readonly cifarPath: string | undefined;
}

export interface ParallelJobsRun {
  readonly processes: number;
  readonly jobs: readonly Job[];
  /** From the first job's start to the last job's end, so the pool's start-up doesn't count. */
  readonly wallSeconds: number;
  readonly trainedImages: number;
}

/** Trains `jobs` identical seeded jobs on a service with `processes` worker processes. */
export async function runParallelJobs(
  request: ParallelJobsRequest,
  jobs: number,
  processes: number,
): Promise<ParallelJobsRun> {
  return withBenchService({ ...request, environment: { WORKER_CONCURRENCY: String(processes) } }, async (client) => {
    const body = {
      model: request.model,
      dataset: request.dataset,
      epochs: request.epochs,
      seed: 0,
      ...(request.trainLimit ? { trainLimit: request.trainLimit } : {}),
      ...(request.testLimit ? { testLimit: request.testLimit } : {}),
    };
    const ids: string[] = [];
    for (let i = 0; i < jobs; i++) ids.push((await client.submit(body)).id);
    const ended = await Promise.all(ids.map((id) => client.waitForJob(id)));
    const failed = ended.find((job) => job.state !== 'completed');
    if (failed) throw new Error(`job ${failed.id} ended ${failed.state}: ${failed.error?.message ?? ''}`);
    const starts = ended.map((job) => Date.parse(job.startedAt ?? ''));
    const ends = ended.map((job) => Date.parse(job.finishedAt ?? ''));
    return {
      processes,
      jobs: ended,
      wallSeconds: (Math.max(...ends) - Math.min(...starts)) / 1000,
      trainedImages: ended.reduce((sum, job) => sum + job.request.trainLimit * job.request.epochs, 0),
    };
  });
}

export function formatParallelJobs(runs: readonly ParallelJobsRun[]): string {
  const [single] = runs;
  const lines = [
    '| worker processes | jobs | first start → last end | images/s, all jobs | speed-up | each job: training s, images/s, test accuracy |',
    '| ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const run of runs) {
    const throughput = run.trainedImages / run.wallSeconds;
    const speedUp = single ? throughput / (single.trainedImages / single.wallSeconds) : 1;
    const perJob = run.jobs
      .map((job) => {
        const result = job.result;
        if (!result) return '–';
        const images = job.request.trainLimit * job.request.epochs;
        return `${result.trainSeconds.toFixed(1)} s, ${(images / result.trainSeconds).toFixed(0)}/s, ${(result.testAccuracy * 100).toFixed(2)}%`;
      })
      .join('; ');
    lines.push(
      `| ${run.processes} | ${run.jobs.length} | ${run.wallSeconds.toFixed(1)} s | ${throughput.toFixed(0)} | ${speedUp.toFixed(2)}× | ${perJob} |`,
    );
  }
  return lines.join('\n');
}
