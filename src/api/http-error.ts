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

export const jobNotFound = (id: string) => new HttpError(404, `no job with id ${id}`);
