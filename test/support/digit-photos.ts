/**
 * Pictures of handwritten digits as people upload them, made from MNIST test digits: what predict's
 * preprocessing is measured on. Each kind is one way a digit reaches the service; every picture is
 * drawn from a seeded generator, so a test sees the same pictures on every run.
 */
import sharp from 'sharp';
import { SeededRandom } from '../../src/random.ts';

export const photoKinds = ['mnist-png', 'photo', 'small-in-photo', 'chalkboard'] as const;
export type PhotoKind = (typeof photoKinds)[number];

/** What each kind is, for reports and the closing note. */
export const photoKindDescriptions: Readonly<Record<PhotoKind, string>> = {
  'mnist-png': 'the MNIST test digit itself, 28×28 white on black, as PNG (as uploads were tested before)',
  photo:
    'dark ink on light, colour-cast paper with noise and uneven light, 240–900 px frames, digit 25–70% of the short side, off-centre, rotated up to ±15°, JPEG quality 55–90',
  'small-in-photo': 'as photo, but the digit only 12–25% of the short side of a 640–1200 px frame',
  chalkboard: 'light strokes on a dark, noisy, colour-cast board, otherwise as photo',
};

/** A picture of the 28×28 MNIST digit `pixels` (white on black), of the given kind. */
export async function digitPhoto(pixels: Uint8Array, kind: PhotoKind, seed: number): Promise<Buffer> {
  if (kind === 'mnist-png')
    return sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
  const random = new SeededRandom(seed);
  const between = (low: number, high: number) => low + (high - low) * random.next();
  const width = Math.round(kind === 'small-in-photo' ? between(640, 1200) : between(240, 900));
  const height = Math.round(width * between(0.66, 1.34));
  const digitShare = kind === 'small-in-photo' ? between(0.12, 0.25) : between(0.25, 0.7);
  // MNIST's digit fills 20 of its 28 pixels: scale the whole 28×28 so that the digit has the share wanted.
  const side = Math.max(28, Math.round((digitShare * Math.min(width, height) * 28) / 20));
  const angle = between(-15, 15);
  const strokes = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
    .resize(side, side, { kernel: 'cubic' })
    .rotate(angle, { background: { r: 0, g: 0, b: 0 } })
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { width: strokesWidth, height: strokesHeight } = strokes.info;
  // Off-centre, anywhere the digit still fits in the frame.
  const left = Math.round(between(0, Math.max(0, width - strokesWidth)));
  const top = Math.round(between(0, Math.max(0, height - strokesHeight)));

  const dark = kind === 'chalkboard';
  const cast = [between(0.85, 1.05), between(0.85, 1.05), between(0.8, 1.05)];
  const paperLevel = dark ? between(30, 70) : between(185, 245);
  const inkLevel = dark ? between(190, 240) : between(15, 90);
  const inkTint = [between(0.8, 1.1), between(0.8, 1.1), between(0.9, 1.3)];
  const noise = between(3, 10);
  // Light falling across the page: up to ±12 grey levels from one corner to the other.
  const light = { x: between(-12, 12) / width, y: between(-12, 12) / height };

  const photo = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sx = x - left;
      const sy = y - top;
      const inside = sx >= 0 && sy >= 0 && sx < strokesWidth && sy < strokesHeight;
      const ink = inside ? (strokes.data[sy * strokesWidth + sx] as number) / 255 : 0;
      const lighting = light.x * (x - width / 2) + light.y * (y - height / 2);
      const grain = noise * gaussian(random);
      for (let c = 0; c < 3; c++) {
        const paper = paperLevel * (cast[c] as number);
        const pen = inkLevel * (inkTint[c] as number);
        photo[(y * width + x) * 3 + c] = clamp(paper + (pen - paper) * ink + lighting + grain);
      }
    }
  }
  return sharp(photo, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: Math.round(between(55, 90)) })
    .toBuffer();
}

function gaussian(random: SeededRandom): number {
  return Math.sqrt(-2 * Math.log(1 - random.next())) * Math.cos(2 * Math.PI * random.next());
}

function clamp(value: number): number {
  return Math.min(255, Math.max(0, Math.round(value)));
}
