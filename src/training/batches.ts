import type { ImageShape, ImageSplit } from '../datasets/dataset.ts';

/** The bytes and labels of the images at `indices`, gathered back to back. */
export function gatherBatch(
  split: ImageSplit,
  shape: ImageShape,
  indices: ArrayLike<number>,
): { images: Uint8Array; labels: Int32Array } {
  const imageSize = shape.height * shape.width * shape.channels;
  const images = new Uint8Array(indices.length * imageSize);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i] as number;
    images.set(split.images.subarray(index * imageSize, (index + 1) * imageSize), i * imageSize);
    labels[i] = split.labels[index] as number;
  }
  return { images, labels };
}

/** The first `count` images of a split, without copying. */
export function firstImages(split: ImageSplit, shape: ImageShape, count: number): ImageSplit {
  const imageSize = shape.height * shape.width * shape.channels;
  const kept = Math.min(count, split.count);
  return { images: split.images.subarray(0, kept * imageSize), labels: split.labels.subarray(0, kept), count: kept };
}
