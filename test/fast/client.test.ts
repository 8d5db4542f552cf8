/** The HTTP client against small loopback servers: its errors, a broken event stream resumed, and its waits. */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import { ApiError, TrainerClient, UnreachableError } from '../../src/client/index.ts';
import type { Base } from '../../src/contract/bases.ts';
import type { Job, JobState } from '../../src/contract/job.ts';
import { storedJobSettings } from '../support/job-settings.ts';
import { freePort } from '../support/ports.ts';

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

/** A client of a server that answers every request with `handle`. */
async function clientOf(handle: (request: IncomingMessage, response: ServerResponse) => void): Promise<TrainerClient> {
  const server = createServer(handle);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return new TrainerClient(`http://127.0.0.1:${address.port}/`, 'key-1');
}

const at = '2026-01-01T00:00:00.000Z';

function jobIn(state: JobState): Job {
  return {
    id: 'job-1',
    state,
    request: storedJobSettings,
    progress: { epoch: 0, epochs: 1, batch: 0, batchesPerEpoch: 10, fraction: 0 },
    logs: [],
    epochs: [],
    result: null,
    error: state === 'failed' ? { message: 'out of memory' } : null,
    createdAt: at,
    startedAt: null,
    finishedAt: state === 'queued' || state === 'running' ? null : at,
  };
}

const sse = (id: string, type: string, data: unknown) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

describe('TrainerClient', () => {
  it("throws the contract's error body as an ApiError, with its status and details, and sends the API key", async () => {
    let authorization: string | undefined;
    const client = await clientOf((request, response) => {
      authorization = request.headers.authorization;
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: 'epochs is too small', details: [{ path: 'epochs', message: '>= 1' }] }));
    });
    const error = await client.submit({ model: 'lenet5', dataset: 'mnist', epochs: 0 }).catch((caught) => caught);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.equal(error.message, 'epochs is too small');
    assert.deepEqual(error.details, [{ path: 'epochs', message: '>= 1' }]);
    assert.equal(authorization, 'Bearer key-1');
  });

  it("says the status line of an error page that isn't the contract's, and refuses an answer the contract doesn't describe", async () => {
    const client = await clientOf((request, response) => {
      if (request.url === '/jobs/bad-gateway') {
        response.writeHead(502, 'Bad Gateway', { 'content-type': 'text/html' });
        response.end('<h1>proxy error</h1>');
      } else {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ id: 'job-1' }));
      }
    });
    await assert.rejects(client.job('bad-gateway'), { name: 'ApiError', status: 502, message: 'HTTP 502 Bad Gateway' });
    await assert.rejects(client.job('job-1'), {
      name: 'ApiError',
      message: "the server's answer to GET /jobs/job-1 is not what the API describes",
    });
  });

  it('throws UnreachableError, saying why, when nothing listens', async () => {
    const client = new TrainerClient(`http://127.0.0.1:${await freePort()}`);
    const error = await client.health().catch((caught) => caught);
    assert.ok(error instanceof UnreachableError);
    assert.match(error.message, /^cannot reach the server at http:\/\/127\.0\.0\.1:\d+ \(connection refused\)$/);
  });

  it('resumes a broken event stream after the last event it received, and stops at the end', async () => {
    const asked: (string | undefined)[] = [];
    const client = await clientOf((request, response) => {
      const lastEventId = request.headers['last-event-id'] as string | undefined;
      asked.push(lastEventId);
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      if (lastEventId === undefined) {
        response.write('retry: 10\n\n');
        response.write(sse('1-0', 'state', { at, state: 'queued', previous: null }));
        response.write(sse('2-0', 'state', { at, state: 'running', previous: 'queued' }));
        // Half an event, then the connection breaks.
        response.end('id: 3-0\nevent: state\n');
      } else {
        response.end(sse('3-0', 'end', { at, state: 'cancelled', result: null, error: null }));
      }
    });
    const events = [];
    for await (const event of client.events('job-1')) events.push(event);
    assert.deepEqual(
      events.map((event) => [event.id, event.type]),
      [
        ['1-0', 'state'],
        ['2-0', 'state'],
        ['3-0', 'end'],
      ],
    );
    assert.deepEqual(asked, [undefined, '2-0']);
  });

  it('waits until the job is in the state, and fails at once when it ended in another', async () => {
    const states: JobState[] = ['queued', 'running', 'completed'];
    let polls = 0;
    const client = await clientOf((request, response) => {
      const state = states[Math.min(polls++, states.length - 1)] as JobState;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(jobIn(request.url === '/jobs/failing' ? 'failed' : state)));
    });
    assert.equal((await client.waitForJob('job-1', 'running', { intervalMs: 1 })).state, 'running');
    assert.equal((await client.waitForJob('job-1', undefined, { intervalMs: 1 })).state, 'completed');
    await assert.rejects(client.waitForJob('failing', 'running', { intervalMs: 1 }), {
      message: 'job job-1 ended failed (out of memory) while waiting for it to be running',
    });
  });

  it('uploads a base as the raw zip with its name in the query, lists, shows and deletes bases', async () => {
    const uploaded: Base = {
      id: 'base-1',
      name: 'my net',
      network: 'lenet5',
      input: { height: 28, width: 28, channels: 1 },
      classes: 10,
      coveredLayers: ['conv2d'],
      bytes: 3,
      createdAt: at,
    };
    const seen: { method?: string; url?: string; type?: string; body: string }[] = [];
    const client = await clientOf((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        seen.push({
          method: request.method,
          url: request.url,
          type: request.headers['content-type'],
          body: Buffer.concat(chunks).toString(),
        });
        if (request.method === 'DELETE') {
          response.writeHead(204).end();
          return;
        }
        response.writeHead(request.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(request.url === '/bases' ? { bases: [uploaded] } : uploaded));
      });
    });
    const zip = { name: 'net.zip', bytes: new Uint8Array([80, 75, 3]), type: 'application/zip' };
    assert.deepEqual(await client.uploadBase(zip, { name: 'my net' }), uploaded);
    assert.deepEqual(await client.bases(), { bases: [uploaded] });
    assert.deepEqual(await client.base('base 1'), uploaded);
    await client.deleteBase('base-1');
    assert.deepEqual(
      seen.map(({ method, url, type }) => [method, url, type]),
      [
        ['POST', '/bases?name=my+net', 'application/zip'],
        ['GET', '/bases', undefined],
        ['GET', '/bases/base%201', undefined],
        ['DELETE', '/bases/base-1', undefined],
      ],
    );
    assert.equal(seen[0]?.body, 'PK\u0003');
  });
});
