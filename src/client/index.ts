/**
 * One client of the service's HTTP API, for the CLI, the demo, the benches and the tests: typed by
 * the contract's schemas, which check every answer.
 */
export { TrainerClient, type UploadFile } from './client.ts';
export { ApiError, UnreachableError } from './errors.ts';
export { parseSse, type SseMessage } from './sse.ts';
export { hasEnded, type JobCondition } from './wait.ts';
