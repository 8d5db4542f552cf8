/**
 * Faults a training job must survive, with workers as separate processes: a worker killed
 * mid-epoch, a worker asked to shut down, a cancel while training, a corrupt checkpoint, a
 * replica thread that throws or ends. Every job trains on 2 data-parallel replicas and has the
 * same seeded settings, so each must end exactly like an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { hasEnded } from '../../src/client/index.ts';
import type { JobEvent } from '../../src/contract/events.ts';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import type { Job, LossLogLine } from '../../src/contract/job.ts';
import { JobStore } from '../../src/store/job-store.ts';
import { clientOf, followJob, submitJob, waitForEnd, waitForJob } from '../support/jobs.ts';
import { startServiceProcess, type ServiceProcess } from '../support/processes.ts';
import { sharedEnvironment, startTestService, testRedisUrl, waitFor, type TestService } from '../support/service.ts';

/** 100 batches an epoch (16 images a replica), a log line every 5: about a second an epoch, long enough to hit mid-epoch. */
const jobBody: JobRequestInput = {
  model: 'lenet5',
  dataset: 'mnist',
  epochs: 5,
  batchSize: 32,
  trainLimit: 3200,
  testLimit: 500,
  logEvery: 5,
  seed: 5,
};
const linesPerEpoch = 20;

