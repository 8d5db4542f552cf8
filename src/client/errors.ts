import type { ErrorBody } from '../contract/errors.ts';

/** The server answered with an error: its status and the contract's body, `{ error, details? }`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(body.error);
  }

  /** The fields a 400 names, each with what is wrong with it; empty when the answer names none. */
  get details(): NonNullable<ErrorBody['details']> {
    return this.body.details ?? [];
  }
}

/** No answer at all: nothing listens there, the name doesn't resolve, or it took too long. */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}
