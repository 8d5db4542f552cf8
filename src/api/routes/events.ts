import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody } from '../../contract/errors.ts';
import { type EndEvent, jobEventData, jobEventsHeaders, jobEventsQuery } from '../../contract/events.ts';
import { jobIdParams } from '../../contract/job.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { compareIds, endFromRecord, isFinal } from '../event-fanout.ts';
import { jobNotFound } from '../http-error.ts';
import { assertOwnJob } from '../ownership.ts';
import { SseResponse } from '../sse-writer.ts';

/** The reconnection delay an EventSource is told to use. */
const retryMs = 2000;

const description = `Server-Sent Events (text/event-stream) of one job, from its creation to its end.
Event types (the SSE \`event\` field): \`state\`, \`progress\`, \`log\`, \`epoch\` and, last, \`end\` with the final state and the result or error; \`data\` is one JSON object (JobEventData).
On connect the stream replays every event so far, then follows the job live, and the server closes it after \`end\`.
Each event's \`id\` is its position in the job's stream: reconnect with the \`Last-Event-ID\` header (or the \`lastEventId\` query parameter) to resume after it without duplicates.
Comment lines (\`: heartbeat\`) keep an idle stream open about every 15 s.
A client that reads too slowly (its unsent bytes past the server's EVENT_STREAM_BUFFER_BYTES) is disconnected: it resumes with \`Last-Event-ID\`.
204: the job has ended and the client already has its \`end\` event (an EventSource stops reconnecting).`;

/** GET /jobs/:id/events, read from the job's Redis stream, so any API process serves the events of a job any worker runs. */
export const eventRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { store, config, eventFanout }) => {
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
          204: z.null().meta({
            description: 'the job has ended and the client already has every event: nothing more will come',
            type: 'null',
          }),
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
          if (!ended) throw jobNotFound(id);
        } else if (compareIds(last.id, after) <= 0) {
          return reply.code(204).send(null);
        }
      }

      const stream = new SseResponse(reply.raw, config.EVENT_STREAM_BUFFER_BYTES);
      reply.hijack();
      open.add(stream);
      stream.open(retryMs);
      try {
        if (ended) await stream.send({ type: 'end', data: JSON.stringify(ended) });
        else await eventFanout.follow(id, after, stream);
      } finally {
        open.delete(stream);
        stream.end();
      }
      if (stream.cutOff)
        request.log.info(
          { jobId: id, maxBufferedBytes: config.EVENT_STREAM_BUFFER_BYTES },
          'event stream client cut off: it read too slowly (it resumes with Last-Event-ID)',
        );
      return reply;
    },
  );
};