describe('worker faults', () => {
  const prefix = `test-${randomUUID()}`;
  let folder: string;
  let shared: Record<string, string>;
  let api: TestService;
  const workers: ServiceProcess[] = [];
  let reference: Job;

  const startWorker = (environment: Record<string, string> = {}) => {
    const worker = startServiceProcess({ ...shared, ROLE: 'worker', ...environment });
    workers.push(worker);
    return worker;
  };
  const submit = async (request: JobRequestInput = jobBody): Promise<string> => (await submitJob(api, request)).id;
  const getJob = (id: string): Promise<Job> => clientOf(api).job(id);
  const ended = (id: string) => waitForEnd(api, id, { timeoutMs: 90_000 });
  const reached = (id: string, epoch: number, batch: number) =>
    waitForJob(
      api,
      id,
      (job) => {
        assert.ok(!hasEnded(job), `job ended (${job.state}) before the fault was injected`);
        const { progress } = job;
        return progress.epoch > epoch || (progress.epoch === epoch && progress.batch >= batch);
      },
      { intervalMs: 20 },
    );
  // A job's checkpoint goes just after the job has ended, so a moment after its state says so.
  const noCheckpointsLeft = (why: string) =>
    waitFor(
      `no checkpoints left (${why})`,
      async () => ((await readdir(shared.CHECKPOINTS_DIR as string)).length === 0 ? true : null),
      5000,
      50,
    );
  const logsOf = (worker: ServiceProcess, message: string, id: string) =>
    worker.logs.filter((line) => line.msg === message && line.jobId === id);

  /**
   * What a client of the job's event stream sees: its state changes, rewinds, and the loss log it
   * ends up with when it drops what each rewind tells it to (as the dashboard and CLI do).
   */
  async function watched(id: string): Promise<{ states: string[]; rewinds: JobEvent[]; logs: LossLogLine[] }> {
    const events = await followJob(api, id);
    const logs: LossLogLine[] = [];
    for (const event of events) {
      if (event.type === 'log') logs.push(event.data.line);
      if (event.type === 'rewind') logs.length = Math.min(logs.length, event.data.logLines);
    }
    return {
      states: events.flatMap((event) => (event.type === 'state' ? [`${event.data.previous}→${event.data.state}`] : [])),
      rewinds: events.filter((event) => event.type === 'rewind'),
      logs,
    };
  }

  /** A finished job's history: each epoch once, in order, and the loss log without a line twice. */
  function assertWholeHistory(job: Job): void {
    assert.equal(job.state, 'completed', job.error?.message);
    assert.deepEqual(
      job.epochs.map((epoch) => epoch.epoch),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      job.logs.map((line) => `${line.epoch}/${line.batch}`),
      reference.logs.map((line) => `${line.epoch}/${line.batch}`),
      'every log line once, in order',
    );
    assert.equal(job.logs.length, 5 * linesPerEpoch);
  }

  /** The same seed, data and backend: the same losses and accuracies as the run that was never interrupted. */
  function assertLikeUninterrupted(job: Job): void {
    assert.deepEqual(job.logs, reference.logs);
    assert.deepEqual(
      job.epochs.map((epoch) => epoch.testAccuracy),
      reference.epochs.map((epoch) => epoch.testAccuracy),
    );
    assert.equal(job.result?.testAccuracy, reference.result?.testAccuracy);
  }

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-faults-'));
    shared = {
      ...sharedEnvironment(folder, prefix),
      // A killed worker's job is taken over within seconds instead of minutes.
      JOB_LOCK_SECONDS: '2',
      CHECKPOINT_INTERVAL_SECONDS: '0',
      TRAIN_THREADS: '2',
    };
    api = await startTestService({ ...shared, ROLE: 'api' });
  });

  after(async () => {
    await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
    await api?.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('a worker killed (SIGKILL) in epoch 3 of 5: another resumes from the checkpoint of epoch 2 and the job ends as if never interrupted', async () => {
    const first = startWorker();
    reference = await ended(await submit());
    assert.equal(reference.state, 'completed', reference.error?.message);
    assert.equal(reference.result?.replicas, 2);
    assert.deepEqual(
      logsOf(first, 'training', reference.id).map((line) => line.replicas),
      [2],
    );

    const id = await submit();
    const beforeKill = await reached(id, 3, 30);
    await first.stop('SIGKILL');
    const second = startWorker();
    const job = await ended(id);

    assertWholeHistory(job);
    assertLikeUninterrupted(job);
    assert.deepEqual(
      job.epochs.slice(0, 2),
      beforeKill.epochs.slice(0, 2),
      'epochs 1 and 2 are the killed worker’s, kept',
    );
    assert.deepEqual(
      logsOf(second, 'taking the job over', id).map((line) => line.from),
      [{ epochsDone: 2, batchesDone: 0 }],
      'resumed at the end of epoch 2',
    );
    assert.deepEqual(
      logsOf(second, 'epoch done', id).map((line) => line.epoch),
      [3, 4, 5],
      'epochs 1 and 2 were not trained again',
    );
    const stream = await watched(id);
    assert.deepEqual(stream.states, ['null→queued', 'queued→running', 'running→running', 'running→completed']);
    assert.deepEqual(
      stream.rewinds.map((event) => event.type === 'rewind' && [event.data.logLines, event.data.epochs]),
      [[2 * linesPerEpoch, 2]],
    );
    assert.deepEqual(stream.logs, job.logs, 'a watcher that applies the rewind sees the job’s log');
    await noCheckpointsLeft('a finished job leaves no checkpoint');
    assert.equal(await second.stop('SIGTERM'), 0);
  });

  it('a worker told to stop (SIGTERM) checkpoints within a batch, hands its job back and exits 0; the next worker goes on from that batch', async () => {
    const worker = startWorker();
    const id = await submit();
    await reached(id, 2, 25);
    const exitCode = await worker.stop('SIGTERM');
    assert.equal(exitCode, 0);
    const paused = logsOf(worker, 'training paused at a checkpoint: the worker is shutting down', id);
    assert.deepEqual(
      paused.map((line) => line.handedBack),
      [true],
    );
    const handedBack = await getJob(id);
    assert.equal(handedBack.state, 'queued', 'back in the queue for another worker');
    assert.equal(handedBack.progress.epoch, 2);

    const next = startWorker();
    const job = await ended(id);
    const [takeover] = logsOf(next, 'taking the job over', id);
    const from = takeover?.from as { epochsDone: number; batchesDone: number } | undefined;
    assert.equal(from?.epochsDone, 1);
    // Mid-epoch: it stopped after the batch it was training, not at the end of the epoch.
    assert.ok(
      from && from.batchesDone >= 25 && from.batchesDone < 100,
      `resumed at batch ${from?.batchesDone} of epoch 2`,
    );
    assert.deepEqual(
      job.logs.slice(0, handedBack.logs.length),
      handedBack.logs,
      'the log written before the hand-back is kept',
    );
    assertWholeHistory(job);
    assertLikeUninterrupted(job);
    const stream = await watched(id);
    assert.deepEqual(stream.states, [
      'null→queued',
      'queued→running',
      'running→queued',
      'queued→running',
      'running→completed',
    ]);
    assert.deepEqual(
      stream.rewinds.map((event) => event.type === 'rewind' && event.data.logLines),
      [handedBack.logs.length],
      'nothing logged was lost',
    );
    assert.deepEqual(stream.logs, job.logs);
  });

  it('a running job that is cancelled stops within a batch, ends cancelled with its logs, and the worker takes the next job', async () => {
    const worker = workers.at(-1) as ServiceProcess;
    const id = await submit();
    await reached(id, 1, 50);
    await clientOf(api).cancel(id);
    await waitFor(
      'the worker to stop training',
      async () => (logsOf(worker, 'training stopped: the job was cancelled', id).length > 0 ? true : null),
      10_000,
    );
    const job = await getJob(id);
    assert.equal(job.state, 'cancelled');
    assert.ok(job.logs.length >= 10, `its loss log is kept (${job.logs.length} lines)`);
    assert.deepEqual(job.epochs, []);
    const next = await ended(await submit({ ...jobBody, epochs: 1 }));
    assert.equal(next.state, 'completed', next.error?.message);
  });

  it('a worker whose job was taken over while it was unresponsive stops within a batch and writes nothing more', async () => {
    const worker = workers.at(-1) as ServiceProcess;
    const id = await submit();
    await reached(id, 2, 10);
    const redis = new Redis(testRedisUrl);
    try {
      // What the queue does when the worker's lock runs out: the job starts a new run elsewhere.
      const takeover = await new JobStore(redis, prefix).lifecycle.start(id);
      assert.ok(takeover.ok);
    } finally {
      redis.disconnect();
    }
    await waitFor(
      'the superseded run to stop',
      async () =>
        logsOf(
          worker,
          'training stopped: another worker took the job over (this one stopped answering for longer than JOB_LOCK_SECONDS)',
          id,
        ).length > 0
          ? true
          : null,
      10_000,
      50,
    );
    const frozen = await getJob(id);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const later = await getJob(id);
    assert.equal(later.logs.length, frozen.logs.length, 'no log line after it stopped');
    assert.deepEqual(later.progress, frozen.progress);
    assert.equal(later.state, 'running', 'the job is the new run’s now; the old one neither ended nor failed it');
    assert.deepEqual(
      await readdir(path.join(shared.CHECKPOINTS_DIR as string, id)),
      ['checkpoint.json', 'tensors.bin'],
      'the checkpoint is left to the new run',
    );
    await clientOf(api).cancel(id);
  });

  it('a job recorded but never queued (its API process died in between) is queued when an API process starts, and trained', async () => {
    const redis = new Redis(testRedisUrl);
    const id = randomUUID();
    try {
      const store = new JobStore(redis, prefix);
      const template = await getJob(await submit({ ...jobBody, epochs: 1 }));
      assert.equal(await store.create(id, template.request, template.progress, new Date()), 'created');
    } finally {
      redis.disconnect();
    }
    const restarted = await startTestService({ ...shared, ROLE: 'api' });
    try {
      const job = await ended(id);
      assert.equal(job.state, 'completed', job.error?.message);
      assert.deepEqual(job.logs, reference.logs.slice(0, linesPerEpoch));
    } finally {
      // Not restarted.close(): that would delete the keys this file's other services share.
      await restarted.service.close();
    }
  });

  it('a corrupt checkpoint is reported and never loaded: the job taken over trains from the start', async () => {
    const worker = workers.at(-1) as ServiceProcess;
    await worker.stop('SIGTERM');
    // A job whose worker died after writing a damaged checkpoint: running, with a history.
    const id = await submit({ ...jobBody, epochs: 1 });
    const redis = new Redis(testRedisUrl);
    try {
      const store = new JobStore(redis, prefix);
      await store.lifecycle.start(id, new Date());
      await store.appendLog(id, { epoch: 1, batch: 10, loss: 9 }, (await getJob(id)).progress);
    } finally {
      redis.disconnect();
    }
    const damaged = path.join(shared.CHECKPOINTS_DIR as string, id);
    await mkdir(damaged, { recursive: true });
    await writeFile(path.join(damaged, 'checkpoint.json'), '{"format":"trainer-checkpoint/1","jobId":');
    // Left behind by jobs that have ended, or are gone: a starting worker deletes them.
    for (const stale of [reference.id, 'no-such-job'])
      await mkdir(path.join(shared.CHECKPOINTS_DIR as string, stale), { recursive: true });

    const next = startWorker();
    const job = await ended(id);
    assert.equal(job.state, 'completed', job.error?.message);
    assert.deepEqual(
      job.logs,
      reference.logs.slice(0, linesPerEpoch),
      'trained from the start, the stale line dropped',
    );
    const warnings = next.logs.filter((line) => line.jobId === id && line.level === 40).map((line) => String(line.msg));
    assert.ok(
      warnings.some((message) =>
        /checkpoint of job .* is unusable: checkpoint.json is not a checkpoint description of this service; the job trains again from the start/.test(
          message,
        ),
      ),
      `warnings: ${warnings.join(' | ')}`,
    );
    await noCheckpointsLeft('only live jobs keep checkpoints');
  });

  it('a replica that throws, or whose thread ends, mid-epoch fails its job with that message; the worker trains the next job', async () => {
    await (workers.at(-1) as ServiceProcess).stop('SIGTERM');
    // Every job's second replica fails at its batch 15; a job of 10 batches never gets there.
    const short = { ...jobBody, epochs: 1, trainLimit: 320 };
    for (const [fault, message] of [
      ['throw:15', /^replica 1 failed: injected fault \(TEST_REPLICA_FAULT\) at batch 15$/],
      ['exit:15', /^replica 1 ended \(exit code 3\)$/],
    ] as const) {
      const worker = startWorker({ TEST_REPLICA_FAULT: fault });
      const failed = await ended(await submit({ ...jobBody, epochs: 1 }));
      assert.equal(failed.state, 'failed');
      assert.match(failed.error?.message ?? '', message);
      assert.deepEqual(
        failed.logs.map((line) => line.batch),
        [5, 10],
        'the lines before the fault are kept',
      );
      const next = await ended(await submit(short));
      assert.equal(next.state, 'completed', next.error?.message);
      assert.deepEqual(
        next.logs.map((line) => line.batch),
        [5, 10],
      );
      assert.equal(await worker.stop('SIGTERM'), 0);
    }
    await noCheckpointsLeft('failed jobs keep no checkpoint');
  });
});
