/**
 * `npm run bench -- --history`: what a job costs Redis, and GET /jobs with a long history. On a
 * real service with a private Redis (its memory is this bench's alone), it trains one LeNet-5
 * job on MNIST through HTTP (every default but `epochs`) and weighs each of its keys
 * (MEMORY USAGE); then it writes `jobs` ended jobs with that job's result through the job store
 * (created, started, completed: the same scripts a worker runs), weighs Redis again, and times
 * GET /jobs over HTTP: a walk through every page of 100, and pages of 20 at random cursors. Last,
 * one retention sweep deletes them all, timed, and Redis should be back to where it was.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { JobRemoval } from '../src/api/job-removal.ts';
import { Predictor } from '../src/api/predictor.ts';
import { RetentionSweep } from '../src/api/retention.ts';
import type { Job, JobList } from '../src/contract/job.ts';
import { createTrainingQueue } from '../src/queue/training-queue.ts';
import { embeddedRedisSocket } from '../src/store/embedded-redis.ts';
import { ExperimentStore } from '../src/store/experiment-store.ts';
import { JobStore } from '../src/store/job-store.ts';
import { withBenchService } from './bench-service.ts';
import { trainedJob } from './predict.ts';
import { msSince, percentile } from './stats.ts';

export interface HistoryBenchRequest {
  readonly backend: string;
  readonly cifarPath: string | undefined;
  /** Ended jobs to fill the store with. */
  readonly jobs: number;
}

export interface HistoryReport {
  readonly trained: {
    readonly epochs: number;
    readonly logLines: number;
    readonly events: number;
    readonly keyBytes: Record<string, number>;
  };
  readonly jobs: number;
  readonly bytesPerEndedJob: number;
  readonly fillSeconds: number;
  readonly pages: {
    readonly what: string;
    readonly requests: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly maxMs: number;
  }[];
  readonly sweep: { readonly removed: number; readonly seconds: number; readonly bytesLeft: number };
}

/** Writes in flight at once while filling the store: enough to keep Redis busy, few enough to stay in memory. */
const fillConcurrency = 500;

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

/**
 * GET of a page, its JSON parsed. Bare fetch rather than the client, whose check of every job
 * against the contract would add its own milliseconds to what is timed: the server's answer.
 */
async function page(url: string): Promise<JobList> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as JobList;
}

async function timed(urls: readonly string[]): Promise<number[]> {
  const times: number[] = [];
  for (const url of urls) {
    const start = performance.now();
    await page(url);
    times.push(msSince(start));
  }
  return times;
}

