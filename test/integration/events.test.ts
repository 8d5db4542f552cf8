/**
 * GET /jobs/:id/events against real Redis, with the API and the worker in separate processes
 * (the API in this process with ROLE=api, one ROLE=worker process), as in production: every event
 * a client sees has travelled through the job's Redis stream, since nothing else connects them.
 *
 * A small app with only the events route (and a 100 ms heartbeat) covers what the big one can't
 * show quickly: heartbeats, streams that end by cancellation, jobs without events, and that a
 * client that leaves frees its Redis connection.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { get, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { ApiDependencies } from '../../src/api/dependencies.ts';
import { installErrorHandler } from '../../src/api/error-handler.ts';
import { EventFanout } from '../../src/api/event-fanout.ts';
import { eventRoutes } from '../../src/api/routes/events.ts';
import { hasEnded, parseSse, type SseMessage } from '../../src/client/index.ts';
import type { ErrorBody } from '../../src/contract/errors.ts';
import { isJobEventType, parseJobEvent, type JobEvent } from '../../src/contract/events.ts';
import type { Job, JobProgress, LossLogLine } from '../../src/contract/job.ts';
import { JobStore } from '../../src/store/job-store.ts';
import { clientOf, submitJob, waitForJob } from '../support/jobs.ts';
import { startServiceProcess, type ServiceProcess } from '../support/processes.ts';
import { storedJobSettings } from '../support/job-settings.ts';
import {
  deleteKeys,
  request,
  sharedEnvironment,
  startTestService,
  testRedisUrl,
  waitFor,
  type TestService,
} from '../support/service.ts';

interface Read {
  readonly status: number;
  readonly contentType: string | null;
  readonly messages: SseMessage[];
  readonly events: JobEvent[];
  readonly comments: string[];
  /** True when the server closed the stream (rather than this client stopping early). */
  readonly closedByServer: boolean;
}

/**
 * Reads a job's event stream until the server closes it or `stopAfter` says to stop (then the
 * client disconnects, as a browser tab closing would). Fails after `timeoutMs`.
 */
async function readStream(
  url: string,
  options: { headers?: Record<string, string>; stopAfter?: (events: JobEvent[]) => boolean; timeoutMs?: number } = {},
): Promise<Read> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`no end of ${url} within ${options.timeoutMs ?? 30_000} ms`)),
    options.timeoutMs ?? 30_000,
  );
  const response = await fetch(url, { headers: options.headers ?? {}, signal: controller.signal });
  const messages: SseMessage[] = [];
  const events: JobEvent[] = [];
  const comments: string[] = [];
  let closedByServer = true;
  try {
    if (response.status === 200 && response.body) {
      for await (const message of parseSse(response.body, { onComment: (text) => comments.push(text) })) {
        messages.push(message);
        assert.ok(isJobEventType(message.event), `unknown event type ${message.event}`);
        events.push(parseJobEvent(message.id ?? '', message.event, JSON.parse(message.data)));
        if (options.stopAfter?.(events)) {
          // Leaving the loop cancels the body, which closes the connection.
          closedByServer = false;
          break;
        }
      }
    } else {
      await response.text();
    }
  } finally {
    clearTimeout(timer);
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    messages,
    events,
    comments,
    closedByServer,
  };
}

const logsOf = (events: JobEvent[]): LossLogLine[] =>
  events.flatMap((event) => (event.type === 'log' ? [event.data.line] : []));

/** Event ids as Redis stream ids, strictly increasing: no event twice, none out of order. */
function assertIncreasingIds(events: JobEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1]?.id ?? '', events[i]?.id ?? ''].map(
      (id) => id.split('-').map(BigInt) as [bigint, bigint],
    );
    assert.ok(
      a && b && (a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])),
      `event ids out of order: ${events[i - 1]?.id} then ${events[i]?.id}`,
    );
  }
}

