/**
 * Redis restarted under running work: a private redis-server (append-only file, fsync on every
 * write, so what it acknowledged survives being killed) is killed while a job trains, another
 * waits in the queue and a client polls, then started again on the same port and folder. The API
 * and the worker are separate processes that are never restarted: the API has to answer 503 in
 * the contract's error shape while Redis is away and serve again by itself once it is back, and
 * the worker has to wait for Redis and go on, so that every job ends completed, trained once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { errorBody } from '../../src/contract/errors.ts';
import type { Job } from '../../src/contract/job.ts';
import { progressAt } from '../../src/contract/progress.ts';
import { JobStore } from '../../src/store/job-store.ts';
import { submitJob, waitForEnd, waitForJob } from '../support/jobs.ts';
import { freePort } from '../support/ports.ts';
import { startServiceProcess, type ServiceProcess } from '../support/processes.ts';
import { request, waitFor, type JsonResponse } from '../support/service.ts';

/** 50 batches of 64 per epoch and a log line every 5: a few seconds a job, ten log lines an epoch. */
const settings = {
  model: 'lenet5',
  dataset: 'mnist',
  epochs: 2,
  batchSize: 64,
  trainLimit: 3200,
  testLimit: 200,
  logEvery: 5,
  seed: 1,
} as const;
const expectedLogs = Array.from({ length: settings.epochs }, (_, e) =>
  Array.from(
    { length: settings.trainLimit / settings.batchSize / settings.logEvery },
    (_, l) => `${e + 1}:${(l + 1) * settings.logEvery}`,
  ),
).flat();

/** A redis-server of the test's own: the shared one keeps nothing on disk, so it can't be restarted. */
class PrivateRedis {
  private server: ChildProcess | null = null;

  constructor(
    readonly port: number,
    private readonly folder: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it (again) on the same port and folder, and resolves once it answers PING. */
  async start(): Promise<void> {
    const server = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.folder,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    this.server = server;
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // a refused connection is what waitFor retries
    try {
      await waitFor(`redis-server on port ${this.port}`, async () => {
        assert.equal(server.exitCode, null, 'redis-server exited while starting');
        return (
          (await probe.connect().then(
            () => probe.ping(),
            () => null,
          )) === 'PONG' || null
        );
      });
    } finally {
      probe.disconnect();
    }
  }

  /** Kills it without warning, as a crash would: only what it wrote to its append-only file survives. */
  async kill(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  }
}

/** Where the restart stands: each change of Redis's state lies between two phases. */
type Phase = 'up' | 'stopping' | 'away' | 'starting' | 'back';

/** One answer of the polling client, with the phase when it asked and when the answer came. */
interface Answer {
  readonly asked: Phase;
  readonly answered: Phase;
  readonly response: JsonResponse<unknown> | null;
}

describe('Redis restarted while a job trains and a client polls', () => {
  const prefix = `test-${randomUUID()}`;
  let folder: string;
  let redis: PrivateRedis;
  /** The test's own connection, to record a job the way an API process would and to read event streams. */
  let inspector: Redis;
  let api: ServiceProcess;
  let worker: ServiceProcess;
  let url: string;
  /** Ends the polling client: in `after` too, so that a failed test doesn't leave it polling forever. */
  const polling = new AbortController();

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-redis-restart-'));
    redis = new PrivateRedis(await freePort(), folder);
    await redis.start();
    inspector = new Redis(redis.url);
    inspector.on('error', () => undefined); // it reconnects by itself; it sends nothing while Redis is away
    const shared = {
      REDIS_URL: redis.url,
      KEY_PREFIX: prefix,
      DATA_DIR: path.join(folder, 'data'),
      ARTIFACTS_DIR: path.join(folder, 'artifacts'),
      CHECKPOINTS_DIR: path.join(folder, 'checkpoints'),
      TRAINER_BACKEND: 'wasm',
    };
    // The poller asks every 100 ms, past the default limit of 600 requests a minute.
    api = startServiceProcess({ ...shared, ROLE: 'api', HOST: '127.0.0.1', PORT: '0', RATE_LIMIT_PER_MINUTE: '0' });
    worker = startServiceProcess({ ...shared, ROLE: 'worker' });
    url = await waitFor('the API to listen', async () => {
      const line = api.logs.find((entry) => String(entry.msg).startsWith('API listening on '));
      return line ? String(line.msg).slice('API listening on '.length) : null;
    });
    await waitFor(
      'the worker to wait for jobs',
      async () => worker.logs.some((entry) => entry.msg === 'worker waiting for training jobs') || null,
    );
  });

