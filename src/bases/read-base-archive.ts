import { archiveEntries, type ArchiveFormat, type ArchiveLimits } from '../archives/archive.ts';
import { entryPathSegments, isHiddenEntry } from '../archives/entry-path.ts';
import { BaseError } from './base-error.ts';

export interface BaseArchiveLimits extends ArchiveLimits {
  /** Most bytes the archive's files may unpack to, all held in memory (MAX_BASE_UPLOAD_BYTES). */
  readonly maxModelBytes: number;
}

/**
 * The files of an uploaded base's archive, by their path inside it (`/`-separated, normalised),
 * read into memory: a base is model.json and its weight shards, a few files the model's size.
 * The archive goes through the data sets' limits (entries, declared sizes: a zip bomb is refused
 * before anything is inflated) and paths (none may start at the root or climb out with `..`);
 * links, hidden files and macOS's `__MACOSX/` are passed over, never read.
 */
export async function readBaseArchive(
  file: string,
  format: ArchiveFormat,
  limits: BaseArchiveLimits,
): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  let unpacked = 0;
  for await (const entry of archiveEntries(file, format, limits)) {
    const segments = entryPathSegments(entry.path);
    if (entry.kind !== 'file' || isHiddenEntry(segments)) continue;
    // Counted from what each entry declares, before it is read: what the zip reader inflates stops there.
    unpacked += entry.size;
    if (unpacked > limits.maxModelBytes) {
      throw new BaseError(
        `the archive's files unpack to more than ${limits.maxModelBytes} bytes, the most a base may have (MAX_BASE_UPLOAD_BYTES)`,
        413,
      );
    }
    const path = segments.join('/');
    if (files.has(path)) throw new BaseError(`the archive holds ${path} twice`);
    files.set(path, await entry.read());
  }
  return files;
}
