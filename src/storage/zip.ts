import { promisify } from 'node:util';
import { crc32, deflateRaw } from 'node:zlib';

const deflated = promisify(deflateRaw);

export interface ZipEntry {
  /** Path inside the archive, `/`-separated. */
  readonly name: string;
  readonly data: Buffer;
  /** Deflate it (the default), unless that makes it larger; false stores it as it is. */
  readonly compress?: boolean;
  /** Unix file type and permissions (st_mode, e.g. 0o100644), recorded as a Unix zip tool does; absent: MS-DOS attributes only. */
  readonly unixMode?: number;
}

/** 1980-01-01 00:00 in MS-DOS form, the earliest time a zip can state: the archive's bytes then depend on its content only. */
const dosTime = 0;
const dosDate = (0 << 9) | (1 << 5) | 1;

/**
 * A zip archive (PKWARE APPNOTE 6.3, no zip64: entries and the archive stay under 4 GiB) of the
 * entries. Built in memory: the archives this service serves are a trained model, at most a few
 * hundred MB. Deflating runs on libuv's thread pool, so a large archive doesn't stall the server.
 */
export async function zipArchive(entries: readonly ZipEntry[]): Promise<Buffer> {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { name, data, compress = true, unixMode } of entries) {
    const fileName = Buffer.from(name, 'utf8');
    const packed = compress ? await deflated(data, { level: 9 }) : data;
    const stored = packed.byteLength >= data.byteLength;
    const body = stored ? data : packed;
    const checksum = crc32(data);
    // The fields a local header and its central directory record share, from "version needed" on.
    const common = Buffer.alloc(26);
    common.writeUInt16LE(20, 0); // version needed: 2.0, deflate
    common.writeUInt16LE(1 << 11, 2); // flags: the name is UTF-8
    common.writeUInt16LE(stored ? 0 : 8, 4);
    common.writeUInt16LE(dosTime, 6);
    common.writeUInt16LE(dosDate, 8);
    common.writeUInt32LE(checksum, 10);
    common.writeUInt32LE(body.byteLength, 14);
    common.writeUInt32LE(data.byteLength, 18);
    common.writeUInt16LE(fileName.byteLength, 22);
    common.writeUInt16LE(0, 24); // no extra field
    const local = Buffer.concat([uint32(0x04034b50), common, fileName, body]);
    const central = Buffer.concat([
      uint32(0x02014b50),
      uint16(unixMode === undefined ? 20 : (3 << 8) | 20), // made by: MS-DOS or Unix attributes, version 2.0
      common,
      uint16(0), // no comment
      uint16(0), // disk 0
      uint16(0), // internal attributes
      uint32(unixMode === undefined ? 0 : unixMode << 16), // external attributes: the Unix mode in the high half
      uint32(offset),
      fileName,
    ]);
    locals.push(local);
    centrals.push(central);
    offset += local.byteLength;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.concat([
    uint32(0x06054b50),
    uint16(0), // this disk
    uint16(0), // the directory's disk
    uint16(entries.length),
    uint16(entries.length),
    uint32(directory.byteLength),
    uint32(offset),
    uint16(0), // no comment
  ]);
  return Buffer.concat([...locals, directory, end]);
}

function uint16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value);
  return bytes;
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value >>> 0);
  return bytes;
}
