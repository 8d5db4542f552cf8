import type { FastifyBaseLogger } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { errorBody } from '../../contract/errors.ts';
import { type EndEvent, jobEventData, jobEventsHeaders, jobEventsQuery } from '../../contract/events.ts';
import { finalStates, jobIdParams, type JobState } from '../../contract/job.ts';
import type { JobStore } from '../../store/job-store.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { HttpError, jobNotFound } from '../http-error.ts';
import { assertOwnJob } from '../ownership.ts';
import { SseResponse } from '../sse-writer.ts';

export interface EventRoutesOptions extends ApiDependencies {
  /** How long a stream may stay silent before a heartbeat comment; 15 s unless a test wants it shorter. */
  readonly heartbeatMs?: number;
}

/** Events read from Redis at once; a late client's replay comes in chunks of this many. */
const readCount = 200;
/** The reconnection delay an EventSource is told to use. */
const retryMs = 2000;

const description = `Server-Sent Events (text/event-stream) of one job, from its creation to its end.
Event types (the SSE \`event\` field): \`state\`, \`progress\`, \`log\`, \`epoch\` and, last, \`end\` with the final state and the result or error; \`data\` is one JSON object (JobEventData).
On connect the stream replays every event so far, then follows the job live, and the server closes it after \`end\`.
Each event's \`id\` is its position in the job's stream: reconnect with the \`Last-Event-ID\` header (or the \`lastEventId\` query parameter) to resume after it without duplicates.
Comment lines (\`: heartbeat\`) keep an idle stream open about every 15 s.
204: the job has ended and the client already has its \`end\` event (an EventSource stops reconnecting).`;

/** GET /jobs/:id/events, read from the job's Redis stream, so any API process serves the events of a job any worker runs. */
export const eventRoutes: FastifyPluginAsyncZod<EventRoutesOptions> = async (app, { store, redis, config, heartbeatMs = 15_000 }) => {
  // Open streams end when the server closes, or closing would wait for every client to leave.
  const open = new Set<SseResponse>();
  app.addHook('preClose', async () => {
    for (const stream of open) stream.end();
  });

  app.get(
    '/jobs/:id/events',
    {
      schema: {
        summary: 'Follow a job as Server-Sent Events: replay, then live, until it ends',
        description,
        params: jobIdParams,
        // `access_token` (the API key, for EventSource clients) is taken and removed by the security plugin before validation.
        querystring: jobEventsQuery,
        headers: jobEventsHeaders,
        response: {
          200: { description: 'the event stream', content: { 'text/event-stream': { schema: jobEventData } } },
          // type null: no body, so the OpenAPI document lists no content for it.
          204: z.null().meta({ description: 'the job has ended and the client already has every event: nothing more will come', type: 'null' }),
          400: errorBody,
          401: errorBody,
          404: errorBody,
          429: errorBody,
          503: errorBody,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const after = request.headers['last-event-id'] ?? request.query.lastEventId ?? '0-0';
      await assertOwnJob(store, request, id);
      const state = await store.state(id);
      if (state === null) throw jobNotFound(id);

      let ended: EndEvent | null = null;
      if (isFinal(state)) {
        const last = await store.events.last(id);
        if (last === null) {
          // A job that ended before this server wrote events: its end, from its record, is all there is.
          if (after !== '0-0') return reply.code(204).send(null);
          ended = await endFromRecord(store, id);
        } else if (compareIds(last.id, after) <= 0) {
          return reply.code(204).send(null);
        }
      }

      const connection = ended ? null : await blockingConnection(redis, `${config.KEY_PREFIX}:events`);
      const stream = new SseResponse(reply.raw);
      reply.hijack();
      open.add(stream);
      // A client that goes away frees its connection at once, also from the middle of a blocked read.
      void stream.whenClosed().then(() => connection?.disconnect());
      stream.open(retryMs);
      try {
        if (ended) await stream.send({ type: 'end', data: JSON.stringify(ended) });
        else if (connection) await follow({ store, connection, stream, id, after, heartbeatMs, log: request.log });
      } finally {
        open.delete(stream);
        connection?.disconnect();
        stream.end();
      }
      return reply;
    },
  );
};

interface Following {
  readonly store: JobStore;
  readonly connection: Redis;
  readonly stream: SseResponse;
  readonly id: string;
  readonly after: string;
  readonly heartbeatMs: number;
  readonly log: FastifyBaseLogger;
}

/** Sends the events after `after`, then waits for new ones, until the `end` event or the client leaves. */
async function follow({ store, connection, stream, id, after, heartbeatMs, log }: Following): Promise<void> {
  let position = after;
  try {
    while (!stream.closed) {
      const events = await store.events.read(id, position, { count: readCount, blockMs: heartbeatMs, connection });
      for (const event of events) {
        await stream.send(event);
        position = event.id;
        if (event.type === 'end') return;
      }
      if (events.length > 0 || stream.closed) continue;
      await stream.comment('heartbeat');
      // Quiet for a while: a job deleted meanwhile, or one that ended under a worker that wrote no
      // events, would keep the stream open for ever. Its state is written with its events, so a
      // final state with nothing left to read means no end event is coming.
      const state = await store.state(id);
      if (state === null) return;
      if (isFinal(state) && (await store.events.read(id, position, { count: 1, connection })).length === 0) {
        await stream.send({ type: 'end', data: JSON.stringify(await endFromRecord(store, id)) });
        return;
      }
    }
  } catch (error) {
    // The client left (its connection was closed under the read), or Redis went away: the stream
    // ends without an end event, and an EventSource reconnects with Last-Event-ID.
    if (!stream.closed) log.warn({ err: error, jobId: id }, 'event stream ended early');
  }
}

/** A connection of the stream's own, since XREAD BLOCK holds it; it never reconnects, its stream ends instead. */
async function blockingConnection(redis: Redis, name: string): Promise<Redis> {
  const connection = redis.duplicate({
    lazyConnect: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectionName: name,
  });
  connection.on('error', () => undefined); // failures reach the commands that hit them
  try {
    await connection.connect();
    return connection;
  } catch {
    connection.disconnect();
    throw new HttpError(503, 'Redis is unreachable; try again shortly');
  }
}

function isFinal(state: JobState): boolean {
  return finalStates.includes(state);
}

async function endFromRecord(store: JobStore, id: string): Promise<EndEvent> {
  const job = await store.get(id);
  if (!job || !isFinal(job.state) || job.state === 'queued' || job.state === 'running') throw jobNotFound(id);
  return { at: job.finishedAt ?? new Date().toISOString(), state: job.state, result: job.result, error: job.error };
}

/** Orders two stream ids (`<ms>-<n>`) numerically. */
export function compareIds(a: string, b: string): number {
  const [aMs = 0n, aSeq = 0n] = a.split('-').map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split('-').map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  if (aSeq !== bSeq) return aSeq < bSeq ? -1 : 1;
  return 0;
}
