/** A mistake in the command line: usage help and exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A local failure that is no usage mistake (an unreadable file, a job that did not complete): one line, exit status 1. */
export class Failure extends Error {
  override readonly name = 'Failure';
}
