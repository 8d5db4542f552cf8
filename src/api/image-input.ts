import sharp from 'sharp';
import type { ImageShape } from '../datasets/dataset.ts';
import { HttpError } from './http-error.ts';

/** Raster formats sharp decodes here; SVG and PDF are left out because they execute a renderer. */
const acceptedFormats = new Set(['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif', 'heif']);

/**
 * Decodes an upload of any size and channel count into the bytes a model was trained on:
 * turned upright as its EXIF orientation says, transparency composed onto black (MNIST's background), resized to the data set's size, grey or RGB.
 * `maxPixels` refuses a decompression bomb from its header, before anything is decoded.
 */
export async function toModelInput(upload: Buffer, shape: ImageShape, maxPixels: number, label: string): Promise<Uint8Array> {
  if (upload.byteLength === 0) throw new HttpError(400, `${label} is empty`);
  let format: string | undefined;
  try {
    ({ format } = await sharp(upload, { limitInputPixels: maxPixels }).metadata());
  } catch (error) {
    throw decodeFailure(error, label, maxPixels);
  }
  if (!format || !acceptedFormats.has(format)) {
    throw new HttpError(400, `${label} is not a decodable image (${format ?? 'unknown'} format); send PNG, JPEG, WebP or GIF`);
  }
  try {
    const pipeline = sharp(upload, { limitInputPixels: maxPixels, autoOrient: true })
      .flatten({ background: '#000000' })
      .resize(shape.width, shape.height, { fit: 'fill' });
    const converted = shape.channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
    const { data, info } = await converted.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== shape.channels || data.byteLength !== shape.width * shape.height * shape.channels) {
      throw new Error(`decoded to ${info.channels} channels`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (error) {
    throw decodeFailure(error, label, maxPixels);
  }
}

function decodeFailure(error: unknown, label: string, maxPixels: number): HttpError {
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) {
    return new HttpError(413, `${label} has more than ${maxPixels} pixels, the limit for one image`);
  }
  return new HttpError(400, `${label} is not a decodable image`);
}
