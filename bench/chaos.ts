/**
 * `npm run bench -- --chaos`: a soak of the job lifecycle under random worker deaths, bounded in
 * time. On one API (this process) and `workers` worker processes sharing one Redis and one
 * checkpoints folder, it trains `jobs` small seeded jobs undisturbed (the reference), then the
 * same jobs again while a loop SIGKILLs a worker every few seconds and starts a new one in its
 * place. Every job must then end `completed` exactly once, with the losses and accuracies of the
 * undisturbed run of its seed, no log line twice, and no checkpoint left behind. The short version
 * (test/integration/chaos.test.ts) is 4 tiny jobs, 2 workers and one kill.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hasEnded, TrainerClient } from '../src/client/index.ts';
import { loadConfig } from '../src/config.ts';
import { isJobEventType, parseJobEvent } from '../src/contract/events.ts';
import type { Job } from '../src/contract/job.ts';
import type { JobRequestInput } from '../src/contract/job-request.ts';
import { createLogger } from '../src/logger.ts';
import { SeededRandom } from '../src/random.ts';
import { startService } from '../src/service.ts';
import { embeddedRedisSocket } from '../src/store/embedded-redis.ts';
import { JobStore } from '../src/store/job-store.ts';
import { Redis } from 'ioredis';
import { startServiceProcess, type ServiceProcess } from '../test/support/processes.ts';
import { msSince } from './stats.ts';

export interface ChaosRequest {
  readonly jobs: number;
  readonly workers: number;
  /** The mean time between kills; each wait is drawn between half and one and a half of it. */
  readonly killEveryMs: number;
  /** Stop killing after this many (null: until every job has ended). */
  readonly maxKills: number | null;
  /** The whole run's bound: past it the soak stops and reports what had not ended. */
  readonly timeLimitSeconds: number;
  /** Each job's settings but its seed (job i has seed i + 1). */
  readonly job: Omit<JobRequestInput, 'seed'>;
  /** A Redis to share (with its own KEY_PREFIX), or null for a private one in the run's folder. */
  readonly redis: { readonly url: string; readonly prefix: string } | null;
  /** Drives which worker is killed, and when. */
  readonly seed: number;
}

