/**
 * Security of the HTTP API (issue 5): API keys, one client's jobs hidden from another, keys kept
 * out of logs and answers, and the limits (queue per client and in all, requests per minute,
 * training images per job), against real services on the real Redis.
 *
 * Every service here is ROLE=api: no worker, so jobs stay queued and nothing trains.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ErrorBody } from '../../src/contract/errors.ts';
import type { Job, JobList } from '../../src/contract/job.ts';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import { submitJob } from '../support/jobs.ts';
import { startLoggedTestService, type LoggedTestService } from '../support/logged-service.ts';
import { request, type JsonResponse } from '../support/service.ts';

const aliceKey = `alice-${randomUUID()}`;
const bobKey = `bob-${randomUUID()}`;
const wrongKey = `wrong-${randomUUID()}`;
const keys = [aliceKey, bobKey];

let secured: LoggedTestService;
const services: LoggedTestService[] = [];

async function start(environment: Record<string, string>): Promise<LoggedTestService> {
  const service = await startLoggedTestService({ ROLE: 'api', ...environment });
  services.push(service);
  return service;
}

before(async () => {
  secured = await start({ API_KEYS: keys.join(','), RATE_LIMIT_PER_MINUTE: '0' });
});

after(async () => {
  await Promise.all(services.map((service) => service.close()));
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

function postJob(on: LoggedTestService, key: string | null, json: unknown): Promise<JsonResponse<Job>> {
  return request<Job>(`${on.url}/jobs`, { method: 'POST', json, headers: key ? bearer(key) : {} });
}

/** The job these tests submit: whose it is matters to them, not what it trains. */
const anyJob: JobRequestInput = { model: 'lenet5', dataset: 'mnist' };

