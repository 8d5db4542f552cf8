/**
 * Webhooks against a real receiver on loopback (a node:http server here; the service is told to
 * allow loopback addresses, and only the host 127.0.0.1): the signature recomputed from the
 * secret, a retry after a 500 and nothing after the success, the attempts recorded on the job,
 * the allow-list refusing another host with a 400, a cancelled job's delivery, and a receiver that
 * never answers leaving the job's end undelayed; an experiment's webhook called once, when its
 * last run has ended. Small jobs and retries a tenth of a second apart keep it to a few seconds.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { ErrorBody } from '../../src/contract/errors.ts';
import type { Experiment, ExperimentList } from '../../src/contract/experiment.ts';
import type { Job } from '../../src/contract/job.ts';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import { clientOf, submitJob, waitForJob } from '../support/jobs.ts';
import { startLoggedTestService, type LoggedTestService } from '../support/logged-service.ts';
import { request, waitFor } from '../support/service.ts';

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const secret = 'whsec-test-3f9a1c0e7b5d4a2f';
const smallJob: JobRequestInput = {
  model: 'lenet5',
  dataset: 'mnist',
  epochs: 1,
  trainLimit: 64,
  testLimit: 64,
  batchSize: 32,
  logEvery: 1,
  seed: 1,
};

let service: LoggedTestService;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
/** Requests to /hang, never answered until the test lets them go. */
const hanging: ServerResponse[] = [];

/** The receiver: /flaky answers 500 to its first request and 200 to the others; /hang never answers. */
function answer(path: string, response: ServerResponse): void {
  if (path === '/hang') {
    hanging.push(response);
    return;
  }
  const first = received.filter((each) => each.path === path).length === 1;
  response.writeHead(path === '/flaky' && first ? 500 : 200).end();
}

