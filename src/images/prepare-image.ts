import sharp, { type Sharp } from 'sharp';
import type { ImageKind } from '../contract/names.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { normaliseStrokes, type Box } from './stroke-normalisation.ts';

/**
 * An image that can't be used: `unreadable` (empty, not an image, an unsupported format, corrupt)
 * or `tooLarge` (over the pixel limit, refused from its header). Predict answers 400 or 413;
 * data set processing skips the file and reports why.
 */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  constructor(
    readonly reason: 'unreadable' | 'tooLarge',
    message: string,
  ) {
    super(message);
  }
}

/** Raster formats sharp decodes here; SVG and PDF are left out because they execute a renderer. */
export const acceptedImageFormats = new Set(['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif', 'heif']);

/** How an upload is brought to the model's input: a data set's kind, or `none`, a plain resize. */
export type PreprocessMode = 'none' | ImageKind;

export interface PreparedImage {
  /** The model's input: `height × width × channels` bytes, row-major HWC. */
  readonly pixels: Uint8Array;
  readonly mode: PreprocessMode;
  /** Nothing to see: the image is (almost) one colour, or no ink stands out from its paper. */
  readonly blank: boolean;
  /** Light paper was turned into MNIST's black (strokes mode only). */
  readonly inverted: boolean;
  /** The part of the upright upload the model sees; null when it sees all of it, or nothing. */
  readonly crop: Box | null;
}

/** The most pixels along a side that strokes are looked for in: plenty for a 20×20 box, cheap to scan. */
const strokeAnalysisSide = 512;
/** Grey levels between an image's darkest and brightest percent below which it is (almost) one colour. */
const uniformRange = 12;

/**
 * Decodes an upload of any size and channel count into the bytes a model was trained on: turned
 * upright as its EXIF orientation says, transparency composed onto black (MNIST's background), then
 * as `mode` says: `none` stretches it onto the data set's size; `natural` keeps its aspect ratio,
 * taking the largest centred part of the model's shape; `strokes` finds the ink and lays it out as
 * MNIST's digits are (normaliseStrokes). Grey or RGB as the model's shape says.
 * `maxPixels` refuses a decompression bomb from its header, before anything is decoded.
 */
export async function prepareUpload(
  upload: Buffer,
  shape: ImageShape,
  maxPixels: number,
  label: string,
  mode: PreprocessMode,
): Promise<PreparedImage> {
  if (upload.byteLength === 0) throw new ImageError('unreadable', `${label} is empty`);
  let format: string | undefined;
  let upright: { width: number; height: number };
  try {
    const metadata = await sharp(upload, { limitInputPixels: maxPixels }).metadata();
    format = metadata.format;
    const turned = (metadata.orientation ?? 1) >= 5;
    upright = { width: turned ? metadata.height : metadata.width, height: turned ? metadata.width : metadata.height };
  } catch (error) {
    throw decodeFailure(error, label, maxPixels);
  }
  if (!format || !acceptedImageFormats.has(format)) {
    throw new ImageError(
      'unreadable',
      `${label} is not a decodable image (${format ?? 'unknown'} format); send PNG, JPEG, WebP or GIF`,
    );
  }
  try {
    const decoded = sharp(upload, { limitInputPixels: maxPixels, autoOrient: true }).flatten({ background: '#000000' });
    if (mode === 'strokes') return await preparedStrokes(decoded, upright, shape);
    const resized = decoded.resize(shape.width, shape.height, {
      fit: mode === 'natural' ? 'cover' : 'fill',
      position: 'centre',
    });
    const pixels = await rawPixels(resized, shape);
    const crop = mode === 'natural' ? centredCrop(upright, shape) : null;
    return { pixels, mode, blank: isNearlyUniform(pixels, shape.channels), inverted: false, crop };
  } catch (error) {
    throw decodeFailure(error, label, maxPixels);
  }
}

async function preparedStrokes(
  decoded: Sharp,
  upright: { width: number; height: number },
  shape: ImageShape,
): Promise<PreparedImage> {
  const { data, info } = await decoded
    .resize(strokeAnalysisSide, strokeAnalysisSide, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('b-w')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 1) throw new Error(`decoded to ${info.channels} channels`);
  const strokes = await normaliseStrokes(data, info.width, info.height, shape);
  const grey = strokes.pixels;
  const pixels =
    shape.channels === 1
      ? grey
      : Uint8Array.from(
          { length: grey.length * shape.channels },
          (_, i) => grey[Math.floor(i / shape.channels)] as number,
        );
  const scale = upright.width / info.width;
  const crop = strokes.crop && {
    left: Math.round(strokes.crop.left * scale),
    top: Math.round(strokes.crop.top * scale),
    width: Math.max(1, Math.round(strokes.crop.width * scale)),
    height: Math.max(1, Math.round(strokes.crop.height * scale)),
  };
  return { pixels, mode: 'strokes', blank: strokes.blank, inverted: strokes.inverted, crop };
}

async function rawPixels(pipeline: Sharp, shape: ImageShape): Promise<Uint8Array> {
  const converted = shape.channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  const { data, info } = await converted.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== shape.channels || data.byteLength !== shape.width * shape.height * shape.channels) {
    throw new Error(`decoded to ${info.channels} channels`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The largest part of the image with the model's aspect ratio, centred: what sharp's `cover` keeps. */
function centredCrop(upright: { width: number; height: number }, shape: ImageShape): Box | null {
  const scale = Math.max(shape.width / upright.width, shape.height / upright.height);
  const width = Math.min(upright.width, Math.round(shape.width / scale));
  const height = Math.min(upright.height, Math.round(shape.height / scale));
  if (width === upright.width && height === upright.height) return null;
  return {
    left: Math.floor((upright.width - width) / 2),
    top: Math.floor((upright.height - height) / 2),
    width,
    height,
  };
}

/** Whether every channel keeps within `uniformRange` grey levels over all but the extreme percent of pixels. */
function isNearlyUniform(pixels: Uint8Array, channels: number): boolean {
  for (let channel = 0; channel < channels; channel++) {
    const sorted = pixels.filter((_, i) => i % channels === channel).sort();
    const at = (fraction: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] as number;
    if (at(0.99) - at(0.01) >= uniformRange) return false;
  }
  return true;
}

function decodeFailure(error: unknown, label: string, maxPixels: number): ImageError {
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) {
    return new ImageError('tooLarge', `${label} has more than ${maxPixels} pixels, the limit for one image`);
  }
  return new ImageError('unreadable', `${label} is not a decodable image`);
}