/** A whole job's stream: created, started, its logs, its epochs, completed, and end with the result. */
function assertWholeStream(events: JobEvent[], job: Job): void {
  assertIncreasingIds(events);
  const states = events.flatMap((event) =>
    event.type === 'state' ? [`${event.data.previous}→${event.data.state}`] : [],
  );
  assert.deepEqual(states, ['null→queued', 'queued→running', 'running→completed']);
  assert.deepEqual(logsOf(events), job.logs, 'every log line once, in order');
  assert.deepEqual(
    events.flatMap((event) => (event.type === 'epoch' ? [event.data.summary] : [])),
    job.epochs,
  );
  const last = events.at(-1);
  assert.equal(last?.type, 'end', 'the stream ends with the end event');
  assert.equal(events.filter((event) => event.type === 'end').length, 1);
  if (last?.type === 'end') {
    assert.equal(last.data.state, 'completed');
    assert.deepEqual(last.data.result, job.result);
    assert.equal(last.data.error, null);
  }
  let fraction = 0;
  for (const event of events) {
    if (event.type !== 'progress' && event.type !== 'log' && event.type !== 'epoch') continue;
    assert.ok(event.data.progress.fraction >= fraction, 'progress never goes back');
    fraction = event.data.progress.fraction;
  }
}

describe('GET /jobs/:id/events, API and worker in separate processes', () => {
  const prefix = `test-${randomUUID()}`;
  let folder: string;
  let api: TestService;
  let worker: ServiceProcess;
  let jobId: string;
  let finished: Job;
  let resumed: JobEvent[] = [];
  let midJob: Read;

  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-events-'));
    const shared = sharedEnvironment(folder, prefix);
    api = await startTestService({ ...shared, ROLE: 'api' });
    worker = startServiceProcess({ ...shared, ROLE: 'worker' });
  });

  after(async () => {
    await worker?.stop();
    await api?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('a client that joins mid-job and one that resumes with Last-Event-ID both see every log line once, in order, then the end', async () => {
    jobId = (
      await submitJob(api, {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 4,
        batchSize: 32,
        trainLimit: 640,
        testLimit: 100,
        logEvery: 1,
        seed: 3,
      })
    ).id;
    const url = `${api.url}/jobs/${jobId}/events`;

    // The resuming client: from the start, it leaves after 5 log lines; back with the header, it
    // leaves after 5 more; back with the query parameter (for clients that can't set headers), it reads to the end.
    const resuming = (async () => {
      const first = await readStream(url, { stopAfter: (events) => logsOf(events).length >= 5 });
      assert.equal(first.status, 200);
      assert.equal(first.contentType, 'text/event-stream; charset=utf-8');
      assert.equal(first.closedByServer, false);
      const second = await readStream(url, {
        headers: { 'last-event-id': first.events.at(-1)?.id ?? '' },
        stopAfter: (events) => logsOf(events).length >= 5,
      });
      const third = await readStream(`${url}?lastEventId=${second.events.at(-1)?.id ?? first.events.at(-1)?.id ?? ''}`);
      assert.equal(third.closedByServer, true, 'the server closes the stream after the end');
      return [...first.events, ...second.events, ...third.events];
    })();

    // The client that joins mid-job: once the job is running and has logged a little.
    const joinedWhile = await waitForJob(
      api,
      jobId,
      (job) => (job.state === 'running' && job.logs.length >= 3) || hasEnded(job),
      { intervalMs: 10 },
    );
    assert.equal(
      joinedWhile.state,
      'running',
      'the job ended before the client could join it mid-way (make it longer)',
    );
    const joinedAt = Date.now();
    midJob = await readStream(url);
    resumed = await resuming;

    finished = await clientOf(api).job(jobId);
    assert.equal(finished.state, 'completed', finished.error?.message);
    assert.equal(finished.logs.length, 80);
    assert.ok(midJob.closedByServer);
    assertWholeStream(midJob.events, finished);
    assert.ok(
      midJob.events.some((event) => event.type === 'log' && Date.parse(event.data.at) > joinedAt),
      'the mid-job client saw lines written after it joined (live, not only replayed)',
    );
    assertWholeStream(resumed, finished);
    assert.deepEqual(
      resumed.map((event) => event.id),
      midJob.events.map((event) => event.id),
      'resuming three times saw exactly the stream a single client saw',
    );
  });

  it('a client that comes after the job ended gets the whole replay and the end; one that has the end gets 204', async () => {
    const late = await readStream(`${api.url}/jobs/${jobId}/events`);
    assert.equal(late.status, 200);
    assert.ok(late.closedByServer);
    assertWholeStream(late.events, finished);
    assert.deepEqual(
      late.messages,
      midJob.messages,
      'the replay is the same events, ids and data as when they were live',
    );
    const afterEnd = await fetch(`${api.url}/jobs/${jobId}/events`, {
      headers: { 'last-event-id': late.events.at(-1)?.id ?? '' },
    });
    assert.equal(afterEnd.status, 204, 'an EventSource that reconnects after the end is told to stop');
    assert.equal(await afterEnd.text(), '');
    // Resuming just before the end gives exactly the end.
    const lastTwo = await readStream(`${api.url}/jobs/${jobId}/events`, {
      headers: { 'last-event-id': late.events.at(-2)?.id ?? '' },
    });
    assert.deepEqual(
      lastTwo.events.map((event) => event.type),
      ['end'],
    );
  });

  it('answers 404 in the error shape for an unknown job, and 400 for a malformed Last-Event-ID, before any stream', async () => {
    const missing = await request<ErrorBody>(`${api.url}/jobs/no-such-job/events`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(missing.body, { error: 'no job with id no-such-job' });
    const malformed = await request<ErrorBody>(`${api.url}/jobs/${jobId}/events`, {
      headers: { 'last-event-id': 'yesterday' },
    });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.error, /last-event-id/);
    const badQuery = await request<ErrorBody>(`${api.url}/jobs/${jobId}/events?lastEventId=1-2-3`);
    assert.equal(badQuery.status, 400);
    assert.equal(badQuery.body.details?.[0]?.path, 'lastEventId');
  });
});