export interface ChaosReport {
  readonly jobs: number;
  readonly workers: number;
  readonly kills: number;
  /** Jobs taken over from a killed worker (`running → running`), and the rewinds that came with them. */
  readonly takeovers: number;
  readonly rewinds: number;
  readonly referenceSeconds: number;
  readonly chaosSeconds: number;
  /** Every way a job differed from what it must be; empty when the soak passed. */
  readonly failures: readonly string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runChaos(
  request: ChaosRequest,
  onProgress: (line: string) => void = () => undefined,
): Promise<ChaosReport> {
  const folder = await mkdtemp(path.join(tmpdir(), 'trainer-chaos-'));
  const prefix = request.redis?.prefix ?? 'chaos';
  const shared: Record<string, string> = {
    KEY_PREFIX: prefix,
    DATA_DIR: path.join(folder, 'data'),
    ARTIFACTS_DIR: path.join(folder, 'artifacts'),
    CHECKPOINTS_DIR: path.join(folder, 'checkpoints'),
    TRAINER_BACKEND: 'wasm',
    TRAIN_THREADS: '1',
    // A killed worker's job is taken over within seconds, resumed from a checkpoint at most a second old.
    JOB_LOCK_SECONDS: '2',
    CHECKPOINT_INTERVAL_SECONDS: '1',
    // Kills land on the same job again and again here; a job fails only for the soak's own reasons.
    JOB_MAX_TAKEOVERS: '1000',
    ...(request.redis ? { REDIS_URL: request.redis.url } : {}),
  };
  const deadline = Date.now() + request.timeLimitSeconds * 1000;
  const failures: string[] = [];
  const config = loadConfig({
    ...shared,
    ROLE: 'api',
    HOST: '127.0.0.1',
    PORT: '0',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'error',
  });
  // First, so that its private Redis (when there is no REDIS_URL) is there for the workers.
  const api = await startService(config, createLogger(config));
  const redis = request.redis
    ? new Redis(request.redis.url)
    : new Redis({ path: embeddedRedisSocket(shared.DATA_DIR as string) });
  const store = new JobStore(redis, prefix);
  const workers: ServiceProcess[] = Array.from({ length: request.workers }, () =>
    startServiceProcess({ ...shared, ROLE: 'worker' }),
  );
  const client = new TrainerClient(api.url ?? '');
  try {
    const submitAll = async () => {
      const ids: string[] = [];
      for (let i = 0; i < request.jobs; i++) {
        const job = await client.submit({ ...request.job, seed: i + 1 });
        ids.push(job.id);
      }
      return ids;
    };
    const jobsOf = (ids: readonly string[]) => Promise.all(ids.map((id) => client.job(id)));
    const allEnded = async (ids: readonly string[]): Promise<Job[] | null> => {
      for (;;) {
        const jobs = await jobsOf(ids);
        if (jobs.every(hasEnded)) return jobs;
        if (Date.now() > deadline) return null;
        await sleep(250);
      }
    };

    const referenceStart = performance.now();
    const references = await allEnded(await submitAll());
    const referenceSeconds = msSince(referenceStart) / 1000;
    if (!references) throw new Error(`the undisturbed jobs did not end within ${request.timeLimitSeconds} s`);
    for (const job of references)
      if (job.state !== 'completed')
        throw new Error(`undisturbed job ${job.id} ended ${job.state}: ${job.error?.message ?? ''}`);
    onProgress(
      `${request.jobs} undisturbed jobs completed in ${referenceSeconds.toFixed(1)} s; again, killing workers`,
    );

    const chaosStart = performance.now();
    const ids = await submitAll();
    const random = new SeededRandom(request.seed);
    let kills = 0;
    let ended: Job[] | null = null;
    const killing = (async () => {
      // The first kill once something is training, so that it hits a job mid-way.
      while (!ended && !(await jobsOf(ids)).some((job) => job.state === 'running' && job.logs.length > 0))
        await sleep(20);
      while (!ended && Date.now() < deadline && (request.maxKills === null || kills < request.maxKills)) {
        // A random worker among those training a job now, if any is.
        const running = new Set((await jobsOf(ids)).filter((job) => job.state === 'running').map((job) => job.id));
        const busy = workers
          .map((worker, index) => ({ worker, index }))
          .filter(({ worker }) => {
            const trained = worker.logs.filter((line) => line.msg === 'training').at(-1)?.jobId;
            return typeof trained === 'string' && running.has(trained);
          });
        const candidates = busy.length > 0 ? busy : workers.map((worker, index) => ({ worker, index }));
        const victim = candidates[random.below(candidates.length)];
        if (victim) {
          await victim.worker.stop('SIGKILL');
          workers[victim.index] = startServiceProcess({ ...shared, ROLE: 'worker' });
          kills++;
          onProgress(`killed worker ${victim.index + 1} (kill ${kills})`);
        }
        const wait = request.killEveryMs * (0.5 + random.next());
        for (const until = Date.now() + wait; !ended && Date.now() < until;) await sleep(50);
      }
    })();
    ended = await allEnded(ids);
    await killing;
    const chaosSeconds = msSince(chaosStart) / 1000;

    let takeovers = 0;
    let rewinds = 0;
    if (!ended)
      failures.push(
        `not every job ended within ${request.timeLimitSeconds} s: ${(await jobsOf(ids)).filter((job) => !hasEnded(job)).length} still queued or running`,
      );
    const endedIds = (await store.events.endedSince('0-0', 1_000_000)).map((entry) => entry.id);
    for (const [index, job] of (ended ?? []).entries()) {
      const reference = references[index] as Job;
      const name = `job ${index + 1} (seed ${index + 1})`;
      if (job.state !== 'completed') failures.push(`${name} ended ${job.state}: ${job.error?.message ?? ''}`);
      const keys = job.logs.map((line) => `${line.epoch}/${line.batch}`);
      if (new Set(keys).size !== keys.length) failures.push(`${name} has a log line twice`);
      if (JSON.stringify(job.logs) !== JSON.stringify(reference.logs))
        failures.push(`${name}'s losses differ from the undisturbed run's`);
      if (
        JSON.stringify(job.epochs.map((epoch) => [epoch.epoch, epoch.loss, epoch.testAccuracy])) !==
        JSON.stringify(reference.epochs.map((epoch) => [epoch.epoch, epoch.loss, epoch.testAccuracy]))
      ) {
        failures.push(`${name}'s epochs differ from the undisturbed run's`);
      }
      if (job.result?.testAccuracy !== reference.result?.testAccuracy)
        failures.push(
          `${name}'s test accuracy ${job.result?.testAccuracy} is not the undisturbed ${reference.result?.testAccuracy}`,
        );
      const events = (await store.events.read(job.id, '0-0', 100_000)).flatMap((event) =>
        isJobEventType(event.type) ? [parseJobEvent(event.id, event.type, JSON.parse(event.data))] : [],
      );
      const states = events.flatMap((event) =>
        event.type === 'state' ? [`${event.data.previous}→${event.data.state}`] : [],
      );
      takeovers += states.filter((change) => change === 'running→running').length;
      rewinds += events.filter((event) => event.type === 'rewind').length;
      if (
        states.filter((change) => change.endsWith('→completed')).length !== 1 ||
        events.filter((event) => event.type === 'end').length !== 1
      )
        failures.push(`${name} did not complete exactly once: ${states.join(', ')}`);
      if (endedIds.filter((id) => id === job.id).length !== 1)
        failures.push(`${name} is not in the stream of ended jobs exactly once`);
    }
    // A job's checkpoint goes a moment after it ends (or when a new worker starts, if its worker died in between).
    const checkpoints = () => readdir(shared.CHECKPOINTS_DIR as string).catch(() => []);
    for (const until = Date.now() + 5000; (await checkpoints()).length > 0 && Date.now() < until;) await sleep(100);
    const left = await checkpoints();
    if (left.length > 0) failures.push(`checkpoints left behind: ${left.join(', ')}`);
    return {
      jobs: request.jobs,
      workers: request.workers,
      kills,
      takeovers,
      rewinds,
      referenceSeconds,
      chaosSeconds,
      failures,
    };
  } finally {
    await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
    redis.disconnect();
    await api.close();
    await rm(folder, { recursive: true, force: true });
  }
}

export function formatChaos(report: ChaosReport): string {
  return [
    `${report.jobs} jobs on ${report.workers} worker processes: undisturbed in ${report.referenceSeconds.toFixed(1)} s; again in ${report.chaosSeconds.toFixed(1)} s with ${report.kills} SIGKILLs, ${report.takeovers} take-overs, ${report.rewinds} rewinds`,
    report.failures.length === 0
      ? 'PASS: every job completed exactly once, with the losses and accuracies of its undisturbed run, no log line twice, no checkpoint left'
      : ['FAIL:', ...report.failures.map((failure) => `  - ${failure}`)].join('\n'),
  ].join('\n');
}
