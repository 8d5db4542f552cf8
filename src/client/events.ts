import { setTimeout as delay } from 'node:timers/promises';
import { isJobEventType, parseJobEvent, type JobEvent } from '../contract/events.ts';
import { errorFrom, type Http } from './http.ts';
import { UnreachableError } from './errors.ts';
import { parseSse } from './sse.ts';

export interface FollowOptions {
  /** Resume after this event id. */
  readonly lastEventId?: string;
  /** Reconnections in a row that may fail before giving up (a dropped stream resumes where it was). */
  readonly retries?: number;
  readonly retryDelayMs?: number;
}

/**
 * GET /jobs/:id/events from the start (or after `lastEventId`) until the job's `end` event. A
 * stream that breaks off is resumed after the last event received, so none is missed or repeated;
 * a 204 (the client already had the end) ends it without one.
 */
export async function* followEvents(http: Http, id: string, options: FollowOptions = {}): AsyncGenerator<JobEvent> {
  let lastEventId = options.lastEventId;
  let retryDelayMs = options.retryDelayMs ?? 1000;
  const retries = options.retries ?? 5;
  let failures = 0;
  for (;;) {
    let response: Response;
    try {
      response = await http.fetch(`/jobs/${encodeURIComponent(id)}/events`, {
        headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
      });
    } catch (error) {
      if (!(error instanceof UnreachableError) || lastEventId === undefined || ++failures > retries) throw error;
      await delay(retryDelayMs);
      continue;
    }
    if (response.status === 204) return;
    if (!response.ok || !response.body) throw await errorFrom(response);
    try {
      for await (const message of parseSse(response.body, { onRetry: (ms) => (retryDelayMs = ms) })) {
        if (!isJobEventType(message.event)) continue;
        const event = parseJobEvent(message.id ?? '', message.event, JSON.parse(message.data));
        failures = 0;
        if (message.id) lastEventId = message.id;
        yield event;
        if (event.type === 'end') return;
      }
    } catch (error) {
      if (error instanceof SyntaxError || (error as Error).name === 'ZodError') throw error;
      // The connection broke mid-stream: resume below.
    }
    if (++failures > retries)
      throw new UnreachableError(`the event stream of job ${id} broke off and could not be resumed`);
    await delay(retryDelayMs);
  }
}