export async function runHistoryBench(
  request: HistoryBenchRequest,
  onProgress: (line: string) => void,
): Promise<HistoryReport> {
  return withBenchService(request, async (client, config) => {
    const url = client.baseUrl;
    const redis = new Redis({ path: embeddedRedisSocket(config.DATA_DIR) });
    const queue = createTrainingQueue(redis, config.KEY_PREFIX);
    try {
      const store = new JobStore(redis, config.KEY_PREFIX);
      const real: Job = await trainedJob(client, { model: 'lenet5', dataset: 'mnist', epochs: 1, seed: 0 });
      const keyBytes: Record<string, number> = {};
      for (const key of store.keys.ofJob(real.id))
        keyBytes[key.slice(store.keys.job(real.id).length) || 'record'] = Number(
          await redis.memory('USAGE', key, 'SAMPLES', 0),
        );
      const events = await redis.xlen(store.keys.events(real.id));
      onProgress(
        `trained one LeNet-5 epoch: ${real.logs.length} log lines, ${events} events; filling the store with ${request.jobs} ended jobs`,
      );

      const before = await usedMemory(redis);
      const fillStart = performance.now();
      const { result } = real;
      if (!result) throw new Error('the trained job has no result');
      for (let done = 0; done < request.jobs; done += fillConcurrency) {
        await Promise.all(
          Array.from({ length: Math.min(fillConcurrency, request.jobs - done) }, async () => {
            const id = randomUUID();
            await store.create(id, real.request, real.progress, new Date());
            const started = await store.lifecycle.start(id, new Date());
            if (!started.ok || !(await store.lifecycle.complete(id, started.attempt, result)).ok)
              throw new Error(`job ${id} could not be ended`);
          }),
        );
      }
      const fillSeconds = msSince(fillStart) / 1000;
      const bytesPerEndedJob = ((await usedMemory(redis)) - before) / request.jobs;
      onProgress(`filled in ${fillSeconds.toFixed(1)} s; timing GET /jobs`);

      const walk: string[] = [];
      const walkTimes: number[] = [];
      for (let cursor: string | null = ''; cursor !== null;) {
        const start = performance.now();
        const answer: JobList = await page(`${url}/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
        walkTimes.push(msSince(start));
        walk.push(...answer.jobs.map((job) => job.id));
        cursor = answer.next;
      }
      if (walk.length !== request.jobs + 1 || new Set(walk).size !== walk.length)
        throw new Error(`the walk saw ${walk.length} jobs (${new Set(walk).size} different), not ${request.jobs + 1}`);
      const sequence = Number(await redis.get(store.keys.sequence()));
      const random = Array.from(
        { length: 1000 },
        () => `${url}/jobs?limit=20&cursor=${1 + Math.floor(Math.random() * sequence)}`,
      );
      const filtered = Array.from(
        { length: 1000 },
        () => `${url}/jobs?state=completed&limit=20&cursor=${1 + Math.floor(Math.random() * sequence)}`,
      );
      const pages = [
        { what: 'every page in turn, limit=100', times: walkTimes },
        { what: 'random cursors, limit=20', times: await timed(random) },
        { what: 'random cursors, state=completed, limit=20', times: await timed(filtered) },
      ].map(({ what, times }) => ({
        what,
        requests: times.length,
        p50Ms: percentile(times, 0.5),
        p99Ms: percentile(times, 0.99),
        maxMs: Math.max(...times),
      }));

      onProgress('sweeping them all');
      const removal = new JobRemoval(
        store,
        queue,
        new Predictor(config.ARTIFACTS_DIR, 1, 1),
        config.ARTIFACTS_DIR,
        config.CHECKPOINTS_DIR,
      );
      const sweeper = new RetentionSweep({
        redis,
        store,
        experiments: new ExperimentStore(redis, config.KEY_PREFIX),
        removal,
        retentionDays: 1,
        intervalMs: 60_000,
        log: pino({ level: 'silent' }),
      });
      const sweepStart = performance.now();
      const removed = (await sweeper.sweep(new Date(Date.now() + 2 * 86_400_000)))?.jobs ?? 0;
      const sweep = { removed, seconds: msSince(sweepStart) / 1000, bytesLeft: (await usedMemory(redis)) - before };
      return {
        trained: { epochs: real.epochs.length, logLines: real.logs.length, events, keyBytes },
        jobs: request.jobs,
        bytesPerEndedJob,
        fillSeconds,
        pages,
        sweep,
      };
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
}

export function formatHistoryBench(report: HistoryReport): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const total = Object.values(report.trained.keyBytes).reduce((sum, bytes) => sum + bytes, 0);
  return [
    `One LeNet-5/MNIST job of ${report.trained.epochs} epoch(s) (${report.trained.logLines} log lines, ${report.trained.events} events): ${kib(total)} in Redis`,
    '',
    '| key | bytes |',
    '| --- | ---: |',
    ...Object.entries(report.trained.keyBytes).map(([key, bytes]) => `| ${key} | ${bytes} |`),
    '',
    `${report.jobs} ended jobs written in ${report.fillSeconds.toFixed(1)} s: ${kib(report.bytesPerEndedJob)} of Redis memory each (record with result, 4 events, index entries)`,
    '',
    '| GET /jobs | requests | p50 | p99 | max |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...report.pages.map(
      (row) =>
        `| ${row.what} | ${row.requests} | ${row.p50Ms.toFixed(1)} ms | ${row.p99Ms.toFixed(1)} ms | ${row.maxMs.toFixed(1)} ms |`,
    ),
    '',
    `One retention sweep removed ${report.sweep.removed} jobs in ${report.sweep.seconds.toFixed(1)} s (${(report.sweep.removed / report.sweep.seconds).toFixed(0)} jobs/s); Redis memory afterwards ${report.sweep.bytesLeft >= 0 ? '+' : ''}${kib(report.sweep.bytesLeft)} from before the fill`,
  ].join('\n');
}
