import { open } from 'node:fs/promises';
import { tarEntries } from './tar-stream.ts';
import { zipEntries } from './zip-reader.ts';

/** The archive formats a data set may come in, told apart by their first bytes. */
export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';

/** One entry of an archive: its path as the archive spells it, and for a file its bytes, read on demand. */
export interface ArchiveEntry {
  readonly path: string;
  readonly kind: 'file' | 'directory' | 'link' | 'other';
  /** The size it unpacks to, as the archive declares it. */
  readonly size: number;
  /** The entry's bytes (files only), checked against what the archive declares. */
  read(): Promise<Buffer>;
}

/** What reading an archive may cost, checked from what it declares before anything is unpacked. */
export interface ArchiveLimits {
  readonly maxEntries: number;
  readonly maxUnpackedBytes: number;
}

/** An archive that can't be read: not one, truncated, corrupt, or past a limit. The message says which. */
export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
}

/** The format of an archive from its first 512 bytes or fewer, or null when it is none of them. */
export function archiveFormatOf(head: Uint8Array): ArchiveFormat | null {
  if (
    head[0] === 0x50 &&
    head[1] === 0x4b &&
    ((head[2] === 0x03 && head[3] === 0x04) || (head[2] === 0x05 && head[3] === 0x06))
  )
    return 'zip';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  // POSIX and GNU tar write "ustar" at byte 257 of every header.
  if (head.length >= 262 && String.fromCharCode(...head.subarray(257, 262)) === 'ustar') return 'tar';
  // An empty tar archive is its end-of-archive marker alone: zero blocks.
  if (head.length === 512 && head.every((byte) => byte === 0)) return 'tar';
  return null;
}

/** The format of the archive in `file`, from its first bytes. */
export async function archiveFormatOfFile(file: string): Promise<ArchiveFormat | null> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return archiveFormatOf(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/**
 * Every entry of the archive in `file`, in archive order. A zip's entries come from its central
 * directory, checked as a whole against `limits` before the first is yielded; a tar's are
 * streamed, their declared sizes counted as they come. An entry's `read()` must be awaited
 * before the next entry is asked for.
 */
export function archiveEntries(
  file: string,
  format: ArchiveFormat,
  limits: ArchiveLimits,
): AsyncIterable<ArchiveEntry> {
  return format === 'zip' ? zipEntries(file, limits) : tarEntries(file, format === 'tar.gz', limits);
}

/** Refuses an archive whose declared entries or sizes pass the limits: a zip bomb is refused by counting, before unpacking. */
export function checkDeclared(entries: number, unpackedBytes: number, limits: ArchiveLimits): void {
  if (entries > limits.maxEntries) {
    throw new ArchiveError(
      `the archive holds more than ${limits.maxEntries} entries, the most a data set may have (MAX_DATASET_FILES)`,
    );
  }
  if (unpackedBytes > limits.maxUnpackedBytes) {
    throw new ArchiveError(
      `the archive unpacks to more than ${limits.maxUnpackedBytes} bytes, the most a data set may (MAX_DATASET_UNPACKED_BYTES)`,
    );
  }
}
