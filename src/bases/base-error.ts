/**
 * An uploaded base this server refuses, with the reason as the client reads it and the status it
 * answers: 400 for what the model is or holds, 413 for its size, 415 for a body that is no archive.
 */
export class BaseError extends Error {
  override readonly name = 'BaseError';

  constructor(
    message: string,
    readonly statusCode: 400 | 413 | 415 = 400,
  ) {
    super(message);
  }
}
