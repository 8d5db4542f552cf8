import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { EpochSummary, JobProgress, JobResult, JobState, LossLogLine } from '../../src/contract/job.ts';
import { jobStates } from '../../src/contract/job.ts';
import type { JobSettings } from '../../src/contract/job-request.ts';
import { storedJobSettings } from '../support/job-settings.ts';
import { JobStore } from '../../src/store/job-store.ts';
import { deleteKeys, testRedisUrl } from '../support/service.ts';

const prefix = `test-${randomUUID()}`;
const clients: Redis[] = [];
let store: JobStore;
let redis: Redis;

function client(): Redis {
  const connection = new Redis(testRedisUrl);
  clients.push(connection);
  return connection;
}

before(() => {
  redis = client();
  store = new JobStore(redis, prefix);
});

after(async () => {
  await deleteKeys(prefix);
  const [, left] = await redis.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 10_000);
  for (const connection of clients) connection.disconnect();
  assert.deepEqual(left, [], 'the test leaves no keys behind');
});

const request: JobSettings = {
  ...storedJobSettings,
  epochs: 3,
  seed: 1234,
  trainLimit: 6000,
  testLimit: 1000,
  logEvery: 10,
};

const progress = (epoch: number, batch: number): JobProgress => ({
  epoch,
  epochs: 3,
  batch,
  batchesPerEpoch: 94,
  fraction: ((epoch - 1) * 94 + batch) / (3 * 94),
});
const initialProgress: JobProgress = { epoch: 0, epochs: 3, batch: 0, batchesPerEpoch: 94, fraction: 0 };

const result: JobResult = {
  testAccuracy: 0.75,
  testLoss: 0.81,
  correct: 3,
  total: 4,
  perClassAccuracy: [1, 0.5],
  confusionMatrix: [
    [2, 0],
    [1, 1],
  ],
  classNames: ['0', '1'],
  params: 44_426,
  trainSeconds: 12.5,
  backend: 'wasm',
};

let counter = 0;
async function newJob(createdAt = new Date()): Promise<string> {
  const id = `job-${++counter}-${randomUUID()}`;
  await store.create(id, request, initialProgress, createdAt);
  return id;
}

/** The states whose index holds `id` (besides `all`), read straight from Redis. */
async function indexedUnder(id: string): Promise<JobState[]> {
  const found: JobState[] = [];
  for (const state of jobStates) {
    if ((await redis.zscore(`${prefix}:jobs:${state}`, id)) !== null) found.push(state);
  }
  return found;
}

async function listedIds(state: JobState | undefined): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await store.list({ ...(state ? { state } : {}), limit: 100, ...(cursor ? { cursor } : {}) });
    ids.push(...page.jobs.map((job) => job.id));
    if (page.next === null) return ids;
    cursor = page.next;
  }
}

