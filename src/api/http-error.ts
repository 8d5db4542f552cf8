import type { ErrorDetail } from '../contract/errors.ts';

/** An answer the contract lists (4xx, or 503 for a missing component), with its readable sentence. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: 400 | 401 | 404 | 409 | 413 | 415 | 429 | 503,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
  }
}

/**
 * A body the schema accepted but this server refuses (a limit, a field that another needs, an
 * unusable data set): 400 with `message` as the detail on `path`, and as the sentence after
 * `subject` (the field it speaks of, when the message doesn't name it itself).
 */
export function invalidBody(path: string, message: string, subject?: string): HttpError {
  return new HttpError(400, `the body is invalid: ${subject ? `${subject} ` : ''}${message}`, [{ path, message }]);
}

export const jobNotFound = (id: string) => new HttpError(404, `no job with id ${id}`);
export const experimentNotFound = (id: string) => new HttpError(404, `no experiment with id ${id}`);

/**
 * What to throw for an error met while reading a multipart body: the limits' errors (413) and ours
 * keep their status; what the multipart parser itself throws (no boundary, a body that ends
 * mid-part) is the client's malformed body, 400.
 */
export function multipartFailure(error: unknown, tooManyFiles: string): Error {
  if (hasCode(error, 'FST_FILES_LIMIT')) return new HttpError(413, tooManyFiles);
  if (error instanceof HttpError || hasStatus(error)) return error as Error;
  return new HttpError(
    400,
    `the multipart body is malformed: ${error instanceof Error ? error.message : String(error)}`,
  );
}

function hasCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

/** An error that carries an HTTP status of its own (ours, or a Fastify plugin's), to be answered with it. */
export function hasStatus(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && typeof (error as { statusCode?: unknown }).statusCode === 'number'
  );
}