before(async () => {
  receiver = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const path = incoming.url ?? '';
      received.push({ path, headers: incoming.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(path, response);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  assert.ok(address && typeof address === 'object');
  receiverUrl = `http://127.0.0.1:${address.port}`;
  service = await startLoggedTestService({
    WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    WEBHOOK_FIRST_RETRY_MS: '100',
    WEBHOOK_RETRY_FOR_SECONDS: '1',
    WEBHOOK_TIMEOUT_MS: '500',
  });
});

after(async () => {
  for (const response of hanging) response.destroy();
  await service?.close();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

function submit(webhookPath: string, settings: Partial<JobRequestInput> = {}): Promise<Job> {
  return submitJob(service, { ...smallJob, ...settings, webhook: { url: `${receiverUrl}${webhookPath}`, secret } });
}

const getJob = (id: string) => clientOf(service).job(id);

/** Checks Webhook-Signature as a receiver would: `t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, recent. */
function assertSigned(delivery: Received): void {
  const header = String(delivery.headers['webhook-signature']);
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  assert.ok(match, `Webhook-Signature: ${header}`);
  const [, timestamp = '', signature = ''] = match;
  assert.ok(Math.abs(Date.now() / 1000 - Number(timestamp)) < 60, 'the timestamp is now');
  const expected = createHmac('sha256', secret).update(`${timestamp}.${delivery.body}`).digest();
  assert.ok(
    timingSafeEqual(Buffer.from(signature, 'hex'), expected),
    'the signature is the HMAC of the timestamp and the raw body',
  );
  assert.notDeepEqual(
    createHmac('sha256', 'another secret of some length').update(`${timestamp}.${delivery.body}`).digest(),
    expected,
  );
}

describe('webhooks', () => {
  it('answers 400 for a URL whose host is not on the allow-list, and shows the URL but never the secret', async () => {
    const refused = await request<ErrorBody>(`${service.url}/jobs`, {
      method: 'POST',
      json: { ...smallJob, webhook: { url: receiverUrl.replace('127.0.0.1', 'localhost'), secret } },
    });
    assert.equal(refused.status, 400);
    assert.deepEqual(
      refused.body.details?.map((detail) => detail.path),
      ['webhook.url'],
    );
    assert.match(refused.body.error, /host localhost is not on this server's list of allowed webhook hosts/);
    const listed = await request<{ jobs: Job[] }>(`${service.url}/jobs`);
    assert.equal(listed.body.jobs.length, 0, 'no job was created');
  });

  it('retries a delivery that got a 500, signed the same way with the same Webhook-Id, records both attempts and delivers nothing after the success', async () => {
    const job = await submit('/flaky');
    assert.deepEqual(job.webhook, { url: `${receiverUrl}/flaky`, secretSet: true, deliveries: [] });
    const ended = await waitForJob(service, job.id, (current) => (current.webhook?.deliveries.length ?? 0) >= 2, {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    assert.equal(ended.state, 'completed');

    const deliveries = received.filter((each) => each.path === '/flaky');
    assert.equal(deliveries.length, 2);
    const [first, second] = deliveries;
    assert.ok(first && second);
    for (const delivery of deliveries) {
      assertSigned(delivery);
      assert.equal(delivery.headers['content-type'], 'application/json');
    }
    const webhookId = String(first.headers['webhook-id']);
    assert.ok(webhookId.length > 0);
    assert.equal(second.headers['webhook-id'], webhookId, 'a retry has the same Webhook-Id');
    assert.equal(second.body, first.body, 'a retry sends the same body');

    // The job as GET /jobs/:id shows it at its end: only the deliveries since differ.
    const sent = JSON.parse(first.body) as Job;
    assert.deepEqual({ ...sent, webhook: undefined }, { ...ended, webhook: undefined });
    assert.deepEqual(sent.webhook, { url: `${receiverUrl}/flaky`, secretSet: true, deliveries: [] });
    assert.ok(sent.result?.perClass, 'with the result of the job');

    const attempts = ended.webhook?.deliveries ?? [];
    assert.deepEqual(
      attempts.map(({ webhookId: id, attempt, ok, statusCode, error }) => ({ id, attempt, ok, statusCode, error })),
      [
        { id: webhookId, attempt: 1, ok: false, statusCode: 500, error: 'the receiver answered 500' },
        { id: webhookId, attempt: 2, ok: true, statusCode: 200, error: null },
      ],
    );
    assert.ok(
      Date.parse(attempts[1]?.at ?? '') - Date.parse(attempts[0]?.at ?? '') >= 100,
      'the retry waited WEBHOOK_FIRST_RETRY_MS',
    );
    assert.ok(Date.parse(attempts[0]?.at ?? '') >= Date.parse(ended.finishedAt ?? ''), 'delivered once the job ended');

    // Longer than every retry the schedule has left (0.2 + 0.4 s): none comes after the success.
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(received.filter((each) => each.path === '/flaky').length, 2);
    assert.equal((await getJob(job.id)).webhook?.deliveries.length, 2);

    const everything = [
      JSON.stringify(await getJob(job.id)),
      JSON.stringify((await request(`${service.url}/jobs`)).body),
      ...received.map((each) => each.body),
      ...service.lines,
    ];
    assert.ok(
      everything.every((text) => !text.includes(secret)),
      'the secret is in no answer, delivery or log line',
    );
  });

  it('calls the webhook of a job the API cancelled, with the cancelled job', async () => {
    const job = await submit('/cancelled', { epochs: 50 });
    await clientOf(service).cancel(job.id);
    const delivery = await waitFor(
      'the delivery',
      async () => received.find((each) => each.path === '/cancelled'),
      30_000,
      20,
    );
    assertSigned(delivery);
    assert.equal(delivery.headers['webhook-id'], `job-${job.id}-cancelled`);
    const sent = JSON.parse(delivery.body) as Job;
    assert.equal(sent.state, 'cancelled');
    assert.equal(sent.id, job.id);
  });

  it('ends a job on time while its receiver never answers, and records the attempt as timed out', async () => {
    const silent = await submit('/hang');
    await waitFor('the delivery to reach the receiver', async () => (hanging.length > 0 ? true : null), 30_000, 20);
    const whileHanging = await getJob(silent.id);
    assert.equal(whileHanging.state, 'completed', 'the job ended before its receiver answered');
    assert.deepEqual(whileHanging.webhook?.deliveries, [], 'the attempt is still waiting for its answer');
    const attempt = await waitFor(
      'the attempt to time out',
      async () => (await getJob(silent.id)).webhook?.deliveries[0],
      10_000,
      50,
    );
    assert.deepEqual(
      { ok: attempt.ok, statusCode: attempt.statusCode, error: attempt.error },
      { ok: false, statusCode: null, error: 'no answer within 500 ms' },
    );
  });
  it("calls an experiment's webhook once, when its last run has ended, with the experiment as GET /experiments/:id shows it", async () => {
    const webhook = { url: `${receiverUrl}/experiment`, secret };
    const refused = await request<ErrorBody>(`${service.url}/experiments`, {
      method: 'POST',
      json: {
        base: smallJob,
        grid: { seed: [1, 2] },
        webhook: { ...webhook, url: webhook.url.replace('127.0.0.1', 'localhost') },
      },
    });
    assert.equal(refused.status, 400);
    assert.deepEqual(
      refused.body.details?.map((detail) => detail.path),
      ['webhook.url'],
    );
    assert.equal(
      (await request<ExperimentList>(`${service.url}/experiments`)).body.experiments.length,
      0,
      'no experiment was created',
    );

    const created = await request<Experiment>(`${service.url}/experiments`, {
      method: 'POST',
      json: { base: smallJob, grid: { seed: [1, 2] }, webhook },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.webhook, { url: webhook.url, secretSet: true, deliveries: [] });
    const delivery = await waitFor(
      'the delivery',
      async () => received.find((each) => each.path === '/experiment'),
      30_000,
      20,
    );
    assertSigned(delivery);
    assert.equal(delivery.headers['webhook-id'], `experiment-${created.body.id}-ended`);

    const sent = JSON.parse(delivery.body) as Experiment;
    const shown = await waitFor(
      'the delivery to be recorded',
      async () => {
        const current = (await request<Experiment>(`${service.url}/experiments/${created.body.id}`)).body;
        return current.webhook?.deliveries.length ? current : null;
      },
      10_000,
      20,
    );
    assert.deepEqual({ ...sent, webhook: undefined }, { ...shown, webhook: undefined });
    assert.equal(sent.ended, true);
    assert.deepEqual(
      sent.runs.map((run) => run.state),
      ['completed', 'completed'],
    );
    assert.ok(sent.best?.result, 'with the best run and its result');
    const runs = await Promise.all(sent.runs.map(async (run) => getJob(run.id)));
    for (const run of runs) assert.equal(run.webhook, undefined, 'the runs have no webhook of their own');
    const lastEnd = Math.max(...runs.map((run) => Date.parse(run.finishedAt ?? '')));
    assert.ok(Date.parse(shown.webhook?.deliveries[0]?.at ?? '') >= lastEnd, 'delivered once the last run ended');

    // Both runs' ends were read; the experiment is delivered once, not once per run.
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(received.filter((each) => each.path === '/experiment').length, 1);
    const after = (await request<Experiment>(`${service.url}/experiments/${created.body.id}`)).body;
    assert.deepEqual(
      after.webhook?.deliveries.map(({ attempt, ok, statusCode }) => ({ attempt, ok, statusCode })),
      [{ attempt: 1, ok: true, statusCode: 200 }],
    );
    const listed = JSON.stringify((await request(`${service.url}/experiments`)).body);
    assert.ok(
      ![JSON.stringify(after), listed, delivery.body].some((text) => text.includes(secret)),
      'the secret is in no answer or delivery',
    );
  });
});
