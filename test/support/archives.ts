import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { zipArchive, type ZipEntry } from '../../src/storage/zip.ts';
import type { ImageSplit, ImageShape } from '../../src/datasets/dataset.ts';

export interface TarTestEntry {
  readonly name: string;
  readonly data?: Buffer;
  readonly type?: 'file' | 'directory' | 'symlink';
  readonly linkTarget?: string;
}

/** A ustar archive of the entries, as GNU tar writes one (names up to 100 bytes). */
export function tarArchive(entries: readonly TarTestEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { name, data = Buffer.alloc(0), type = 'file', linkTarget = '' } of entries) {
    const header = Buffer.alloc(512);
    const write = (text: string, offset: number, length: number) => header.write(text, offset, length, 'utf8');
    write(name, 0, 100);
    write('0000644\0', 100, 8);
    write('0000000\0', 108, 8);
    write('0000000\0', 116, 8);
    write(`${(type === 'file' ? data.length : 0).toString(8).padStart(11, '0')}\0`, 124, 12);
    write('00000000000\0', 136, 12);
    header.fill(0x20, 148, 156);
    header[156] = (type === 'file' ? '0' : type === 'directory' ? '5' : '2').charCodeAt(0);
    write(linkTarget, 157, 100);
    write('ustar\0', 257, 6);
    write('00', 263, 2);
    let sum = 0;
    for (const byte of header) sum += byte;
    write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
    blocks.push(header);
    if (type === 'file') blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export const tarGzArchive = (entries: readonly TarTestEntry[]): Buffer => gzipSync(tarArchive(entries));

export async function zipOf(entries: readonly ZipEntry[]): Promise<Buffer> {
  return zipArchive(entries);
}

/** Image `index` of a split as a PNG (or JPEG), from its raw HWC bytes. */
export async function imageFile(
  split: ImageSplit,
  shape: ImageShape,
  index: number,
  format: 'png' | 'jpeg' = 'png',
): Promise<Buffer> {
  const size = shape.height * shape.width * shape.channels;
  const pixels = Buffer.from(split.images.subarray(index * size, (index + 1) * size));
  const raw = sharp(pixels, { raw: { width: shape.width, height: shape.height, channels: shape.channels as 1 | 3 } });
  const image = shape.channels === 1 ? raw.toColourspace('b-w') : raw;
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 95 }).toBuffer();
}

/**
 * `perClass` real images of each of `classes` (their labels, in split order) as `<prefix><class name>/<n>.png`
 * entries, with the label each was drawn from.
 */
export async function imageFolderEntries(
  split: ImageSplit,
  shape: ImageShape,
  options: {
    classes: readonly number[];
    perClass: number;
    className: (label: number) => string;
    prefix?: string;
    from?: number;
    format?: 'png' | 'jpeg';
  },
): Promise<{ name: string; data: Buffer; label: number }[]> {
  const taken = new Map<number, number>();
  const entries: { name: string; data: Buffer; label: number }[] = [];
  for (let index = options.from ?? 0; index < split.count; index++) {
    const label = split.labels[index] as number;
    const count = taken.get(label) ?? 0;
    if (!options.classes.includes(label) || count >= options.perClass) continue;
    taken.set(label, count + 1);
    const format = options.format ?? 'png';
    entries.push({
      name: `${options.prefix ?? ''}${options.className(label)}/${index}.${format === 'png' ? 'png' : 'jpg'}`,
      data: await imageFile(split, shape, index, format),
      label,
    });
    if (entries.length === options.classes.length * options.perClass) break;
  }
  return entries;
}