function assertError(answer: JsonResponse<unknown>, status: number): ErrorBody {
  assert.equal(answer.status, status, `expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  const body = answer.body as ErrorBody;
  for (const key of Object.keys(body)) assert.ok(key === 'error' || key === 'details', `unexpected key ${key}`);
  assert.equal(typeof body.error, 'string');
  assert.ok(body.error.length > 0);
  return body;
}

/** Fetches without reading an event stream to its end: the status, content type and (for JSON) body. */
async function peek(url: string, init: RequestInit = {}): Promise<{ status: number; type: string; text: string }> {
  const controller = new AbortController();
  const response = await fetch(url, { ...init, signal: controller.signal });
  const type = response.headers.get('content-type') ?? '';
  const text = type.startsWith('text/event-stream') ? '' : await response.text();
  controller.abort();
  return { status: response.status, type, text };
}

describe('API keys', () => {
  const protectedRoutes = (id: string): { method: string; path: string }[] => [
    { method: 'GET', path: '/jobs' },
    { method: 'POST', path: '/jobs' },
    { method: 'GET', path: `/jobs/${id}` },
    { method: 'POST', path: `/jobs/${id}/cancel` },
    { method: 'POST', path: `/jobs/${id}/predict` },
    { method: 'GET', path: `/jobs/${id}/events` },
    { method: 'GET', path: '/models' },
    { method: 'GET', path: '/datasets' },
    { method: 'GET', path: '/metrics' },
  ];

  it('answers 401 in the contract shape on every protected route without a key, with a wrong one, or with a malformed header', async () => {
    const job = await submitJob(secured, anyJob, { apiKey: aliceKey });
    const variants: { name: string; headers: Record<string, string> }[] = [
      { name: 'no key', headers: {} },
      { name: 'wrong key', headers: bearer(wrongKey) },
      { name: 'Basic scheme', headers: { authorization: `Basic ${Buffer.from(`x:${aliceKey}`).toString('base64')}` } },
      { name: 'key without scheme', headers: { authorization: aliceKey } },
      { name: 'empty bearer', headers: { authorization: 'Bearer ' } },
      { name: 'prefix of a key', headers: bearer(aliceKey.slice(0, -1)) },
    ];
    for (const route of protectedRoutes(job.id)) {
      for (const variant of variants) {
        const answer = await request(`${secured.url}${route.path}`, {
          method: route.method,
          headers: variant.headers,
          ...(route.method === 'POST' && route.path === '/jobs' ? { json: { model: 'lenet5', dataset: 'mnist' } } : {}),
        });
        const body = assertError(answer, 401);
        assert.ok(
          !JSON.stringify(body).includes(wrongKey) && !JSON.stringify(body).includes(aliceKey),
          `${route.path}: the answer quotes a key`,
        );
        assert.match(
          answer.headers.get('www-authenticate') ?? '',
          /^Bearer/,
          `${route.method} ${route.path} (${variant.name})`,
        );
      }
    }
    // The right key opens them.
    assert.equal((await request(`${secured.url}/models`, { headers: bearer(aliceKey) })).status, 200);
    assert.equal((await request(`${secured.url}/jobs/${job.id}`, { headers: bearer(aliceKey) })).status, 200);
  });

  it('accepts access_token only on the event stream', async () => {
    const job = await submitJob(secured, anyJob, { apiKey: aliceKey });
    assertError(await request(`${secured.url}/jobs/${job.id}?access_token=${aliceKey}`), 401);
    assertError(await request(`${secured.url}/jobs?access_token=${aliceKey}`), 401);
    assertError(await request(`${secured.url}/jobs/${job.id}/events?access_token=${wrongKey}`), 401);
    const streamed = await peek(`${secured.url}/jobs/${job.id}/events?access_token=${encodeURIComponent(aliceKey)}`);
    assert.equal(streamed.status, 200);
    assert.match(streamed.type, /^text\/event-stream/);
  });

  it('leaves /health, the API documentation and the dashboard page public', async () => {
    assert.equal((await request(`${secured.url}/health`)).status, 200);
    assert.equal((await request(`${secured.url}/health`, { headers: bearer(wrongKey) })).status, 200);
    assert.equal((await peek(`${secured.url}/openapi.json`)).status, 200);
    const docs = await peek(`${secured.url}/docs`);
    assert.equal(docs.status, 200);
    assert.match(docs.type, /text\/html/);
    assert.equal((await peek(`${secured.url}/docs/static/index.html`)).status, 200);
    // The dashboard's page and its modules: public, and they call the API with a key.
    assert.notEqual((await peek(`${secured.url}/`)).status, 401);
    assert.equal((await peek(`${secured.url}/dashboard/main.js`)).status, 200);
  });

  it('keeps unknown paths behind the key', async () => {
    assertError(await request(`${secured.url}/no-such-route`, { method: 'POST' }), 401);
    assertError(await request(`${secured.url}/no-such-route`, { method: 'POST', headers: bearer(aliceKey) }), 404);
  });
});

describe('one client, its own jobs', () => {
  it("doesn't let a client see, list, cancel, predict or stream another's jobs", async () => {
    const alices = await submitJob(secured, anyJob, { apiKey: aliceKey });
    const bobs = await submitJob(secured, anyJob, { apiKey: bobKey });

    for (const [owner, other, job] of [
      [aliceKey, bobKey, alices],
      [bobKey, aliceKey, bobs],
    ] as const) {
      assert.equal((await request<Job>(`${secured.url}/jobs/${job.id}`, { headers: bearer(owner) })).status, 200);
      assertError(await request(`${secured.url}/jobs/${job.id}`, { headers: bearer(other) }), 404);
      assertError(
        await request(`${secured.url}/jobs/${job.id}/predict`, {
          method: 'POST',
          headers: { ...bearer(other), 'content-type': 'image/png' },
          body: Buffer.from([1]),
        }),
        404,
      );
      // The owner gets the state's answer: the job hasn't completed.
      assertError(
        await request(`${secured.url}/jobs/${job.id}/predict`, {
          method: 'POST',
          headers: { ...bearer(owner), 'content-type': 'image/png' },
          body: Buffer.from([1]),
        }),
        409,
      );
      assertError(await request(`${secured.url}/jobs/${job.id}/events`, { headers: bearer(other) }), 404);
      assertError(await request(`${secured.url}/jobs/${job.id}/events?access_token=${encodeURIComponent(other)}`), 404);
      assert.equal((await peek(`${secured.url}/jobs/${job.id}/events`, { headers: bearer(owner) })).status, 200);
    }

    for (const [key, mine, theirs] of [
      [aliceKey, alices, bobs],
      [bobKey, bobs, alices],
    ] as const) {
      for (const query of ['', '?state=queued']) {
        const listed = await request<JobList>(`${secured.url}/jobs${query}`, { headers: bearer(key) });
        assert.equal(listed.status, 200);
        const ids = listed.body.jobs.map((job) => job.id);
        assert.ok(ids.includes(mine.id), `own job missing from /jobs${query}`);
        assert.ok(!ids.includes(theirs.id), `another client's job in /jobs${query}`);
      }
    }

    // Bob can't cancel Alice's job; it stays queued; Alice can.
    assertError(
      await request(`${secured.url}/jobs/${alices.id}/cancel`, { method: 'POST', headers: bearer(bobKey) }),
      404,
    );
    assert.equal(
      (await request<Job>(`${secured.url}/jobs/${alices.id}`, { headers: bearer(aliceKey) })).body.state,
      'queued',
    );
    const cancelled = await request<Job>(`${secured.url}/jobs/${alices.id}/cancel`, {
      method: 'POST',
      headers: bearer(aliceKey),
    });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.state, 'cancelled');
    const listed = await request<JobList>(`${secured.url}/jobs?state=cancelled`, { headers: bearer(aliceKey) });
    assert.ok(
      listed.body.jobs.some((job) => job.id === alices.id),
      'the cancelled job moved to the owner’s cancelled list',
    );
    const bobsCancelled = await request<JobList>(`${secured.url}/jobs?state=cancelled`, { headers: bearer(bobKey) });
    assert.ok(!bobsCancelled.body.jobs.some((job) => job.id === alices.id));
    // An ended job's stream is the owner's too, and ends.
    const ended = await fetch(`${secured.url}/jobs/${alices.id}/events?access_token=${encodeURIComponent(aliceKey)}`);
    assert.equal(ended.status, 200);
    assert.match(await ended.text(), /event: end/);
  });
});

