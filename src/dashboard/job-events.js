// @ts-check
/**
 * Following a job's events (GET /jobs/:id/events): the stream replays every event from the job's
 * creation, then follows it live.
 * @import { JobEventData, JobEventType } from '../contract/events.ts'
 */
import { jobEventsUrl } from './api.js';

/** @typedef {{ [T in JobEventType]: (data: JobEventData[T]) => void }} JobEventHandlers */

/**
 * Hands each event's data to the handler of its type.
 * @param {string} id
 * @param {JobEventHandlers} handlers
 * @returns {EventSource}  close it to stop following
 */
export function followJob(id, handlers) {
  const events = new EventSource(jobEventsUrl(id));
  /**
   * @template {JobEventType} T
   * @param {T} type
   * @param {(data: JobEventData[T]) => void} handle
   */
  const on = (type, handle) =>
    events.addEventListener(type, (message) => handle(/** @type {JobEventData[T]} */ (JSON.parse(message.data))));
  on('state', handlers.state);
  on('progress', handlers.progress);
  on('log', handlers.log);
  on('epoch', handlers.epoch);
  on('rewind', handlers.rewind);
  on('end', handlers.end);
  return events;
}