describe('the events route on its own (100 ms heartbeats, or none)', () => {
  const prefix = `test-${randomUUID()}`;
  const redisClients: Redis[] = [];
  let redis: Redis;
  let store: JobStore;
  let app: FastifyInstance;
  let url: string;
  let quietApp: FastifyInstance;
  let quietUrl: string;
  let fanout: EventFanout;
  let quietFanout: EventFanout;
  let counter = 0;
  /** A client's bound of unsent bytes, small so a test can pass it quickly. */
  const bufferBytes = 16 * 1024;

  const progress = (batch: number): JobProgress => ({
    epoch: 1,
    epochs: 1,
    batch,
    batchesPerEpoch: 10,
    fraction: batch / 10,
  });

  async function newJob(): Promise<string> {
    const id = `job-${++counter}`;
    await store.create(id, storedJobSettings, progress(0), new Date());
    return id;
  }

  /** The Redis connections named `name`: the fan-out's of one app. */
  async function connectionsNamed(name: string): Promise<number> {
    const list = (await redis.client('LIST')) as string;
    return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
  }

  before(async () => {
    redis = new Redis(testRedisUrl);
    redisClients.push(redis);
    // As the service's: a request connection, failing at once when Redis is away.
    const requestRedis = new Redis(testRedisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    redisClients.push(requestRedis);
    await waitFor('Redis', async () => (requestRedis.status === 'ready' ? true : null), 5000, 20);
    store = new JobStore(requestRedis, prefix);
    const start = async (heartbeatMs: number, name: string) => {
      const eventFanout = new EventFanout({
        store,
        redis: requestRedis,
        connectionName: name,
        heartbeatMs,
        log: pino({ level: 'silent' }),
      });
      const dependencies = {
        redis: requestRedis,
        store,
        eventFanout,
        config: { KEY_PREFIX: prefix, EVENT_STREAM_BUFFER_BYTES: bufferBytes },
      } as unknown as ApiDependencies;
      const app = Fastify();
      app.setValidatorCompiler(validatorCompiler);
      app.setSerializerCompiler(serializerCompiler);
      installErrorHandler(app, requestRedis);
      await app.register(eventRoutes, dependencies);
      return { app, eventFanout, url: await app.listen({ host: '127.0.0.1', port: 0 }) };
    };
    ({ app, eventFanout: fanout, url } = await start(100, `${prefix}:events`));
    // With a minute between heartbeats, nothing but the disconnect itself can free a client quickly.
    ({ app: quietApp, eventFanout: quietFanout, url: quietUrl } = await start(60_000, `${prefix}:quiet-events`));
  });

  after(async () => {
    await Promise.all([app?.close(), quietApp?.close()]);
    await Promise.all([fanout?.close(), quietFanout?.close()]);
    await deleteKeys(prefix);
    for (const client of redisClients) client.disconnect();
  });

  it('sends heartbeat comments while the job is quiet, follows it live, and ends with a cancellation', async () => {
    const id = await newJob();
    await store.lifecycle.start(id, new Date());
    const reading = readStream(`${url}/jobs/${id}/events`, { timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 600));
    await store.appendLog(id, { epoch: 1, batch: 1, loss: 2.5 }, progress(1));
    await store.setProgress(id, progress(2));
    await store.lifecycle.cancel(id);
    // After the end, a late batch of the worker adds nothing: the stream is over.
    await store.appendLog(id, { epoch: 1, batch: 2, loss: 2.4 }, progress(2));
    const read = await reading;
    assert.ok(
      read.comments.filter((text) => text === 'heartbeat').length >= 2,
      `heartbeats: ${JSON.stringify(read.comments)}`,
    );
    assert.deepEqual(
      read.events.map((event) => event.type),
      ['state', 'state', 'log', 'progress', 'state', 'end'],
    );
    const end = read.events.at(-1);
    assert.ok(
      end?.type === 'end' && end.data.state === 'cancelled' && end.data.result === null && end.data.error === null,
    );
    assert.deepEqual(
      (await store.get(id))?.logs,
      [{ epoch: 1, batch: 1, loss: 2.5 }],
      'the late log line was not recorded either',
    );
    await waitFor('the fan-out to forget the client', async () => (fanout.clients === 0 ? true : null), 2000, 20);
  });

  it('serves every client of every job through one Redis connection, and forgets the clients that leave', async () => {
    const jobs = [await newJob(), await newJob()];
    const clients = 40;
    // Plain node:http clients, a socket each: fetch's pool opens spare sockets that would hold the server's close up.
    const readers = Array.from({ length: clients }, async (_, index) => {
      const response = await new Promise<IncomingMessage>((resolve, reject) =>
        get(`${quietUrl}/jobs/${jobs[index % 2]}/events`, { agent: false }, resolve).on('error', reject),
      );
      const events: JobEvent[] = [];
      for await (const message of parseSse(response)) {
        assert.ok(isJobEventType(message.event), `unknown event type ${message.event}`);
        events.push(parseJobEvent(message.id ?? '', message.event, JSON.parse(message.data)));
        if (logsOf(events).length >= 2) break;
      }
      return events;
    });
    await waitFor('every client to follow', async () => (quietFanout.clients === clients ? true : null), 5000, 20);
    assert.equal(await connectionsNamed(`${prefix}:quiet-events`), 1, `${clients} clients, one Redis connection`);
    for (const [index, id] of jobs.entries()) {
      await store.appendLog(id, { epoch: 1, batch: 1, loss: index }, progress(1));
      await store.appendLog(id, { epoch: 1, batch: 2, loss: index + 0.5 }, progress(2));
    }
    for (const [index, events] of (await Promise.all(readers)).entries()) {
      const job = index % 2;
      assert.deepEqual(logsOf(events), [
        { epoch: 1, batch: 1, loss: job },
        { epoch: 1, batch: 2, loss: job + 0.5 },
      ]);
      assertIncreasingIds(events);
    }
    await waitFor(
      'the fan-out to forget every client',
      async () => (quietFanout.clients === 0 ? true : null),
      2000,
      20,
    );
    assert.equal(await connectionsNamed(`${prefix}:quiet-events`), 1);
  });

  it('cuts off a client that stops reading once its buffer passes the bound; it resumes with Last-Event-ID and misses nothing', async () => {
    const id = await newJob();
    await store.lifecycle.start(id, new Date());
    // A raw HTTP/1.0 client, whose reading the test controls: the answer is the bare event stream, ended by closing.
    const { port } = new URL(quietUrl);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write(`GET /jobs/${id}/events HTTP/1.0\r\nhost: 127.0.0.1\r\n\r\n`);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await waitFor(
      'the first events',
      async () => (Buffer.concat(received).includes('event: state') ? true : null),
      2000,
      10,
    );
    // It reads nothing from here on: the socket's buffers fill, then the server's.
    socket.pause();
    const padding = 'x'.repeat(2048);
    let written = 0;
    while (quietFanout.clients > 0) {
      assert.ok(written < 32_768, 'a client that reads nothing was never cut off');
      // A few events at a time, fewer bytes than the bound: what cuts the client off is what piles up, not one burst.
      const batch = redis.pipeline();
      for (let i = 0; i < 4; i++)
        batch.xadd(store.keys.events(id), '*', 'type', 'progress', 'data', JSON.stringify({ n: written++, padding }));
      await batch.exec();
    }
    await store.lifecycle.cancel(id);
    socket.resume();
    await closed;
    const body = Buffer.concat(received).toString();
    const ids: string[] = [];
    for await (const message of parseSse(Readable.from([Buffer.from(body.slice(body.indexOf('\r\n\r\n') + 4))])))
      ids.push(message.id ?? '');
    assert.ok(
      ids.length > 2 && ids.length < written,
      `the cut-off client got ${ids.length} of ${written + 2} events before the cut`,
    );
    // Resumed (the padding events are no job events, so read as bare SSE), to the end.
    const resumed = await fetch(`${quietUrl}/jobs/${id}/events`, { headers: { 'last-event-id': ids.at(-1) ?? '' } });
    let last = '';
    for await (const message of parseSse(resumed.body ?? Readable.from([]))) {
      ids.push(message.id ?? '');
      last = message.event;
    }
    const stored = (await redis.xrange(store.keys.events(id), '-', '+')).map(([entry]) => entry);
    assert.deepEqual(ids, stored, 'the two connections together saw every event once, in order');
    assert.equal(last, 'end');
  });

  it('when Redis drops the shared read, the streams end and their clients resume with Last-Event-ID, missing nothing', async () => {
    const id = await newJob();
    await store.lifecycle.start(id, new Date());
    const first = readStream(`${url}/jobs/${id}/events`, { timeoutMs: 10_000 });
    await waitFor('the client to follow', async () => (fanout.clients === 1 ? true : null), 2000, 20);
    await store.appendLog(id, { epoch: 1, batch: 1, loss: 1 }, progress(1));
    await waitFor(
      'the log line to arrive',
      async () => ((await store.events.read(id, '0-0', 10)).length === 3 ? true : null),
      2000,
      20,
    );
    // What a Redis restart or a network cut does to the fan-out's connection.
    const list = (await redis.client('LIST')) as string;
    const shared = list.split('\n').find((line) => line.includes(` name=${prefix}:events `));
    const clientId = /\bid=(\d+)/.exec(shared ?? '')?.[1];
    assert.ok(clientId, 'the fan-out has its connection');
    await redis.client('KILL', 'ID', clientId);
    const cut = await first;
    assert.ok(cut.closedByServer);
    assert.notEqual(cut.events.at(-1)?.type, 'end', 'the stream ended early, without an end');
    await store.appendLog(id, { epoch: 1, batch: 2, loss: 0.5 }, progress(2));
    await store.lifecycle.cancel(id);
    const resumed = await readStream(`${url}/jobs/${id}/events`, {
      headers: { 'last-event-id': cut.events.at(-1)?.id ?? '' },
      timeoutMs: 10_000,
    });
    const stored = (await redis.xrange(store.keys.events(id), '-', '+')).map(([entry]) => entry);
    assert.deepEqual(
      [...cut.events, ...resumed.events].map((event) => event.id),
      stored,
    );
    assert.equal(resumed.events.at(-1)?.type, 'end');
  });

  it('ends the stream of a job that ended without events (from before events existed) from its record', async () => {
    // Ended before: its end comes from the record at once.
    const old = await newJob();
    await store.lifecycle.giveUp(old, 'out of memory', new Date('2024-01-01T00:00:00.000Z'));
    await redis.del(store.keys.events(old));
    const read = await readStream(`${url}/jobs/${old}/events`, { timeoutMs: 5000 });
    assert.deepEqual(
      read.events.map((event) => [event.type, event.data]),
      [['end', { at: '2024-01-01T00:00:00.000Z', state: 'failed', result: null, error: { message: 'out of memory' } }]],
    );
    // Running under a worker that writes no events: the first quiet heartbeat notices it ended.
    const running = await newJob();
    await redis.del(store.keys.events(running));
    const reading = readStream(`${url}/jobs/${running}/events`, { timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    await redis.hset(`${prefix}:job:${running}`, { state: 'completed', finishedAt: '2024-01-01T00:00:01.000Z' });
    const followed = await reading;
    assert.deepEqual(
      followed.events.map((event) => event.type),
      ['end'],
    );
    assert.ok(followed.closedByServer);
  });

  it('remove() deletes an ended job with its event stream, and refuses one still queued or running', async () => {
    const id = await newJob();
    await store.appendLog(id, { epoch: 1, batch: 1, loss: 1 }, progress(1));
    assert.equal(await redis.exists(store.keys.events(id)), 1);
    assert.ok(store.keys.ofJob(id).includes(store.keys.events(id)));
    assert.deepEqual(await store.remove(id), { ok: false, current: 'queued' });
    await store.lifecycle.start(id, new Date());
    assert.deepEqual(await store.remove(id), { ok: false, current: 'running' });
    assert.equal(await redis.exists(...store.keys.ofJob(id)), 3, 'nothing of a live job is deleted');
    await store.lifecycle.cancel(id);
    assert.deepEqual(await store.remove(id), { ok: true, state: 'cancelled' });
    assert.deepEqual(await store.remove(id), { ok: false, current: null });
    assert.equal(await redis.exists(...store.keys.ofJob(id)), 0);
    assert.equal(await store.get(id), null);
    assert.equal(
      (await store.list({ limit: 100 })).jobs.some((job) => job.id === id),
      false,
    );
    const gone = await fetch(`${url}/jobs/${id}/events`);
    assert.equal(gone.status, 404);
    await gone.text();
  });

  it('closing the server ends open streams instead of waiting for their clients', async () => {
    const id = await newJob();
    const reading = readStream(`${quietUrl}/jobs/${id}/events`, { timeoutMs: 5000 });
    await waitFor('the client to follow', async () => (quietFanout.clients === 1 ? true : null), 2000, 20);
    const started = Date.now();
    await quietApp.close();
    const read = await reading;
    assert.ok(Date.now() - started < 2000, 'close() waited for the client');
    assert.ok(read.closedByServer);
    await quietFanout.close();
    await waitFor(
      'the fan-out to close its connection',
      async () => ((await connectionsNamed(`${prefix}:quiet-events`)) === 0 ? true : null),
      2000,
      20,
    );
  });
});
