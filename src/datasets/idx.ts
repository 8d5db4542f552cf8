/**
 * The IDX file format (MNIST and its relatives): a big-endian magic number `00 00 08 <rank>`
 * (0x08 = unsigned bytes), then `rank` big-endian uint32 dimensions, then the values row-major.
 * http://yann.lecun.com/exdb/mnist/
 */
import { promisify } from 'node:util';
import { constants as zlibConstants, gunzip } from 'node:zlib';
import { badFileError, errorMessage } from './errors.ts';

export interface IdxArray {
  readonly dims: readonly number[];
  /** The values, a view into the bytes that were parsed (no copy). */
  readonly data: Uint8Array;
}

export interface IdxParseOptions {
  /** The path, for error messages. */
  readonly file: string;
  /** Number of dimensions the caller expects: 1 for labels (magic 0x801), 3 for images (0x803). */
  readonly rank: number;
  readonly remedy?: string;
}

const gunzipAsync = promisify(gunzip);

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decompresses gzip bytes (off the main thread, in libuv's pool); returns other bytes as they are. */
export async function gunzipIfNeeded(bytes: Uint8Array, file: string, remedy?: string): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  try {
    return await gunzipAsync(bytes, { chunkSize: outputChunkSize(bytes) });
  } catch (err) {
    // zlib's "unexpected end of file" is how a truncated download shows up.
    throw badFileError(file, `is not a valid gzip file (${errorMessage(err)}); it is probably truncated`, remedy);
  }
}

/** Larger size hints than this are not trusted: the trailer of a truncated file is arbitrary bytes. */
const MAX_SIZE_HINT = 1024 * 1024 * 1024;

/**
 * zlib's output chunk size for decompressing `gzip` in one piece. zlib's default, 16 kB chunks
 * concatenated at the end, doubles both the time (170 MB of CIFAR-10: ~4 s instead of ~1.7 s) and
 * the memory. The gzip trailer ends with the uncompressed size mod 2^32 (ISIZE), so one buffer of
 * that size, plus one byte so that zlib does not allocate a spare chunk once it is exactly full,
 * holds the whole output. A wrong hint (a truncated file, several members) costs only speed.
 */
function outputChunkSize(gzip: Uint8Array): number {
  const n = gzip.length;
  // A gzip member is at least 18 bytes; its last four are ISIZE, little-endian.
  const isize = n >= 18 ? new DataView(gzip.buffer, gzip.byteOffset + n - 4, 4).getUint32(0, true) : 0;
  return isize > 0 && isize < MAX_SIZE_HINT ? Math.max(isize + 1, zlibConstants.Z_MIN_CHUNK) : 4 * 1024 * 1024;
}

/**
 * Parses an uncompressed IDX file of unsigned bytes. Throws DatasetError when the magic number,
 * the rank or the length does not match, so a truncated file never yields a short array.
 */
export function parseIdx(bytes: Uint8Array, options: IdxParseOptions): IdxArray {
  const { file, rank, remedy } = options;
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw badFileError(file, `is too short to be an IDX file (${bytes.length} bytes)`, remedy);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const expectedMagic = 0x0800 + rank;
  if (magic !== expectedMagic) {
    throw badFileError(
      file,
      `is not an IDX file of unsigned bytes with ${rank} dimension(s): magic number ${hex(magic)}, expected ${hex(expectedMagic)}`,
      remedy,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  if (dims.some((d) => d === 0)) {
    throw badFileError(file, `declares an empty array (dimensions ${dims.join('×')})`, remedy);
  }
  const expectedLength = headerLength + dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== expectedLength) {
    const what = bytes.length < expectedLength ? 'is truncated' : 'has trailing bytes';
    throw badFileError(
      file,
      `${what}: ${bytes.length} bytes, but its header (dimensions ${dims.join('×')}) calls for ${expectedLength}`,
      remedy,
    );
  }
  // A plain Uint8Array view, not a Buffer: Buffer#slice shares memory where Uint8Array#slice copies,
  // and consumers of ImageSplit should get the semantics the type promises.
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength, bytes.length - headerLength);
  return { dims, data };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
