/**
 * A minimal reader of tar archives (already gunzipped; held in memory here, streamed by tar-stream.ts): POSIX ustar and GNU headers,
 * enough for data set archives such as CIFAR-10's. It returns the regular files as views into the
 * archive's bytes (no copies) and skips everything else (folders, links, devices). It understands
 * ustar's name prefix, GNU long names ('L') and pax `path` records, octal and base-256 sizes, and
 * verifies each header's checksum, so a corrupt or truncated archive is a DatasetError, never a
 * short file. https://www.gnu.org/software/tar/manual/html_node/Standard.html
 */
import { badFileError } from '../datasets/errors.ts';

const BLOCK = 512;

export interface TarReadOptions {
  /** The archive's path, for error messages. */
  readonly file: string;
  /** What to tell the user when the archive is bad; errors.ts's default otherwise. */
  readonly remedy?: string;
}

/**
 * Parses a tar archive. Returns its regular files, by path inside the archive (without a leading
 * `./`), as Uint8Array views on `bytes`, in archive order; a path that occurs twice keeps its last
 * copy, as tar itself does when extracting. Throws DatasetError when a header is corrupt or the
 * archive ends before its end-of-archive marker (a truncated archive).
 */
export function readTar(bytes: Uint8Array, options: TarReadOptions): Map<string, Uint8Array> {
  const { file, remedy } = options;
  const bad = (problem: string) => badFileError(file, problem, remedy);
  const entries = new Map<string, Uint8Array>();
  let offset = 0;

  if (bytes.length < BLOCK) {
    throw bad(`is too short (${bytes.length} bytes) to be a tar archive, gzip-compressed or not; it may be truncated`);
  }
  const names = new TarNames();
  for (;;) {
    if (offset === bytes.length) {
      throw bad(`is truncated: it ends after ${bytes.length} bytes without the end-of-archive marker`);
    }
    if (offset + BLOCK > bytes.length) {
      throw bad(`is truncated: it ends inside a tar header, at byte ${bytes.length}`);
    }
    const header = readTarHeader(bytes.subarray(offset, offset + BLOCK), offset, bad);
    if (header === null) break;
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + header.size;
    if (dataEnd > bytes.length) {
      throw bad(
        `is truncated: its entry ${header.name} needs ${header.size} bytes from byte ${dataStart}, ` +
          `but the archive ends after ${bytes.length}`,
      );
    }
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + dataStart, dataEnd - dataStart);
    const entry = names.entry(header, data);
    if (entry?.kind === 'file') entries.set(entry.path, data);
    offset = dataStart + paddedSize(header.size);
  }
  return entries;
}

export const TAR_BLOCK = BLOCK;

/** An entry's bytes take whole blocks. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

export interface TarHeader {
  /** The name in the header itself (a GNU or pax long name, if any, comes in an entry before). */
  readonly name: string;
  readonly size: number;
  /** The type flag byte. */
  readonly type: number;
  /** Where the header starts in the archive, for messages. */
  readonly offset: number;
}

/** What an entry is, once long names are applied: `file` (regular), `directory`, `link` (symbolic or hard) or `other`. */
export interface TarEntry {
  readonly path: string;
  readonly kind: 'file' | 'directory' | 'link' | 'other';
}

/**
 * Parses one header block: null for an all-zero block (the end-of-archive marker). Throws what
 * `bad` makes of a wrong checksum or an unreadable size.
 */
export function readTarHeader(header: Uint8Array, offset: number, bad: (problem: string) => Error): TarHeader | null {
  if (isZeroBlock(header)) return null;
  if (!checksumMatches(header)) {
    throw bad(
      offset === 0
        ? 'is not a tar archive (nor a gzip-compressed one): its first header has no valid tar checksum'
        : `is corrupt: the tar header at byte ${offset} has a wrong checksum`,
    );
  }
  const size = parseSize(header.subarray(124, 136));
  if (size === undefined) throw bad(`is corrupt: the tar header at byte ${offset} has an unreadable size`);
  return { name: headerPath(header), size, type: header[156] as number, offset };
}

