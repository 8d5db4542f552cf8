import * as tf from '@tensorflow/tfjs-core';
import type { ImageShape } from './dataset.ts';

/**
 * The notebook's normalisation, (x/255 - 0.5)/0.5, as a table over the 256 byte values: training
 * batches and uploaded images go through this one table, so they can't drift apart.
 */
const normalisedByte = Float32Array.from({ length: 256 }, (_, value) => (value / 255 - 0.5) / 0.5);

/** Normalised float32 images [n, h, w, c] from `n` images' bytes laid out back to back. */
export function normalisedImages(bytes: Uint8Array, count: number, shape: ImageShape): tf.Tensor4D {
  const values = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) values[i] = normalisedByte[bytes[i] as number] as number;
  return tf.tensor4d(values, [count, shape.height, shape.width, shape.channels]);
}
