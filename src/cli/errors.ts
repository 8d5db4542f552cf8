/** A mistake in the command line: usage help and exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A local failure that is no usage mistake (an unreadable file, a job that did not complete): one line, exit status 1. */
export class Failure extends Error {
  override readonly name = 'Failure';
}

/** The server answered with an error: its status and the contract's one readable sentence. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** No answer at all: nothing listens there, the name doesn't resolve, or it took too long. */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}
