import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import sharp from 'sharp';
import { ImageError, prepareUpload } from '../../src/images/prepare-image.ts';
import type { ImageShape } from '../../src/datasets/dataset.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { normalisedImages } from '../../src/datasets/normalise.ts';
import { startBackend } from '../../src/backends/select.ts';

const GREY: ImageShape = { height: 28, width: 28, channels: 1 };
const RGB: ImageShape = { height: 32, width: 32, channels: 3 };
const SHAPES = [GREY, RGB] as const;
const MAX_PIXELS = 40_000_000;

/** The model's input with preprocessing `none`: the plain resize every upload had before kinds. */
async function toModelInput(upload: Buffer, shape: ImageShape, maxPixels: number, label: string): Promise<Uint8Array> {
  return (await prepareUpload(upload, shape, maxPixels, label, 'none')).pixels;
}

const byteCount = (shape: ImageShape): number => shape.height * shape.width * shape.channels;

/** Deterministic bytes (mulberry32) covering the whole 0..255 range. */
function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) % 256;
  }
  return out;
}

/** A true 1-channel, 8-bit greyscale PNG of the given bytes. */
function greyPng(bytes: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(bytes, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

type Colour = { r: number; g: number; b: number; alpha?: number };
const solid = (width: number, height: number, colour: Colour, channels: 3 | 4 = 3) =>
  sharp({ create: { width, height, channels, background: colour } });

const WHITE: Colour = { r: 255, g: 255, b: 255 };
const BLACK: Colour = { r: 0, g: 0, b: 0 };

function distinct(bytes: Uint8Array): number[] {
  return [...new Set(bytes)].sort((a, b) => a - b);
}

async function assertImageError(
  promise: Promise<unknown>,
  reason: ImageError['reason'],
  message: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ImageError, `expected an ImageError, got ${String(error)}`);
    assert.equal(error.reason, reason, `reason of "${error.message}"`);
    assert.match(error.message, message);
    return true;
  });
}

