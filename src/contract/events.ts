import { z } from 'zod';
import { epochSummary, finalJobState, jobError, jobProgress, jobResult, jobState, lossLogLine } from './job.ts';

/**
 * GET /jobs/:id/events: what a job reports while it runs, as Server-Sent Events. Each event's
 * `event:` field is its type, its `data:` one JSON object of the type's schema below, and its `id:`
 * the position in the job's event stream (resume after it with the Last-Event-ID header).
 */
const jobEventTypes = ['state', 'progress', 'log', 'epoch', 'rewind', 'end'] as const;
export type JobEventType = (typeof jobEventTypes)[number];

const at = z.iso.datetime().meta({ description: 'when the event happened (the writer’s clock), ISO-8601 UTC' });

const stateEvent = z
  .object({
    at,
    state: jobState,
    previous: jobState.nullable().meta({
      description:
        'the state before; null when the job was created. running → queued: its worker shut down and handed it back; running → running: its worker died and another took it over (a rewind event follows)',
    }),
  })
  .meta({ id: 'StateEvent', description: 'the job changed state' });
type StateEvent = z.infer<typeof stateEvent>;

const progressEvent = z
  .object({ at, progress: jobProgress })
  .meta({ id: 'ProgressEvent', description: 'training progress between log lines, at most about once a second' });
type ProgressEvent = z.infer<typeof progressEvent>;

const logEvent = z.object({ at, line: lossLogLine, progress: jobProgress }).meta({
  id: 'LogEvent',
  description: 'a loss log line, as appended to the job’s logs, and the progress that came with it',
});
type LogEvent = z.infer<typeof logEvent>;

const epochEvent = z
  .object({ at, summary: epochSummary, progress: jobProgress })
  .meta({ id: 'EpochEvent', description: 'an epoch ended: its summary, as appended to the job’s epochs' });
type EpochEvent = z.infer<typeof epochEvent>;

const rewindEvent = z
  .object({
    at,
    logLines: z
      .number()
      .int()
      .nonnegative()
      .meta({ description: 'log lines kept: drop the ones received after these' }),
    epochs: z.number().int().nonnegative().meta({ description: 'epochs kept: drop the ones received after these' }),
    progress: jobProgress,
  })
  .meta({
    id: 'RewindEvent',
    description:
      'the job goes on from an earlier point (its last checkpoint, or the start when it had none) after its worker stopped: what was logged after that point is trained again and was dropped from the job',
  });
export type RewindEvent = z.infer<typeof rewindEvent>;

const endEvent = z
  .object({
    at,
    state: finalJobState,
    result: jobResult.nullable().meta({ description: 'the result of a completed job; null otherwise' }),
    error: jobError.nullable().meta({ description: 'why a failed job failed; null otherwise' }),
  })
  .meta({ id: 'EndEvent', description: 'the last event: the job ended; the server closes the stream after it' });
export type EndEvent = z.infer<typeof endEvent>;

export interface JobEventData {
  state: StateEvent;
  progress: ProgressEvent;
  log: LogEvent;
  epoch: EpochEvent;
  rewind: RewindEvent;
  end: EndEvent;
}

/** One event as a client receives it: the SSE id, type and parsed data. */
export type JobEvent = {
  [T in JobEventType]: { readonly id: string; readonly type: T; readonly data: JobEventData[T] };
}[JobEventType];

/** The `data:` of any event, for the OpenAPI document: one of the types above. */
export const jobEventData = z.union([stateEvent, progressEvent, logEvent, epochEvent, rewindEvent, endEvent]).meta({
  id: 'JobEventData',
  description: 'the data of one event; its SSE event field names the type: state, progress, log, epoch, rewind or end',
});

/** Redis stream ids: `<milliseconds>-<sequence>`. */
const eventIdPattern = /^\d{1,20}-\d{1,20}$/;
const eventId = z
  .string()
  .regex(eventIdPattern, { error: 'must be an event id the stream sent (like 1718000000000-0)' });

export const jobEventsQuery = z.strictObject({
  lastEventId: eventId.optional().meta({
    description:
      'resume after this event, for clients that cannot send the Last-Event-ID header (the header wins when both are given)',
  }),
});

/** Loose: the other request headers pass through untouched. */
export const jobEventsHeaders = z.looseObject({
  'last-event-id': eventId
    .optional()
    .meta({ description: 'resume after this event id: what an EventSource sends when it reconnects' }),
});

export function isJobEventType(value: string): value is JobEventType {
  return (jobEventTypes as readonly string[]).includes(value);
}

/** Parses one event's data by its type; throws a ZodError when it doesn't fit. */
export function parseJobEvent(id: string, type: JobEventType, data: unknown): JobEvent {
  switch (type) {
    case 'state':
      return { id, type, data: stateEvent.parse(data) };
    case 'progress':
      return { id, type, data: progressEvent.parse(data) };
    case 'log':
      return { id, type, data: logEvent.parse(data) };
    case 'epoch':
      return { id, type, data: epochEvent.parse(data) };
    case 'rewind':
      return { id, type, data: rewindEvent.parse(data) };
    case 'end':
      return { id, type, data: endEvent.parse(data) };
  }
}