describe('logs', () => {
  it('never hold a key, from the header or from the query, and the request line shows the URL redacted', async () => {
    const job = await submitJob(secured, anyJob, { apiKey: aliceKey });
    await peek(`${secured.url}/jobs/${job.id}/events?access_token=${encodeURIComponent(aliceKey)}`);
    await request(`${secured.url}/jobs/${job.id}/events?access_token=${encodeURIComponent(wrongKey)}&lastEventId=0-0`);
    await request(`${secured.url}/jobs`, { headers: bearer(wrongKey) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const text = secured.lines.join('\n');
    assert.ok(text.length > 0, 'the service logged nothing');
    for (const key of [aliceKey, bobKey, wrongKey]) assert.ok(!text.includes(key), 'a key is in the log');
    const requestLines = secured.lines
      .map((line) => JSON.parse(line) as { req?: { url?: string } })
      .filter((line) => line.req?.url?.includes('/events'));
    assert.ok(requestLines.length > 0, 'no request line for the event stream');
    assert.ok(
      requestLines.some((line) => line.req?.url?.includes('access_token=[redacted]')),
      JSON.stringify(requestLines[0]),
    );
  });

  it('warn at start-up when no keys are configured on an address other machines reach, and not when some are', async () => {
    const logged = (service: LoggedTestService, level: number) =>
      service.lines
        .map((line) => JSON.parse(line) as { level: number; msg: string })
        .filter((line) => line.level === level);
    const open = await start({ RATE_LIMIT_PER_MINUTE: '0', HOST: '0.0.0.0' });
    const warnings = logged(open, 40);
    assert.ok(
      warnings.some((line) => /open to anyone/.test(line.msg)),
      JSON.stringify(warnings),
    );
    // On loopback only this machine can connect: an info line, no warning to alarm a newcomer.
    const local = await start({ RATE_LIMIT_PER_MINUTE: '0', HOST: '127.0.0.1' });
    assert.deepEqual(
      logged(local, 40).filter((line) => /API keys/.test(line.msg)),
      [],
    );
    assert.ok(logged(local, 30).some((line) => /no API keys configured.*only this machine/.test(line.msg)));
    assert.ok(!secured.lines.some((line) => /open to anyone/.test(line)));
    // And without keys, everything is open, as before.
    assert.equal((await request(`${open.url}/jobs`)).status, 200);
  });
});

describe('limits', () => {
  it('answers 429 past the queued-or-running jobs one client may have, and past the total', async () => {
    const limited = await start({
      API_KEYS: keys.join(','),
      MAX_QUEUED_PER_CLIENT: '2',
      MAX_QUEUED_JOBS: '3',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    const first = await submitJob(limited, anyJob, { apiKey: aliceKey });
    await submitJob(limited, anyJob, { apiKey: aliceKey });
    const third = assertError(await postJob(limited, aliceKey, { model: 'lenet5', dataset: 'mnist' }), 429);
    assert.match(third.error, /2 jobs queued or running/);
    // Cancelling one frees its place.
    assert.equal(
      (await request(`${limited.url}/jobs/${first.id}/cancel`, { method: 'POST', headers: bearer(aliceKey) })).status,
      200,
    );
    await submitJob(limited, anyJob, { apiKey: aliceKey });
    // Bob has none, but the queue holds 3 in all.
    await submitJob(limited, anyJob, { apiKey: bobKey });
    const full = assertError(await postJob(limited, bobKey, { model: 'lenet5', dataset: 'mnist' }), 429);
    assert.match(full.error, /queue is full/);
  });

  it('counts and creates in one step: requests arriving together never overshoot a limit', async () => {
    const limited = await start({
      API_KEYS: keys.join(','),
      MAX_QUEUED_PER_CLIENT: '3',
      MAX_QUEUED_JOBS: '5',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    const burst = (key: string) =>
      Promise.all(Array.from({ length: 12 }, () => postJob(limited, key, { model: 'lenet5', dataset: 'mnist' })));
    const statuses = (answers: JsonResponse<Job>[]) => answers.map((answer) => answer.status).sort();
    assert.deepEqual(statuses(await burst(aliceKey)), [...Array<number>(3).fill(201), ...Array<number>(9).fill(429)]);
    assert.deepEqual(
      statuses(await burst(bobKey)),
      [...Array<number>(2).fill(201), ...Array<number>(10).fill(429)],
      'the total of 5 holds',
    );
    const listed = await request<{ jobs: Job[] }>(`${limited.url}/jobs?state=queued`, { headers: bearer(aliceKey) });
    assert.equal(listed.body.jobs.length, 3);
  });

  it('answers 400 with a detail on epochs when epochs × trainLimit is over the per-job limit', async () => {
    const limited = await start({ MAX_TRAINING_IMAGES_PER_JOB: '1000', RATE_LIMIT_PER_MINUTE: '0' });
    const over = assertError(
      await postJob(limited, null, { model: 'lenet5', dataset: 'mnist', epochs: 2, trainLimit: 501 }),
      400,
    );
    assert.deepEqual(
      over.details?.map((detail) => detail.path),
      ['epochs'],
    );
    // The whole set (trainLimit's default) counts too.
    assertError(await postJob(limited, null, { model: 'lenet5', dataset: 'mnist', epochs: 1 }), 400);
    assert.equal(
      (await postJob(limited, null, { model: 'lenet5', dataset: 'mnist', epochs: 2, trainLimit: 500 })).status,
      201,
    );
  });

  it('answers 429 with Retry-After past the requests per minute, across two API processes sharing Redis; /health is exempt', async () => {
    // Not at the very end of a minute: the window would start again in the middle.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 55_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinute));
    const prefix = `test-${randomUUID()}`;
    const environment = { API_KEYS: keys.join(','), RATE_LIMIT_PER_MINUTE: '5', KEY_PREFIX: prefix };
    const one = await start(environment);
    const two = await start(environment);
    for (const on of [one, two, one, two, one])
      assert.equal((await request(`${on.url}/models`, { headers: bearer(aliceKey) })).status, 200);
    for (const on of [two, one]) {
      const limited = await request(`${on.url}/models`, { headers: bearer(aliceKey) });
      const body = assertError(limited, 429);
      assert.match(body.error, /too many requests/);
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(
        Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
        `Retry-After ${limited.headers.get('retry-after')}`,
      );
    }
    // Another client has its own budget; /health is not counted.
    assert.equal((await request(`${two.url}/models`, { headers: bearer(bobKey) })).status, 200);
    for (let i = 0; i < 10; i++) assert.equal((await request(`${one.url}/health`)).status, 200);
  });

  it('refuses a JSON body over BODY_LIMIT_BYTES with 413', async () => {
    const small = await start({ BODY_LIMIT_BYTES: '1024', RATE_LIMIT_PER_MINUTE: '0' });
    assertError(await postJob(small, null, { model: 'lenet5', dataset: 'mnist', padding: 'x'.repeat(2000) }), 413);
  });
});