  after(async () => {
    polling.abort();
    // At once, not SIGTERM: after a failure while Redis was away, a worker would wait for it to hand its job back.
    await worker?.stop('SIGKILL');
    await api?.stop('SIGKILL');
    inspector?.disconnect();
    await redis?.kill();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('the API answers 503 while Redis is away and recovers by itself; every job completes, trained once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await submitJob(url, settings)).id);
    const [running, queued] = ids as [string, string];

    let phase: Phase = 'up';
    const answers: Answer[] = [];
    const poller = (async () => {
      while (!polling.signal.aborted) {
        const asked = phase;
        const response = await request(`${url}/jobs/${running}`).catch(() => null);
        answers.push({ asked, answered: phase, response });
        await delay(100);
      }
    })();

    const midJob = await waitForJob(url, running, (job) => job.logs.length >= 3, { intervalMs: 50 });
    assert.equal(midJob.state, 'running');
    assert.ok(midJob.logs.length < expectedLogs.length, 'the job ended before Redis could be killed under it');
    assert.equal((await request<Job>(`${url}/jobs/${queued}`)).body.state, 'queued');
    // What a POST /jobs leaves when Redis goes away between recording its job and queueing it.
    const stranded = randomUUID();
    const notStarted = progressAt(settings.epochs, midJob.progress.batchesPerEpoch, 0, 0);
    assert.equal(
      await new JobStore(inspector, prefix).create(stranded, midJob.request, notStarted, new Date()),
      'created',
    );
    ids.push(stranded);

    phase = 'stopping';
    await redis.kill();
    phase = 'away';
    const assertUnavailable = (response: JsonResponse<unknown>, what: string) => {
      assert.equal(response.status, 503, `${what}: ${JSON.stringify(response.body)}`);
      const body = errorBody.strict().parse(response.body);
      assert.match(body.error, /Redis/, `${what} says which component is away`);
    };
    // All at once, the moment Redis is gone: some reach the API before its client has noticed.
    const submit = () => request<Job>(`${url}/jobs`, { method: 'POST', json: settings });
    const [byId, submitted, list, health] = await Promise.all([
      request(`${url}/jobs/${running}`),
      submit(),
      request(`${url}/jobs`),
      request<{ status: string; redis: string }>(`${url}/health`),
    ]);
    assertUnavailable(byId, 'GET /jobs/:id');
    assertUnavailable(submitted, 'POST /jobs');
    assertUnavailable(list, 'GET /jobs');
    assert.equal(health.status, 503);
    assert.deepEqual([health.body.status, health.body.redis], ['unavailable', 'down']);
    // Long enough for the worker, mid-epoch, to reach its next Redis write and have to wait there.
    await delay(2000);

    phase = 'starting';
    await redis.start();
    phase = 'back';
    await waitFor(
      'the API to serve again by itself',
      async () => (await request(`${url}/jobs/${running}`)).status === 200 || null,
      30_000,
      100,
    );
    const late = await submit();
    assert.equal(late.status, 201, 'a job is accepted again once Redis is back');
    ids.push(late.body.id);

    const finished = await Promise.all(ids.map((id) => waitForEnd(url, id, { timeoutMs: 120_000, intervalMs: 200 })));
    polling.abort();
    await poller;

    assert.equal(api.child.exitCode, null, 'the API process kept running');
    assert.equal(worker.child.exitCode, null, 'the worker process kept running');

    assert.ok(
      answers.some((answer) => answer.asked === 'away' && answer.answered === 'away'),
      'the poller asked while Redis was away',
    );
    for (const answer of answers) {
      const during = `Redis ${answer.asked} → ${answer.answered}`;
      assert.ok(answer.response, `the API answered every poll (${during})`);
      const { status, body } = answer.response;
      const steady = answer.asked === answer.answered ? answer.asked : null;
      if (steady === 'up') assert.equal(status, 200, during);
      else if (steady === 'away') assert.equal(status, 503, during);
      // Overlapping a change it may see either side; just after Redis is back, the API may not have reconnected yet.
      else assert.ok(status === 200 || status === 503, `poll answered ${status} (${during})`);
      if (status === 503) errorBody.strict().parse(body);
    }
    assert.equal(answers.at(-1)?.response?.status, 200);

    for (const job of finished) {
      assert.equal(job.state, 'completed', `${job.id}: ${job.error?.message ?? job.state}`);
      assert.deepEqual(
        job.epochs.map((epoch) => epoch.epoch),
        [1, 2],
        `${job.id}: each epoch once`,
      );
      assert.deepEqual(
        job.logs.map((line) => `${line.epoch}:${line.batch}`),
        expectedLogs,
        `${job.id}: each log line once, in order`,
      );
    }
    const trained = worker.logs.filter((entry) => entry.msg === 'training').map((entry) => String(entry.jobId));
    assert.deepEqual(trained.sort(), [...ids].sort(), 'each job trained exactly once');
    const requeued = api.logs
      .filter((entry) => entry.msg === 'queued jobs that were recorded but never queued')
      .flatMap((entry) => entry.jobIds);
    assert.deepEqual(requeued, [stranded], 'the API queued the stranded job when Redis came back');

    const listed = await request<{ jobs: Job[] }>(`${url}/jobs?limit=100`);
    assert.deepEqual(listed.body.jobs.map((job) => job.id).sort(), [...ids].sort(), 'no job lost, none added');

    // The job's event stream (`<KEY_PREFIX>:job:<id>:events`, docs/architecture.md#redis-keys)
    // records every state change: a job handed to a second run after the restart would show
    // running → running.
    for (const id of ids) {
      const entries = await inspector.xrange(`${prefix}:job:${id}:events`, '-', '+');
      const states = entries.flatMap(([, [, type, , data]]) => {
        if (type !== 'state') return [];
        const change = JSON.parse(data ?? '{}') as { state: string; previous: string | null };
        return [`${change.previous}→${change.state}`];
      });
      assert.deepEqual(states, ['null→queued', 'queued→running', 'running→completed'], `${id}: state changes`);
    }
  });
});
