import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ArchiveError, checkDeclared, type ArchiveEntry, type ArchiveLimits } from './archive.ts';
import { paddedSize, readTarHeader, TAR_BLOCK, TarNames } from './tar.ts';

/**
 * The entries of a tar (or gzip-compressed tar) archive on disk, streamed: only the entry being
 * read is held in memory. Each header's declared size is counted against `limits` before its
 * data is read, so a compressed bomb is refused by counting too.
 */
export async function* tarEntries(file: string, gzipped: boolean, limits: ArchiveLimits): AsyncGenerator<ArchiveEntry> {
  const source = createReadStream(file);
  const stream: Readable = gzipped ? source.pipe(createGunzip()) : source;
  // A read error of the file reaches the gunzip stream's reader only through this.
  source.on('error', (error) => stream.destroy(error));
  const reader = new StreamReader(stream);
  const bad = (problem: string) => new ArchiveError(`the tar archive ${problem}`);
  const names = new TarNames();
  let entries = 0;
  let declared = 0;
  try {
    for (let offset = 0; ;) {
      const block = await reader.read(TAR_BLOCK);
      if (block.length < TAR_BLOCK)
        throw bad(
          block.length === 0 && offset > 0
            ? 'is truncated: it ends without its end-of-archive marker'
            : offset === 0
              ? 'is empty or not a tar archive'
              : 'is truncated: it ends inside a header',
        );
      const header = readTarHeader(block, offset, bad);
      if (header === null) return;
      entries += 1;
      declared += header.size;
      checkDeclared(entries, declared, limits);
      const padded = paddedSize(header.size);
      offset += TAR_BLOCK + padded;
      if (TarNames.carriesName(header.type)) {
        names.entry(header, await reader.readFully(padded, bad));
        continue;
      }
      const entry = names.entry(header, new Uint8Array(0));
      if (entry === null) continue;
      let read = false;
      yield {
        path: entry.path,
        kind: entry.kind,
        size: entry.kind === 'file' ? header.size : 0,
        read: async () => {
          read = true;
          const data = await reader.readFully(padded, bad).catch((error: unknown) => {
            throw asArchiveError(error);
          });
          return Buffer.from(data.buffer, data.byteOffset, header.size);
        },
      };
      if (!read) await reader.skip(padded, bad);
    }
  } catch (error) {
    throw asArchiveError(error);
  } finally {
    stream.destroy();
    source.destroy();
  }
}

/** A stream's own error (gunzip's "unexpected end of file") as the archive's. */
function asArchiveError(error: unknown): ArchiveError {
  if (error instanceof ArchiveError) return error;
  return new ArchiveError(`the archive can't be read: ${(error as Error).message} (truncated or corrupt?)`);
}

/** Reads a stream in exact-sized pieces. */
class StreamReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(stream: Readable) {
    this.chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Up to `length` bytes: fewer only at the end of the stream. */
  async read(length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < length) {
      if (this.pending.length === 0) {
        if (this.ended) break;
        const next = await this.chunks.next();
        if (next.done) {
          this.ended = true;
          break;
        }
        this.pending = next.value;
      }
      const take = Math.min(length - have, this.pending.length);
      parts.push(this.pending.subarray(0, take));
      this.pending = this.pending.subarray(take);
      have += take;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, have);
  }

  async readFully(length: number, bad: (problem: string) => Error): Promise<Buffer> {
    const data = await this.read(length);
    if (data.length < length) throw bad('is truncated: it ends inside an entry');
    return data;
  }

  async skip(length: number, bad: (problem: string) => Error): Promise<void> {
    for (let left = length; left > 0;) {
      const part = await this.read(Math.min(left, 1 << 20));
      if (part.length === 0) throw bad('is truncated: it ends inside an entry');
      left -= part.length;
    }
  }
}
