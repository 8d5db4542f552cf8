import type { ImageKind } from '../contract/names.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import type { SeededRandom } from '../random.ts';

/** The notebook's RandomCrop(padding=4): padding is black, as torchvision pads the PIL image. */
export const cropPadding = 4;

/**
 * The training augmentation on a batch of raw images, by the data set's kind of image: each image
 * is shifted by a random crop of its 4-pixel zero-padded self (the notebook's RandomCrop), and a
 * `natural` one (a photograph) is also mirrored left-right half the time (its
 * RandomHorizontalFlip). `strokes` (digits, letters) are never mirrored: a mirrored 2, 3 or J is
 * another glyph or none, so flipping would teach the model wrong labels. Works on bytes, before
 * normalisation, so it costs one pass over the batch and no tensors.
 */
export function augmentBatch(
  images: Uint8Array,
  count: number,
  shape: ImageShape,
  kind: ImageKind,
  random: SeededRandom,
): Uint8Array {
  const { height, width, channels } = shape;
  const rowBytes = width * channels;
  const imageBytes = height * rowBytes;
  const mirrors = kind === 'natural';
  const out = new Uint8Array(images.length);
  for (let image = 0; image < count; image++) {
    const offsetY = random.below(2 * cropPadding + 1) - cropPadding;
    const offsetX = random.below(2 * cropPadding + 1) - cropPadding;
    // Strokes draw no coin for the flip: nothing of their augmentation depends on it.
    const mirrored = mirrors && random.next() < 0.5;
    const base = image * imageBytes;
    for (let y = 0; y < height; y++) {
      const sourceY = y + offsetY;
      if (sourceY < 0 || sourceY >= height) continue;
      for (let x = 0; x < width; x++) {
        const sourceX = (mirrored ? width - 1 - x : x) + offsetX;
        if (sourceX < 0 || sourceX >= width) continue;
        const from = base + sourceY * rowBytes + sourceX * channels;
        const to = base + y * rowBytes + x * channels;
        for (let channel = 0; channel < channels; channel++) out[to + channel] = images[from + channel] as number;
      }
    }
  }
  return out;
}
