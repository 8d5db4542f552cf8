import type { ImageShape } from './dataset.ts';

/**
 * CIFAR-10's binary layout, which uploaded data sets are stored in too: one record per image,
 * its label byte, then its pixels plane by plane (all of channel 0, then channel 1, …), each
 * plane row-major. Training holds images interleaved (HWC), so records are converted both ways.
 */
export function recordBytes(shape: ImageShape): number {
  return 1 + shape.height * shape.width * shape.channels;
}

/**
 * Writes `records` records of `src` to `images` as interleaved HWC and to `labels`, from image
 * index `first`. Returns the index of the first record whose label is `classes` or more, or -1.
 */
export function decodeRecords(
  src: Uint8Array,
  records: number,
  shape: ImageShape,
  classes: number,
  images: Uint8Array,
  labels: Uint8Array,
  first: number,
): number {
  const { channels } = shape;
  const plane = shape.height * shape.width;
  const size = recordBytes(shape);
  for (let r = 0; r < records; r++) {
    const record = r * size;
    const label = src[record] as number;
    if (label >= classes) return r;
    labels[first + r] = label;
    const out = (first + r) * plane * channels;
    for (let c = 0; c < channels; c++) {
      const from = record + 1 + c * plane;
      for (let p = 0; p < plane; p++) images[out + channels * p + c] = src[from + p] as number;
    }
  }
  return -1;
}

/** Writes one image (HWC bytes) and its label as a record at `offset` of `out`. */
export function encodeRecord(
  pixels: Uint8Array,
  label: number,
  shape: ImageShape,
  out: Uint8Array,
  offset: number,
): void {
  const { channels } = shape;
  const plane = shape.height * shape.width;
  out[offset] = label;
  for (let c = 0; c < channels; c++) {
    const to = offset + 1 + c * plane;
    for (let p = 0; p < plane; p++) out[to + p] = pixels[channels * p + c] as number;
  }
}
