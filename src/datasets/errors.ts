/** Error helpers shared by the data set readers (IDX, tar, MNIST, CIFAR-10). */
import { DatasetError } from './dataset.ts';

/** What the user can do about a bad file, when the caller has nothing more specific to say. */
export const DEFAULT_REMEDY = 'Delete it so that it is downloaded again, or put a good copy there.';

/** A DatasetError for a bad file on disk: what is wrong, which file, what to do about it. */
export function badFileError(file: string, problem: string, remedy = DEFAULT_REMEDY): DatasetError {
  return new DatasetError(`${file} ${problem}. ${remedy}`);
}

/** The message of whatever was thrown, for embedding in a DatasetError. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
