/**
 * Reads zip archives from disk by their central directory (APPNOTE.TXT, sections 4.3.12-4.3.16):
 * entries are listed, counted and their declared sizes summed before any is unpacked; each is then
 * read from its local header and inflated with its declared size as the most zlib may produce, and
 * checked against its CRC-32. Stored (0) and deflated (8) entries; no ZIP64, no encryption.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';
import { ArchiveError, checkDeclared, type ArchiveEntry, type ArchiveLimits } from './archive.ts';

const END_OF_DIRECTORY = 0x06054b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
/** The end record is 22 bytes and may be followed by a comment of up to 65,535. */
const END_SEARCH = 22 + 0xffff;
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const UNIX = 3;

interface DirectoryEntry {
  readonly path: string;
  readonly kind: ArchiveEntry['kind'];
  readonly method: number;
  readonly encrypted: boolean;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeader: number;
}

const utf8 = new TextDecoder();

export async function* zipEntries(file: string, limits: ArchiveLimits): AsyncGenerator<ArchiveEntry> {
  const handle = await open(file, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const directory = await readDirectory(handle, fileSize);
    checkDeclared(
      directory.length,
      directory.reduce((sum, entry) => sum + entry.size, 0),
      limits,
    );
    for (const entry of directory) {
      yield { path: entry.path, kind: entry.kind, size: entry.size, read: () => readEntry(handle, entry, fileSize) };
    }
  } finally {
    await handle.close();
  }
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

async function readDirectory(handle: FileHandle, fileSize: number): Promise<DirectoryEntry[]> {
  const tailStart = Math.max(0, fileSize - END_SEARCH);
  const tail = await readAt(handle, tailStart, fileSize - tailStart);
  let end = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === END_OF_DIRECTORY) {
      end = i;
      break;
    }
  }
  if (end === -1)
    throw new ArchiveError('the zip archive has no end-of-directory record: it is truncated or not a zip archive');
  const count = tail.readUInt16LE(end + 10);
  const directorySize = tail.readUInt32LE(end + 12);
  const directoryStart = tail.readUInt32LE(end + 16);
  if (count === 0xffff || directorySize === 0xffffffff || directoryStart === 0xffffffff) {
    throw new ArchiveError('the zip archive is in ZIP64 form, which is not supported: make a tar.gz archive instead');
  }
  if (directoryStart + directorySize > tailStart + end)
    throw new ArchiveError('the zip archive is truncated: its directory lies past its end');
  const directory = await readAt(handle, directoryStart, directorySize);
  const entries: DirectoryEntry[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 46 > directory.length || directory.readUInt32LE(offset) !== DIRECTORY_ENTRY) {
      throw new ArchiveError(`the zip archive's directory is corrupt at entry ${i + 1} of ${count}`);
    }
    const madeBy = directory.readUInt16LE(offset + 4) >> 8;
    const flags = directory.readUInt16LE(offset + 8);
    const nameLength = directory.readUInt16LE(offset + 28);
    const extraLength = directory.readUInt16LE(offset + 30);
    const commentLength = directory.readUInt16LE(offset + 32);
    const mode = directory.readUInt32LE(offset + 38) >>> 16;
    const path = utf8.decode(directory.subarray(offset + 46, offset + 46 + nameLength));
    const isLink = madeBy === UNIX && (mode & S_IFMT) === S_IFLNK;
    entries.push({
      path,
      kind: isLink ? 'link' : path.endsWith('/') ? 'directory' : 'file',
      method: directory.readUInt16LE(offset + 10),
      encrypted: (flags & 1) !== 0,
      crc: directory.readUInt32LE(offset + 16),
      compressedSize: directory.readUInt32LE(offset + 20),
      size: directory.readUInt32LE(offset + 24),
      localHeader: directory.readUInt32LE(offset + 42),
    });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

async function readEntry(handle: FileHandle, entry: DirectoryEntry, fileSize: number): Promise<Buffer> {
  const corrupt = (problem: string) => new ArchiveError(`the zip archive's entry ${entry.path} ${problem}`);
  if (entry.encrypted) throw corrupt('is encrypted');
  const header = await readAt(handle, entry.localHeader, 30);
  if (header.length < 30 || header.readUInt32LE(0) !== LOCAL_HEADER)
    throw corrupt('has no local header where the directory says (truncated or corrupt archive)');
  const dataStart = entry.localHeader + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (dataStart + entry.compressedSize > fileSize) throw corrupt('ends past the end of the archive (truncated)');
  const compressed = await readAt(handle, dataStart, entry.compressedSize);
  let data: Buffer;
  if (entry.method === 0) {
    data = compressed;
  } else if (entry.method === 8) {
    try {
      // At most the declared size: an entry that inflates to more is refused, not unpacked.
      data = inflateRawSync(compressed, { maxOutputLength: Math.max(1, entry.size) });
    } catch (error) {
      throw corrupt(`can't be inflated to its declared ${entry.size} bytes (${(error as Error).message})`);
    }
  } else {
    throw corrupt(`uses compression method ${entry.method}; only stored and deflated entries are read`);
  }
  if (data.length !== entry.size) throw corrupt(`unpacks to ${data.length} bytes, not the ${entry.size} it declares`);
  if (crc32(data) !== entry.crc) throw corrupt("doesn't match its checksum (corrupt)");
  return data;
}
