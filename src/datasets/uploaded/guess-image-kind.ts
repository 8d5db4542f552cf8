import sharp from 'sharp';
import type { ImageKind } from '../../contract/names.ts';

/**
 * An uploaded data set's imageKind when the upload doesn't give one, from a sample of its images:
 * `strokes` when nearly all of them are mostly uniform paper (light or dark) with sparse ink far
 * from it, as scans of handwritten digits or letters are; `natural` otherwise. Photographs seldom
 * leave most of the frame within a few levels of one grey, and a set of them hardly ever all.
 */
export class ImageKindGuess {
  /** How many images are looked at: enough to judge a set by, cheap next to reading the archive. */
  static readonly sampleSize = 200;
  private readonly looks: boolean[] = [];

  /** Whether another image should be looked at. */
  get wantsMore(): boolean {
    return this.looks.length < ImageKindGuess.sampleSize;
  }

  async lookAt(bytes: Buffer): Promise<void> {
    this.looks.push(await looksLikeStrokes(bytes));
  }

  get kind(): ImageKind {
    const strokes = this.looks.filter(Boolean).length;
    return this.looks.length > 0 && strokes >= strokesMajority * this.looks.length ? 'strokes' : 'natural';
  }
}

/** The side of the grey thumbnail an image is judged by: MNIST's own, fine enough to keep strokes apart. */
const thumbnailSide = 28;
/** Grey levels from the paper's within which a pixel is paper. */
const paperTolerance = 24;
/** Grey levels from the paper's beyond which a pixel is ink. */
const inkContrast = 64;
/** Most of a picture of strokes is paper… */
const minimumPaperShare = 0.6;
/** …and some of it ink, but not much. */
const inkShare = { min: 0.02, max: 0.35 };
/** The share of the images looked at that must look like strokes for the set to be guessed `strokes`. */
const strokesMajority = 0.8;

/** Whether one image is mostly a uniform background (its median grey: the paper) with sparse ink far from it. */
async function looksLikeStrokes(bytes: Buffer): Promise<boolean> {
  const grey = await sharp(bytes)
    // Letters drawn on a transparent background are ink on white paper.
    .flatten({ background: '#ffffff' })
    .resize(thumbnailSide, thumbnailSide, { fit: 'fill' })
    .greyscale()
    .raw()
    .toBuffer();
  const paper = [...grey].sort((a, b) => a - b)[grey.length >> 1] as number;
  let paperPixels = 0;
  let inkPixels = 0;
  for (const level of grey) {
    const distance = Math.abs(level - paper);
    if (distance <= paperTolerance) paperPixels++;
    else if (distance > inkContrast) inkPixels++;
  }
  const ink = inkPixels / grey.length;
  return paperPixels / grey.length >= minimumPaperShare && ink >= inkShare.min && ink <= inkShare.max;
}
