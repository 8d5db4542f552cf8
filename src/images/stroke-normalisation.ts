import sharp from 'sharp';

/** A rectangle of pixels, in the coordinates of the image it was found in. */
export interface Box {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

export interface NormalisedStrokes {
  /** `height × width` grey bytes, bright strokes on black, as MNIST's images are. */
  readonly pixels: Uint8Array;
  /** No ink stands out from the paper: the pixels are all black and any answer is a guess. */
  readonly blank: boolean;
  /** The background was light, so the image was inverted to bright strokes on dark. */
  readonly inverted: boolean;
  /** The ink's bounding box in the analysed image; null when blank. */
  readonly crop: Box | null;
}

/** MNIST's digits were fitted, keeping their aspect ratio, into a 20×20 box of the 28×28 image. */
const strokeBoxFraction = 20 / 28;
/** Grey levels between paper and ink below which nothing counts as written on it. */
const minimumContrast = 40;
/** The smallest stroke, in pixels of the analysed image, that is more than a speck of dirt. */
const minimumInkPixels = 10;
/** A piece of ink smaller than this share of the largest is paper noise, not part of the strokes. */
const noiseShareOfLargest = 0.1;

/**
 * Brings a grey picture of strokes (a digit photographed on paper, a scan, an MNIST image) to
 * MNIST's form, as LeCun et al. made it from NIST's scans: bright strokes on black, fitted into the
 * 20×20 box with their aspect ratio, then moved so that their centre of mass is the image's centre.
 *
 * The paper is told from the ink by the image's border, which is paper in any picture of something
 * written: its median grey level says whether the background is light (then the image is inverted)
 * and its spread how noisy the paper is. Pixels darker than the paper's noise become black, ink at
 * its typical level or brighter becomes white, so a grey pencil line on yellowish paper ends as
 * MNIST's white on black. Specks of noise are separate blobs of ink much smaller than the strokes,
 * and are dropped before the crop.
 */
export async function normaliseStrokes(
  grey: Uint8Array,
  width: number,
  height: number,
  target: { readonly height: number; readonly width: number },
): Promise<NormalisedStrokes> {
  const empty = (inverted: boolean): NormalisedStrokes => ({
    pixels: new Uint8Array(target.height * target.width),
    blank: true,
    inverted,
    crop: null,
  });
  const border = borderLevels(grey, width, height);
  const paperLevel = percentile(histogram(border), 0.5);
  const inverted = paperLevel > 127;
  const ink = inverted ? grey.map((value) => 255 - value) : grey;
  const background = inverted ? 255 - paperLevel : paperLevel;
  // The median absolute deviation, scaled to a standard deviation for Gaussian noise.
  const noise =
    1.4826 * percentile(histogram(border.map((value) => Math.abs((inverted ? 255 - value : value) - background))), 0.5);

  const inkFloor = background + Math.max(5 * noise, 24);
  const inkLevels = histogram(ink.filter((value) => value > inkFloor));
  if (inkLevels.total === 0) return empty(inverted);
  const inkLevel = percentile(inkLevels, 0.5);
  const contrast = inkLevel - background;
  if (contrast < minimumContrast) return empty(inverted);

  const low = background + Math.max(4 * noise, 0.03 * contrast);
  const stretched = ink.map((value) => Math.round(Math.min(1, Math.max(0, (value - low) / (inkLevel - low))) * 255));
  const strokes = keepStrokes(stretched, width, height);
  if (strokes === null) return empty(inverted);
  const { crop, pixels: cropped } = strokes;

  const box = Math.round(strokeBoxFraction * Math.min(target.height, target.width));
  const scale = box / Math.max(crop.width, crop.height);
  const fitted = {
    width: Math.max(1, Math.round(crop.width * scale)),
    height: Math.max(1, Math.round(crop.height * scale)),
  };
  const resized = await sharp(cropped, { raw: { width: crop.width, height: crop.height, channels: 1 } })
    .resize(fitted.width, fitted.height, { fit: 'fill', kernel: 'linear' })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  return { pixels: centredByMass(resized, fitted, target), blank: false, inverted, crop };
}

/** The outermost 5% of the image on each side (at least one pixel). */
function borderLevels(grey: Uint8Array, width: number, height: number): Uint8Array {
  const ring = Math.max(1, Math.round(0.05 * Math.min(width, height)));
  const levels: number[] = [];
  for (let y = 0; y < height; y++) {
    const inside = y >= ring && y < height - ring;
    for (let x = 0; x < width; x++)
      if (!inside || x < ring || x >= width - ring) levels.push(grey[y * width + x] as number);
  }
  return Uint8Array.from(levels);
}

interface Histogram {
  readonly counts: Uint32Array;
  readonly total: number;
}

function histogram(values: Uint8Array): Histogram {
  const counts = new Uint32Array(256);
  for (const value of values) counts[value] = (counts[value] as number) + 1;
  return { counts, total: values.length };
}

/** The smallest level with at least `fraction` of the values at or below it. */
function percentile({ counts, total }: Histogram, fraction: number): number {
  let seen = 0;
  for (let level = 0; level < 256; level++) {
    seen += counts[level] as number;
    if (seen >= fraction * total) return level;
  }
  return 255;
}

/**
 * Labels the 8-connected blobs of ink, keeps those at least a tenth the size of the largest (a
 * digit's separate strokes) and returns their bounding box with only their ink in it; null when
 * even the largest blob is a speck.
 */
function keepStrokes(ink: Uint8Array, width: number, height: number): { crop: Box; pixels: Uint8Array } | null {
  const labels = new Int32Array(width * height);
  const blobs: { area: number; left: number; top: number; right: number; bottom: number }[] = [];
  const stack: number[] = [];
  for (let start = 0; start < ink.length; start++) {
    if (ink[start] === 0 || labels[start] !== 0) continue;
    const blob = { area: 0, left: width, top: height, right: 0, bottom: 0 };
    blobs.push(blob);
    labels[start] = blobs.length;
    stack.push(start);
    while (stack.length > 0) {
      const at = stack.pop() as number;
      const x = at % width;
      const y = (at - x) / width;
      blob.area++;
      blob.left = Math.min(blob.left, x);
      blob.right = Math.max(blob.right, x);
      blob.top = Math.min(blob.top, y);
      blob.bottom = Math.max(blob.bottom, y);
      for (let ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
        for (let nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
          const next = ny * width + nx;
          if (ink[next] !== 0 && labels[next] === 0) {
            labels[next] = blobs.length;
            stack.push(next);
          }
        }
      }
    }
  }
  const largest = blobs.reduce((most, blob) => Math.max(most, blob.area), 0);
  if (largest < minimumInkPixels) return null;
  const kept = new Set<number>();
  let left = width;
  let top = height;
  let right = 0;
  let bottom = 0;
  blobs.forEach((blob, index) => {
    if (blob.area < noiseShareOfLargest * largest) return;
    kept.add(index + 1);
    left = Math.min(left, blob.left);
    top = Math.min(top, blob.top);
    right = Math.max(right, blob.right);
    bottom = Math.max(bottom, blob.bottom);
  });
  const crop = { left, top, width: right - left + 1, height: bottom - top + 1 };
  const pixels = new Uint8Array(crop.width * crop.height);
  for (let y = 0; y < crop.height; y++) {
    for (let x = 0; x < crop.width; x++) {
      const at = (top + y) * width + left + x;
      if (kept.has(labels[at] as number)) pixels[y * crop.width + x] = ink[at] as number;
    }
  }
  return { crop, pixels };
}

/**
 * Places the fitted strokes so that their centre of mass, in pixel indices, falls on index 14 of 28
 * (where MNIST's digits have theirs on average: 14.01, 13.99), as far as they fit.
 */
function centredByMass(
  strokes: Uint8Array,
  size: { width: number; height: number },
  target: { readonly height: number; readonly width: number },
): Uint8Array {
  let mass = 0;
  let sumX = 0;
  let sumY = 0;
  for (let y = 0; y < size.height; y++) {
    for (let x = 0; x < size.width; x++) {
      const value = strokes[y * size.width + x] as number;
      mass += value;
      sumX += value * x;
      sumY += value * y;
    }
  }
  const place = (centre: number, extent: number, room: number) =>
    Math.min(room - extent, Math.max(0, Math.round(room / 2 - centre)));
  const left = mass === 0 ? Math.floor((target.width - size.width) / 2) : place(sumX / mass, size.width, target.width);
  const top =
    mass === 0 ? Math.floor((target.height - size.height) / 2) : place(sumY / mass, size.height, target.height);
  const pixels = new Uint8Array(target.height * target.width);
  for (let y = 0; y < size.height; y++)
    pixels.set(strokes.subarray(y * size.width, (y + 1) * size.width), (top + y) * target.width + left);
  return pixels;
}