const folders: string[] = [];
after(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

describe('prepareUpload with preprocessing none', () => {
  describe('gives exactly height*width*channels bytes for every kind of image', () => {
    const cases: { name: string; image: () => Promise<Buffer>; expected: number }[] = [
      {
        name: '1-channel greyscale PNG',
        image: async () => {
          const png = await greyPng(Buffer.alloc(20 * 20, 255), 20, 20);
          const { channels, space } = await sharp(png).metadata();
          assert.deepEqual([channels, space], [1, 'b-w'], 'the test image really is 1-channel');
          return png;
        },
        expected: 255,
      },
      { name: 'RGB PNG', image: () => solid(20, 20, WHITE).png().toBuffer(), expected: 255 },
      {
        name: 'RGBA PNG, fully transparent white (composed onto black)',
        image: () =>
          solid(20, 20, { ...WHITE, alpha: 0 }, 4)
            .png()
            .toBuffer(),
        expected: 0,
      },
      {
        name: 'RGBA PNG, opaque white',
        image: () =>
          solid(20, 20, { ...WHITE, alpha: 1 }, 4)
            .png()
            .toBuffer(),
        expected: 255,
      },
      {
        name: '16-bit RGB PNG',
        image: async () => {
          const png = await solid(20, 20, WHITE).toColourspace('rgb16').png().toBuffer();
          assert.equal((await sharp(png).metadata()).depth, 'ushort', 'the test image really is 16-bit');
          return png;
        },
        expected: 255,
      },
      {
        name: '16-bit greyscale PNG',
        image: async () => {
          const png = await sharp(Buffer.alloc(20 * 20, 255), { raw: { width: 20, height: 20, channels: 1 } })
            .toColourspace('grey16')
            .png()
            .toBuffer();
          const { depth, channels } = await sharp(png).metadata();
          assert.deepEqual([depth, channels], ['ushort', 1]);
          return png;
        },
        expected: 255,
      },
      { name: 'palette PNG', image: () => solid(20, 20, WHITE).png({ palette: true }).toBuffer(), expected: 255 },
      { name: 'palette GIF', image: () => solid(20, 20, WHITE).gif().toBuffer(), expected: 255 },
      {
        name: 'transparent GIF',
        image: () =>
          solid(20, 20, { ...WHITE, alpha: 0 }, 4)
            .gif()
            .toBuffer(),
        expected: 0,
      },
      { name: 'JPEG', image: () => solid(20, 20, WHITE).jpeg().toBuffer(), expected: 255 },
      { name: 'WebP', image: () => solid(20, 20, WHITE).webp().toBuffer(), expected: 255 },
      {
        name: 'transparent WebP',
        image: () =>
          solid(20, 20, { ...WHITE, alpha: 0 }, 4)
            .webp({ lossless: true })
            .toBuffer(),
        expected: 0,
      },
      { name: 'TIFF', image: () => solid(20, 20, WHITE).tiff().toBuffer(), expected: 255 },
      { name: 'a 2000x1500 PNG', image: () => solid(2000, 1500, WHITE).png().toBuffer(), expected: 255 },
      { name: 'a 1x1 PNG', image: () => solid(1, 1, WHITE).png().toBuffer(), expected: 255 },
    ];
    for (const { name, image, expected } of cases) {
      it(name, async () => {
        const upload = await image();
        for (const shape of SHAPES) {
          const input = await toModelInput(upload, shape, MAX_PIXELS, 'the upload');
          assert.ok(input instanceof Uint8Array);
          assert.equal(input.byteLength, byteCount(shape), `${shape.height}x${shape.width}x${shape.channels}`);
          assert.deepEqual(distinct(input), [expected], `${shape.height}x${shape.width}x${shape.channels} values`);
        }
      });
    }
  });

  it('turns a solid white image into all 255 and a solid black one into all 0', async () => {
    const white = await solid(50, 40, WHITE).png().toBuffer();
    const black = await solid(50, 40, BLACK).png().toBuffer();
    for (const shape of SHAPES) {
      const fromWhite = await toModelInput(white, shape, MAX_PIXELS, 'white');
      const fromBlack = await toModelInput(black, shape, MAX_PIXELS, 'black');
      assert.equal(fromWhite.byteLength, byteCount(shape));
      assert.equal(fromBlack.byteLength, byteCount(shape));
      assert.ok(fromWhite.every((value) => value === 255));
      assert.ok(fromBlack.every((value) => value === 0));
    }
  });

  it('keeps pure red as R=255, G=0, B=0 in every pixel, in HWC order', async () => {
    for (const upload of [
      await solid(32, 32, { r: 255, g: 0, b: 0 }).png().toBuffer(),
      await solid(10, 7, { r: 255, g: 0, b: 0 }).png().toBuffer(),
      await solid(32, 32, { r: 255, g: 0, b: 0 }).webp({ lossless: true }).toBuffer(),
    ]) {
      const input = await toModelInput(upload, RGB, MAX_PIXELS, 'red');
      assert.equal(input.byteLength, 32 * 32 * 3);
      for (let pixel = 0; pixel < 32 * 32; pixel++) {
        assert.deepEqual([...input.subarray(pixel * 3, pixel * 3 + 3)], [255, 0, 0], `pixel ${pixel}`);
      }
    }
  });

  it('lays out distinct channels in HWC order', async () => {
    // A 2x1 image: red then blue. HWC gives 255,0,0, 0,0,255; CHW would give 255,0, 0,0, 0,255.
    const upload = await sharp(Buffer.from([255, 0, 0, 0, 0, 255]), { raw: { width: 2, height: 1, channels: 3 } })
      .png()
      .toBuffer();
    const input = await toModelInput(upload, { height: 1, width: 2, channels: 3 }, MAX_PIXELS, 'two pixels');
    assert.deepEqual([...input], [255, 0, 0, 0, 0, 255]);
  });

  it('turns colours into a grey level that follows their luminance for one channel', async () => {
    const greyOf = async (colour: Colour): Promise<number> => {
      const input = await toModelInput(await solid(28, 28, colour).png().toBuffer(), GREY, MAX_PIXELS, 'colour');
      assert.equal(input.byteLength, 28 * 28);
      const levels = distinct(input);
      assert.equal(levels.length, 1, `a solid colour gives one grey level, got ${levels.join(', ')}`);
      return levels[0] as number;
    };
    const red = await greyOf({ r: 255, g: 0, b: 0 });
    const green = await greyOf({ r: 0, g: 255, b: 0 });
    const blue = await greyOf({ r: 0, g: 0, b: 255 });
    // Rec. 601 luma gives 76/150/29, Rec. 709 luma 54/182/18, companded linear luminance 127/220/76:
    // any of these is a luminance; a plain channel average (85 each) or taking one channel is not.
    assert.ok(red >= 50 && red <= 130, `red → ${red}`);
    assert.ok(green >= 145 && green <= 225, `green → ${green}`);
    assert.ok(blue >= 15 && blue <= 80, `blue → ${blue}`);
    assert.ok(green > red && red > blue, `green ${green} > red ${red} > blue ${blue}`);
    // A neutral grey stays (within rounding) the same grey.
    const grey = await greyOf({ r: 100, g: 100, b: 100 });
    assert.ok(Math.abs(grey - 100) <= 1, `grey 100 → ${grey}`);
  });

  it('composes partly transparent pixels onto black', async () => {
    // 4x1 RGBA: opaque white, transparent white, half-transparent white, transparent red.
    const rgba = Buffer.from([255, 255, 255, 255, 255, 255, 255, 0, 255, 255, 255, 128, 255, 0, 0, 0]);
    const upload = await sharp(rgba, { raw: { width: 4, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    const grey = await toModelInput(upload, { height: 1, width: 4, channels: 1 }, MAX_PIXELS, 'transparent');
    assert.equal(grey[0], 255);
    assert.equal(grey[1], 0);
    assert.ok(Math.abs((grey[2] as number) - 128) <= 1, `half-transparent white → ${grey[2]}`);
    assert.equal(grey[3], 0);
    const rgb = await toModelInput(upload, { height: 1, width: 4, channels: 3 }, MAX_PIXELS, 'transparent');
    assert.deepEqual([...rgb.subarray(0, 6)], [255, 255, 255, 0, 0, 0]);
    assert.deepEqual([...rgb.subarray(9, 12)], [0, 0, 0]);
  });

  it('resizes a large image by stretching it onto the model input, keeping its layout', async () => {
    // 2000x1500: left half white, right half black.
    const width = 2000;
    const height = 1500;
    const raw = Buffer.alloc(width * height);
    for (let y = 0; y < height; y++) raw.fill(255, y * width, y * width + width / 2);
    const upload = await greyPng(raw, width, height);
    for (const shape of SHAPES) {
      const input = await toModelInput(upload, shape, MAX_PIXELS, 'large');
      assert.equal(input.byteLength, byteCount(shape));
      for (let y = 0; y < shape.height; y++) {
        for (let c = 0; c < shape.channels; c++) {
          const left = input[(y * shape.width + 0) * shape.channels + c];
          const right = input[(y * shape.width + shape.width - 1) * shape.channels + c];
          assert.equal(left, 255, `row ${y} channel ${c} left`);
          assert.equal(right, 0, `row ${y} channel ${c} right`);
        }
      }
    }
  });

  it('turns a photo upright as its EXIF orientation says, as browsers show it', async () => {
    // Stored 20 wide x 10 high, left half white, right half black. Orientation 6 means "rotate 90°
    // clockwise to display": shown 10 wide x 20 high, white on top, black below (how phones save
    // portrait photos).
    const stored = Buffer.alloc(20 * 10 * 3);
    for (let y = 0; y < 10; y++) stored.fill(255, y * 60, y * 60 + 30);
    const jpeg = (orientation: number) =>
      sharp(stored, { raw: { width: 20, height: 10, channels: 3 } })
        .jpeg({ quality: 100 })
        .withMetadata({ orientation })
        .toBuffer();
    const rotated = await jpeg(6);
    assert.equal((await sharp(rotated).metadata()).orientation, 6);

    // Upright already: columns keep their colours.
    const plain = await toModelInput(await jpeg(1), { height: 10, width: 20, channels: 1 }, MAX_PIXELS, 'photo');
    assert.ok((plain[0] as number) >= 245 && (plain[19] as number) <= 10, `upright: ${plain[0]} … ${plain[19]}`);

    const input = await toModelInput(rotated, { height: 20, width: 10, channels: 1 }, MAX_PIXELS, 'photo');
    const top = [...input.subarray(0, 10)];
    const bottom = [...input.subarray(190, 200)];
    assert.ok(
      top.every((value) => value >= 245) && bottom.every((value) => value <= 10),
      `the displayed top row should be white and the bottom row black, got top ${top.join(',')} bottom ${bottom.join(',')}`,
    );
  });

  it('passes a 28x28 greyscale MNIST digit through byte for byte', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'image-input-test-'));
    folders.push(dataDir);
    const { test } = await mnist.load({ dataDir });
    for (const index of [0, 1, 2, 9999]) {
      const digit = test.images.subarray(index * 784, (index + 1) * 784);
      assert.ok(digit.some((value) => value > 200) && digit.some((value) => value === 0), 'a real digit');
      const input = await toModelInput(await greyPng(digit, 28, 28), GREY, MAX_PIXELS, `digit ${index}`);
      assert.deepEqual(Buffer.from(input), Buffer.from(digit), `test image ${index}`);
    }
  });

  it('passes a random 28x28 greyscale pattern through byte for byte', async () => {
    const bytes = pattern(28 * 28, 17);
    assert.equal(distinct(bytes).length > 200, true, 'the pattern covers most byte values');
    const input = await toModelInput(await greyPng(bytes, 28, 28), GREY, MAX_PIXELS, 'pattern');
    assert.deepEqual(Buffer.from(input), bytes);
  });

  it('passes a random 32x32 RGB pattern through byte for byte', async () => {
    const bytes = pattern(32 * 32 * 3, 99);
    const upload = await sharp(bytes, { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toBuffer();
    const input = await toModelInput(upload, RGB, MAX_PIXELS, 'pattern');
    assert.deepEqual(Buffer.from(input), bytes);
  });

  describe('refuses what it can not use', () => {
    it('an empty upload: 400 naming the upload', async () => {
      await assertImageError(
        toModelInput(Buffer.alloc(0), GREY, MAX_PIXELS, 'file 3'),
        'unreadable',
        /^file 3 .*empty/,
      );
    });

    it('random bytes: 400 not a decodable image', async () => {
      await assertImageError(
        toModelInput(pattern(4096, 5), GREY, MAX_PIXELS, 'file 2'),
        'unreadable',
        /file 2 is not a decodable image/,
      );
    });

    it('a PNG cut short: 400 not a decodable image', async () => {
      const png = await greyPng(pattern(28 * 28, 3), 28, 28);
      await assertImageError(
        toModelInput(png.subarray(0, 100), GREY, MAX_PIXELS, 'the upload'),
        'unreadable',
        /the upload is not a decodable image/,
      );
    });

    it('an SVG: 400, never rendered', async () => {
      const svg = Buffer.from(
        '<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28" fill="white"/></svg>',
      );
      assert.equal((await sharp(svg).metadata()).format, 'svg', 'sharp itself could render it');
      await assertImageError(
        toModelInput(svg, GREY, MAX_PIXELS, 'the upload'),
        'unreadable',
        /the upload is not a decodable image.*svg/,
      );
    });

    it('a 5000x5000 PNG over a 1,000,000-pixel limit: 413', async () => {
      const upload = await sharp({ create: { width: 5000, height: 5000, channels: 3, background: WHITE } })
        .png({ compressionLevel: 1 })
        .toBuffer();
      await assertImageError(toModelInput(upload, GREY, 1_000_000, 'file 1'), 'tooLarge', /file 1 .*1000000 pixels/);
      // The same image is fine under a limit it fits.
      const input = await toModelInput(upload, GREY, 25_000_000, 'file 1');
      assert.equal(input.byteLength, 784);
    });
  });
});

describe('prepareUpload with preprocessing natural', () => {
  it('keeps the aspect ratio: a 2000×1000 image gives its centred 1000×1000 square, not a squeezed whole', async () => {
    // Left quarter red, middle half green, right quarter blue.
    const raw = Buffer.alloc(2000 * 1000 * 3);
    for (let y = 0; y < 1000; y++) {
      for (let x = 0; x < 2000; x++) raw[(y * 2000 + x) * 3 + (x < 500 ? 0 : x < 1500 ? 1 : 2)] = 255;
    }
    const upload = await sharp(raw, { raw: { width: 2000, height: 1000, channels: 3 } })
      .png()
      .toBuffer();
    const prepared = await prepareUpload(upload, RGB, MAX_PIXELS, 'wide', 'natural');
    assert.deepEqual(prepared.crop, { left: 500, top: 0, width: 1000, height: 1000 });
    // Green throughout: the resampling kernel lets a trace of red and blue into the edge columns only.
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        const [r = 0, g = 0, b = 0] = prepared.pixels.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3);
        const trace = x < 3 || x > 28 ? 40 : 3;
        assert.ok(r <= trace && b <= trace && g >= 255 - trace, `pixel ${x},${y}: ${r},${g},${b}`);
      }
    }
    assert.equal(prepared.blank, false);
    const stretched = await prepareUpload(upload, RGB, MAX_PIXELS, 'wide', 'none');
    assert.deepEqual([...stretched.pixels.subarray(0, 3)], [255, 0, 0], 'none stretches: the red quarter stays');
    assert.equal(stretched.crop, null);
  });

  it('calls an image of one colour blank, and a square one uncropped', async () => {
    const prepared = await prepareUpload(
      await solid(64, 64, { r: 90, g: 120, b: 200 }).jpeg().toBuffer(),
      RGB,
      MAX_PIXELS,
      'sky',
      'natural',
    );
    assert.deepEqual([prepared.blank, prepared.crop], [true, null]);
    const pattern32 = await sharp(pattern(32 * 32 * 3, 5), { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toBuffer();
    assert.equal((await prepareUpload(pattern32, RGB, MAX_PIXELS, 'pattern', 'none')).blank, false);
  });
});

describe('prepareUpload with preprocessing strokes', () => {
  /** A dark bar 40 wide and 120 high at (200, 50) on light grey paper, 400×300. */
  async function barOnPaper(): Promise<Buffer> {
    const raw = Buffer.alloc(400 * 300, 220);
    for (let y = 50; y < 170; y++) raw.fill(30, y * 400 + 200, y * 400 + 240);
    return greyPng(raw, 400, 300);
  }

  it('inverts light paper, crops to the ink and fits it into the 20×20 box, centred by mass', async () => {
    const prepared = await prepareUpload(await barOnPaper(), GREY, MAX_PIXELS, 'bar', 'strokes');
    assert.deepEqual([prepared.mode, prepared.inverted, prepared.blank], ['strokes', true, false]);
    assert.deepEqual(prepared.crop, { left: 200, top: 50, width: 40, height: 120 });
    const ink = [...prepared.pixels.keys()].filter((i) => (prepared.pixels[i] as number) > 128);
    const rows = new Set(ink.map((i) => Math.floor(i / 28)));
    const columns = new Set(ink.map((i) => i % 28));
    assert.equal(rows.size, 20, 'the bar is 20 high, the box');
    assert.ok(columns.size >= 6 && columns.size <= 8, `a third as wide: ${columns.size}`);
    const mean = (values: Set<number>) => [...values].reduce((a, b) => a + b, 0) / values.size;
    assert.ok(
      Math.abs(mean(rows) - 14) <= 1 && Math.abs(mean(columns) - 14) <= 1,
      `centred: rows ${mean(rows)}, columns ${mean(columns)}`,
    );
    assert.equal(prepared.pixels[0], 0, 'paper is black');
  });

  it('keeps bright strokes on dark paper as they are, and drops specks of noise before cropping', async () => {
    const raw = Buffer.alloc(200 * 200, 10);
    for (let y = 60; y < 140; y++) raw.fill(240, y * 200 + 90, y * 200 + 110);
    raw[5 * 200 + 5] = 255; // a speck far from the stroke
    const prepared = await prepareUpload(await greyPng(raw, 200, 200), GREY, MAX_PIXELS, 'chalk', 'strokes');
    assert.deepEqual([prepared.inverted, prepared.blank], [false, false]);
    assert.deepEqual(prepared.crop, { left: 90, top: 60, width: 20, height: 80 });
  });

  it('calls empty paper and a black square blank, with an input of black', async () => {
    const paper = Buffer.from(pattern(300 * 200, 11).map((value) => 200 + (value % 20)));
    for (const upload of [
      await greyPng(paper, 300, 200),
      await solid(28, 28, BLACK).png().toBuffer(),
      await solid(50, 50, WHITE).png().toBuffer(),
    ]) {
      const prepared = await prepareUpload(upload, GREY, MAX_PIXELS, 'empty', 'strokes');
      assert.deepEqual([prepared.blank, prepared.crop], [true, null]);
      assert.ok(prepared.pixels.every((value) => value === 0));
    }
  });

  it('gives a 3-channel model the grey strokes in every channel', async () => {
    const prepared = await prepareUpload(await barOnPaper(), RGB, MAX_PIXELS, 'bar', 'strokes');
    assert.equal(prepared.pixels.byteLength, 32 * 32 * 3);
    for (let pixel = 0; pixel < 32 * 32; pixel++) {
      const [r, g, b] = prepared.pixels.subarray(pixel * 3, pixel * 3 + 3);
      assert.ok(r === g && g === b, `pixel ${pixel}`);
    }
  });
});

describe('normalisedImages', () => {
  before(async () => {
    assert.equal(await startBackend('cpu', pino({ level: 'silent' })), 'cpu');
  });

  it('maps every byte value x to exactly (x/255 - 0.5)/0.5 in float32', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const tensor = normalisedImages(bytes, 1, { height: 16, width: 16, channels: 1 });
    try {
      assert.equal(tensor.dtype, 'float32');
      const values = tensor.dataSync();
      assert.equal(values.length, 256);
      for (let x = 0; x < 256; x++) {
        assert.equal(values[x], Math.fround((x / 255 - 0.5) / 0.5), `byte ${x}`);
      }
      assert.equal(values[0], -1);
      assert.equal(values[255], 1);
      assert.ok(
        Math.abs(values[127] as number) < 0.005 && Math.abs(values[128] as number) < 0.005,
        'the middle is about 0',
      );
      assert.ok((values[127] as number) < 0 && (values[128] as number) > 0);
      for (let x = 1; x < 256; x++) assert.ok((values[x] as number) > (values[x - 1] as number), `increasing at ${x}`);
    } finally {
      tensor.dispose();
    }
  });

  it('shapes n images as [n, h, w, c], keeping the bytes in order', () => {
    const shape: ImageShape = { height: 4, width: 2, channels: 3 };
    const bytes = Uint8Array.from({ length: 5 * 4 * 2 * 3 }, (_, i) => (i * 7) % 256);
    const tensor = normalisedImages(bytes, 5, shape);
    try {
      assert.deepEqual(tensor.shape, [5, 4, 2, 3]);
      const nested = tensor.arraySync();
      // Image 3, row 2, column 1, channel 2 is byte ((3*4 + 2)*2 + 1)*3 + 2.
      const index = ((3 * 4 + 2) * 2 + 1) * 3 + 2;
      assert.equal(nested[3]?.[2]?.[1]?.[2], Math.fround(((bytes[index] as number) / 255 - 0.5) / 0.5));
      const flat = tensor.dataSync();
      bytes.forEach((byte, i) => assert.equal(flat[i], Math.fround((byte / 255 - 0.5) / 0.5)));
    } finally {
      tensor.dispose();
    }
  });

  it('makes an MNIST-shaped batch of white and black images ±1', () => {
    const bytes = new Uint8Array(2 * 784);
    bytes.fill(255, 0, 784);
    const tensor = normalisedImages(bytes, 2, GREY);
    try {
      assert.deepEqual(tensor.shape, [2, 28, 28, 1]);
      const [white, black] = tf.unstack(tensor);
      assert.deepEqual([...new Set(white?.dataSync())], [1]);
      assert.deepEqual([...new Set(black?.dataSync())], [-1]);
      tf.dispose([white, black].filter((t): t is tf.Tensor => t !== undefined));
    } finally {
      tensor.dispose();
    }
  });
});