/**
 * Carries GNU long names ('L') and pax `path` records over to the header they describe: feed it
 * every header with its data, in order; it answers the entry, or null for a name-carrying one.
 */
export class TarNames {
  private longName: string | undefined;
  private paxPath: string | undefined;

  entry(header: TarHeader, data: Uint8Array): TarEntry | null {
    if (header.type === 0x4c /* 'L': GNU long name of the next entry */) {
      this.longName = cString(data);
      return null;
    }
    if (header.type === 0x78 /* 'x': pax extended header of the next entry */) {
      this.paxPath = paxRecord(data, 'path') ?? this.paxPath;
      return null;
    }
    const path = (this.paxPath ?? this.longName ?? header.name).replace(/^(\.\/)+/, '');
    this.longName = undefined;
    this.paxPath = undefined;
    return { path, kind: kindOf(header.type) };
  }

  /** Whether an entry of this type carries a name for the next one, so its data must be read whatever its size. */
  static carriesName(type: number): boolean {
    return type === 0x4c || type === 0x78;
  }
}

/** '0', NUL (pre-POSIX) and '7' (contiguous) are regular files, '5' a folder, '1' and '2' links. */
function kindOf(type: number): TarEntry['kind'] {
  if (type === 0x30 || type === 0x00 || type === 0x37) return 'file';
  if (type === 0x35) return 'directory';
  if (type === 0x31 || type === 0x32) return 'link';
  return 'other';
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** The header's checksum: its bytes summed with the checksum field read as spaces (some old tars summed signed bytes). */
function checksumMatches(header: Uint8Array): boolean {
  const stored = parseOctal(header.subarray(148, 156));
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    unsigned += b;
    signed += b >= 0x80 ? b - 0x100 : b;
  }
  return stored === unsigned || stored === signed;
}

/** ustar splits long paths into `prefix/name`; GNU's header uses those bytes for other things. */
function headerPath(header: Uint8Array): string {
  const name = cString(header.subarray(0, 100));
  const isPosixUstar = cString(header.subarray(257, 263)) === 'ustar' && header[262] === 0;
  const prefix = isPosixUstar ? cString(header.subarray(345, 500)) : '';
  return prefix === '' ? name : `${prefix}/${name}`;
}

/** Octal ASCII, or GNU's base-256 (high bit of the first byte set) for sizes past 8 GiB. */
function parseSize(field: Uint8Array): number | undefined {
  if (((field[0] as number) & 0x80) !== 0) {
    let value = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] as number);
    return Number.isSafeInteger(value) ? value : undefined;
  }
  return parseOctal(field);
}

/** Octal digits, optionally padded with leading spaces and ended by a NUL or space. */
function parseOctal(field: Uint8Array): number | undefined {
  let i = 0;
  while (i < field.length && field[i] === 0x20) i++;
  let value = 0;
  let digits = 0;
  for (; i < field.length; i++) {
    const c = field[i] as number;
    if (c === 0x00 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    value = value * 8 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? undefined : value;
}

const utf8 = new TextDecoder();

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return utf8.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/** Pax records are `<length> <key>=<value>\n`, the length counting the whole record. */
function paxRecord(data: Uint8Array, key: string): string | undefined {
  let found: string | undefined;
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const length = Number(utf8.decode(data.subarray(pos, space)));
    if (!Number.isSafeInteger(length) || length <= space + 1 - pos || data[pos + length - 1] !== 0x0a) break;
    const record = utf8.decode(data.subarray(space + 1, pos + length - 1));
    const eq = record.indexOf('=');
    if (eq !== -1 && record.slice(0, eq) === key) found = record.slice(eq + 1);
    pos += length;
  }
  return found;
}