describe('JobStore', () => {
  it('create then get returns the whole record of a queued job', async () => {
    const createdAt = new Date('2024-05-06T07:08:09.123Z');
    const id = await newJob(createdAt);
    const job = await store.get(id);
    assert.deepEqual(job, {
      id,
      state: 'queued',
      request,
      progress: initialProgress,
      result: null,
      error: null,
      createdAt: '2024-05-06T07:08:09.123Z',
      startedAt: null,
      finishedAt: null,
      logs: [],
      epochs: [],
    });
    assert.equal(await store.state(id), 'queued');
    assert.deepEqual(await indexedUnder(id), ['queued']);
  });

  it('get and state of an unknown id are null', async () => {
    assert.equal(await store.get('no-such-job'), null);
    assert.equal(await store.state('no-such-job'), null);
  });

  describe('transitions', () => {
    it('queued → running → completed, setting startedAt, result and finishedAt', async () => {
      const id = await newJob();
      const startedAt = '2024-05-06T08:00:00.000Z';
      assert.deepEqual(await store.lifecycle.start(id, new Date(startedAt)), {
        ok: true,
        previous: 'queued',
        attempt: 1,
      });
      let job = await store.get(id);
      assert.equal(job?.state, 'running');
      assert.equal(job?.startedAt, startedAt);
      assert.equal(job?.finishedAt, null);
      assert.equal(job?.result, null);

      const finishedAt = '2024-05-06T08:05:00.000Z';
      const finalProgress: JobProgress = { epoch: 3, epochs: 3, batch: 94, batchesPerEpoch: 94, fraction: 1 };
      await store.setProgress(id, finalProgress);
      assert.deepEqual(await store.lifecycle.complete(id, 1, result, new Date(finishedAt)), {
        ok: true,
        previous: 'running',
        attempt: 1,
      });
      job = await store.get(id);
      assert.equal(job?.state, 'completed');
      assert.deepEqual(job?.result, result);
      assert.equal(job?.finishedAt, finishedAt);
      assert.equal(job?.startedAt, startedAt, 'startedAt is kept');
      assert.deepEqual(job?.progress, finalProgress);
      assert.equal(job?.error, null);
    });

    it('refuses a second transition from running once completed, changing nothing', async () => {
      const id = await newJob();
      await store.lifecycle.start(id);
      await store.lifecycle.complete(id, 1, result, new Date('2024-01-01T00:00:00.000Z'));
      const snapshot = await store.get(id);
      assert.deepEqual(await store.lifecycle.cancel(id, new Date('2030-01-01T00:00:00.000Z')), {
        ok: false,
        current: 'completed',
      });
      assert.deepEqual(await store.lifecycle.giveUp(id, 'late'), {
        ok: false,
        current: 'completed',
      });
      assert.deepEqual(await store.get(id), snapshot, 'a refused transition writes none of its fields');
      assert.deepEqual(await indexedUnder(id), ['completed']);
    });

    it('refuses a transition from a state the job is not in', async () => {
      const id = await newJob();
      assert.deepEqual(await store.lifecycle.complete(id, 1, result), { ok: false, current: 'queued' });
      const job = await store.get(id);
      assert.equal(job?.state, 'queued');
      assert.equal(job?.result, null);
    });

    it('answers {ok: false, current: null} for an unknown id, creating nothing', async () => {
      const id = `missing-${randomUUID()}`;
      assert.deepEqual(await store.lifecycle.start(id, new Date('2024-01-01T00:00:00.000Z')), {
        ok: false,
        current: null,
      });
      assert.equal(await store.get(id), null);
      assert.equal(await redis.exists(`${prefix}:job:${id}`), 0);
      assert.deepEqual(await indexedUnder(id), []);
    });

    it('records a failure with its error', async () => {
      const id = await newJob();
      await store.lifecycle.start(id);
      assert.deepEqual(await store.lifecycle.fail(id, 1, 'out of memory'), {
        ok: true,
        attempt: 1,
        previous: 'running',
      });
      const job = await store.get(id);
      assert.equal(job?.state, 'failed');
      assert.deepEqual(job?.error, { message: 'out of memory' });
      assert.equal(job?.result, null);
    });

    it('moves the job between the per-state indexes, so list({state}) shows it under its new state only', async () => {
      const id = await newJob();
      assert.ok((await listedIds('queued')).includes(id));
      assert.ok(!(await listedIds('running')).includes(id));

      await store.lifecycle.start(id);
      assert.ok(!(await listedIds('queued')).includes(id), 'no longer listed as queued');
      assert.ok((await listedIds('running')).includes(id), 'listed as running');
      assert.deepEqual(await indexedUnder(id), ['running']);

      await store.lifecycle.cancel(id);
      assert.ok(!(await listedIds('running')).includes(id));
      assert.ok((await listedIds('cancelled')).includes(id));
      assert.deepEqual(await indexedUnder(id), ['cancelled']);
      const everywhere = (await listedIds(undefined)).filter((listed) => listed === id);
      assert.equal(everywhere.length, 1, 'listed exactly once among all jobs');
      const listed = (await store.list({ state: 'cancelled', limit: 100 })).jobs.find((job) => job.id === id);
      assert.equal(listed?.state, 'cancelled', 'the listed record agrees with the index');
    });

    it('lets exactly one of 20 concurrent running→cancelled / running→completed attempts win', async () => {
      // Separate connections, so the attempts really arrive at Redis interleaved.
      const stores = Array.from({ length: 4 }, () => new JobStore(client(), prefix));
      for (let round = 0; round < 5; round++) {
        const id = await newJob();
        await store.lifecycle.start(id);
        const attempts = Array.from({ length: 20 }, (_, i) => {
          const target: JobState = i % 2 === 0 ? 'cancelled' : 'completed';
          const attemptStore = stores[i % stores.length] as JobStore;
          const change =
            target === 'completed'
              ? attemptStore.lifecycle.complete(
                  id,
                  1,
                  result,
                  new Date(`2024-01-01T00:00:${String(i).padStart(2, '0')}.000Z`),
                )
              : attemptStore.lifecycle.cancel(id);
          return change.then((outcome) => ({ target, outcome }));
        });
        const outcomes = await Promise.all(attempts);
        const won = outcomes.filter(({ outcome }) => outcome.ok);
        assert.equal(won.length, 1, `round ${round}: exactly one attempt wins`);
        const winner = won[0] as (typeof won)[number];
        assert.deepEqual(winner.outcome, { ok: true, previous: 'running', attempt: 1 });
        for (const { outcome } of outcomes.filter(({ outcome }) => !outcome.ok)) {
          assert.deepEqual(outcome, { ok: false, current: winner.target });
        }
        const job = await store.get(id);
        assert.equal(job?.state, winner.target);
        assert.deepEqual(await indexedUnder(id), [winner.target], 'the index agrees with the record');
        assert.equal(job?.result === null, winner.target === 'cancelled', 'only a completion sets the result');
      }
    });
  });

  describe('progress, logs and epochs', () => {
    it('appendLog, appendEpoch and setProgress show up in get() in order', async () => {
      const id = await newJob();
      const lines: LossLogLine[] = [
        { epoch: 1, batch: 10, loss: 2.3 },
        { epoch: 1, batch: 20, loss: 1.9 },
        { epoch: 2, batch: 10, loss: 0.7 },
      ];
      const summaries: EpochSummary[] = [
        { epoch: 1, loss: 2.0, testAccuracy: 0.6, seconds: 10, imagesPerSecond: 600 },
        { epoch: 2, loss: 0.8, testAccuracy: 0.8, seconds: 9, imagesPerSecond: 650 },
      ];
      await store.appendLog(id, lines[0] as LossLogLine, progress(1, 10));
      await store.appendLog(id, lines[1] as LossLogLine, progress(1, 20));
      await store.appendEpoch(id, summaries[0] as EpochSummary, progress(1, 94));
      let job = await store.get(id);
      assert.deepEqual(job?.logs, lines.slice(0, 2));
      assert.deepEqual(job?.epochs, summaries.slice(0, 1));
      assert.deepEqual(job?.progress, progress(1, 94));

      await store.appendLog(id, lines[2] as LossLogLine, progress(2, 10));
      assert.deepEqual((await store.get(id))?.progress, progress(2, 10));
      await store.setProgress(id, progress(2, 50));
      await store.appendEpoch(id, summaries[1] as EpochSummary, progress(2, 94));
      job = await store.get(id);
      assert.deepEqual(job?.logs, lines);
      assert.deepEqual(job?.epochs, summaries);
      assert.deepEqual(job?.progress, progress(2, 94));
      assert.equal(job?.state, 'queued', 'history does not change the state');

      await store.setProgress(id, progress(3, 1));
      assert.deepEqual((await store.get(id))?.progress, progress(3, 1));
      // Lists show progress too, without logs and epochs.
      const listed = (await store.list({ limit: 100 })).jobs.find((summary) => summary.id === id);
      assert.deepEqual(listed?.progress, progress(3, 1));
      assert.equal(listed && 'logs' in listed, false);
    });

    it('keeps the history of each job apart', async () => {
      const a = await newJob();
      const b = await newJob();
      await store.appendLog(a, { epoch: 1, batch: 1, loss: 1 }, progress(1, 1));
      await store.appendEpoch(
        b,
        { epoch: 1, loss: 2, testAccuracy: 0.5, seconds: 1, imagesPerSecond: 1 },
        progress(1, 94),
      );
      assert.deepEqual((await store.get(a))?.epochs, []);
      assert.deepEqual((await store.get(a))?.logs, [{ epoch: 1, batch: 1, loss: 1 }]);
      assert.deepEqual((await store.get(b))?.logs, []);
      assert.equal((await store.get(b))?.epochs.length, 1);
    });

    it('each start of a run counts up the attempt; writes and changes of an earlier attempt are refused', async () => {
      const id = await newJob();
      const first = await store.lifecycle.start(id);
      assert.ok(first.ok && first.attempt === 1);
      assert.equal(await store.appendLog(id, { epoch: 1, batch: 1, loss: 2 }, progress(1, 1), 1), true);
      // Another worker takes the job over.
      const second = await store.lifecycle.start(id);
      assert.ok(second.ok && second.attempt === 2);
      assert.deepEqual(await store.stateAndAttempt(id), { state: 'running', attempt: 2 });
      assert.equal(
        await store.appendLog(id, { epoch: 1, batch: 2, loss: 2 }, progress(1, 2), 1),
        false,
        'the first run logs no more',
      );
      assert.equal(
        await store.appendEpoch(
          id,
          { epoch: 1, loss: 2, testAccuracy: 0.5, seconds: 1, imagesPerSecond: 1 },
          progress(1, 2),
          1,
        ),
        false,
      );
      assert.equal(await store.setProgress(id, progress(1, 3), 1), false);
      assert.equal(await store.rewind(id, { logLines: 0, epochs: 0 }, progress(0, 0), 1), false);
      assert.deepEqual(
        await store.lifecycle.complete(id, 1, result),
        { ok: false, current: 'running' },
        'nor ends the job',
      );
      assert.deepEqual(
        (await store.get(id))?.logs.map((line) => line.batch),
        [1],
      );
      assert.equal(
        await store.appendLog(id, { epoch: 1, batch: 2, loss: 1 }, progress(1, 2), 2),
        true,
        'the second run does',
      );
      assert.equal((await store.lifecycle.complete(id, 2, result)).ok, true);
    });

    it('rewind cuts a running job back to its checkpoint (or the start), with a rewind event, and leaves other jobs alone', async () => {
      const id = await newJob();
      const epoch = (n: number) => ({ epoch: n, loss: 2, testAccuracy: 0.5, seconds: 1, imagesPerSecond: 100 });
      await store.appendLog(id, { epoch: 1, batch: 10, loss: 2 }, progress(1, 10));
      await store.rewind(id, { logLines: 0, epochs: 0 }, progress(0, 0));
      assert.equal((await store.get(id))?.logs.length, 1, 'a queued job is not rewound');
      assert.equal((await store.lifecycle.start(id)).ok, true);
      await store.appendEpoch(id, epoch(1), progress(1, 94));
      await store.appendLog(id, { epoch: 2, batch: 10, loss: 1 }, progress(2, 10));
      await store.appendLog(id, { epoch: 2, batch: 20, loss: 1 }, progress(2, 20));
      await store.rewind(id, { logLines: 2, epochs: 1 }, progress(2, 10));
      let job = await store.get(id);
      assert.deepEqual(
        job?.logs.map((line) => [line.epoch, line.batch]),
        [
          [1, 10],
          [2, 10],
        ],
      );
      assert.deepEqual(
        job?.epochs.map((summary) => summary.epoch),
        [1],
      );
      assert.deepEqual(job?.progress, progress(2, 10));
      const last = await store.events.last(id);
      assert.equal(last?.type, 'rewind');
      assert.deepEqual(JSON.parse(last?.data ?? '{}'), {
        at: JSON.parse(last?.data ?? '{}').at,
        logLines: 2,
        epochs: 1,
        progress: progress(2, 10),
      });
      await store.rewind(id, { logLines: 0, epochs: 0 }, progress(0, 0));
      job = await store.get(id);
      assert.deepEqual(job?.logs, []);
      assert.deepEqual(job?.epochs, []);
      assert.equal(job?.state, 'running');
      await store.appendLog(id, { epoch: 1, batch: 5, loss: 3 }, progress(1, 5));
      assert.deepEqual(
        (await store.get(id))?.logs,
        [{ epoch: 1, batch: 5, loss: 3 }],
        'a new attempt logs from scratch',
      );
    });
  });

  describe('list paging', () => {
    it('walks 7 jobs with limit 3 as 3 + 3 + 1, newest first, without duplicates', async () => {
      // Its own prefix, so the jobs of other tests don't show up.
      const pagingPrefix = `${prefix}:paging`;
      const paging = new JobStore(redis, pagingPrefix);
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const id = `page-job-${i}`;
        await paging.create(id, request, initialProgress, new Date(Date.UTC(2024, 0, 1, 0, 0, i)));
        ids.push(id);
      }
      const newestFirst = [...ids].reverse();

      const first = await paging.list({ limit: 3 });
      assert.deepEqual(
        first.jobs.map((job) => job.id),
        newestFirst.slice(0, 3),
      );
      assert.equal(typeof first.next, 'string');
      assert.match(first.next ?? '', /^\d+$/);

      const second = await paging.list({ limit: 3, cursor: first.next ?? undefined });
      assert.deepEqual(
        second.jobs.map((job) => job.id),
        newestFirst.slice(3, 6),
      );
      assert.equal(typeof second.next, 'string');
      assert.notEqual(second.next, first.next);

      const third = await paging.list({ limit: 3, cursor: second.next ?? undefined });
      assert.deepEqual(
        third.jobs.map((job) => job.id),
        newestFirst.slice(6),
      );
      assert.equal(third.next, null);

      const all = [...first.jobs, ...second.jobs, ...third.jobs].map((job) => job.id);
      assert.equal(new Set(all).size, 7);
      assert.ok(first.jobs.every((job) => job.state === 'queued' && job.request.seed === 1234));

      // Exactly a page's worth left: the last page says there is no more.
      const two = await paging.list({ limit: 6 });
      assert.equal(two.jobs.length, 6);
      const rest = await paging.list({ limit: 1, cursor: two.next ?? undefined });
      assert.deepEqual(
        rest.jobs.map((job) => job.id),
        [ids[0]],
      );
      assert.equal(rest.next, null);
      const everything = await paging.list({ limit: 7 });
      assert.equal(everything.jobs.length, 7);
      assert.equal(everything.next, null, 'no next page when all jobs fit');

      // Paging within one state.
      for (const id of [ids[1], ids[3], ids[5]]) await paging.lifecycle.start(id as string);
      const running1 = await paging.list({ state: 'running', limit: 2 });
      assert.deepEqual(
        running1.jobs.map((job) => job.id),
        [ids[5], ids[3]],
      );
      const running2 = await paging.list({ state: 'running', limit: 2, cursor: running1.next ?? undefined });
      assert.deepEqual(
        running2.jobs.map((job) => job.id),
        [ids[1]],
      );
      assert.equal(running2.next, null);
      const queued = await paging.list({ state: 'queued', limit: 10 });
      assert.deepEqual(
        queued.jobs.map((job) => job.id),
        [ids[6], ids[4], ids[2], ids[0]],
      );
    });

    it('lists nothing for an empty store', async () => {
      const empty = new JobStore(redis, `${prefix}:empty`);
      assert.deepEqual(await empty.list({ limit: 3 }), { jobs: [], next: null });
      assert.deepEqual(await empty.list({ state: 'running', limit: 3 }), { jobs: [], next: null });
    });
  });
});
