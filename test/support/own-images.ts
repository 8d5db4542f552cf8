/**
 * The two uploads of issue 24's targets, built as a user would zip them for POST /datasets: class
 * folders under train/ and test/, one PNG per image. Real data no one on the project made:
 * the UCI optical digits (test/fixtures/optical-digits.csv.gz) and three classes of the real
 * CIFAR-10 archive.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import { cifar10 } from '../../src/datasets/cifar10.ts';
import { imageFolderEntries, zipOf } from './archives.ts';
import { sharedCifarArchive } from './cifar10-source.ts';

/** scikit-learn's copy of the UCI optical digits: 1,797 rows of 64 values 0-16 (8×8, row by row), the digit last. */
const opticalDigitsFixture = path.resolve(import.meta.dirname, '../fixtures/optical-digits.csv.gz');

/** What the issue measured on: the first 1,200 digits to train, the next 400 to test. */
const opticalDigitsSplit = { train: 1200, test: 400 } as const;

/** Each of the 8×8 cells counted the ink of a 4×4 block of NIST's 32×32 bitmap: scaled back to 32×32. */
const digitSide = 32;
const cellSide = digitSide / 8;

interface OpticalDigit {
  /** 64 values, 0 (paper) to 16 (a block all ink). */
  readonly cells: readonly number[];
  readonly digit: number;
}

async function opticalDigits(): Promise<OpticalDigit[]> {
  const text = gunzipSync(await readFile(opticalDigitsFixture)).toString('utf8');
  return text
    .trim()
    .split('\n')
    .map((line, row) => {
      const values = line.split(',').map(Number);
      const digit = values.pop();
      if (values.length !== 64 || digit === undefined || !values.every((value) => value >= 0 && value <= 16))
        throw new Error(`${opticalDigitsFixture}: row ${row + 1} is not 64 values 0-16 and a digit`);
      return { cells: values, digit };
    });
}

/**
 * One digit as a 32×32 grey PNG, bright ink on black as the scans were counted: each cell becomes
 * the 4×4 block it was counted from, at value × 255 / 16 (nearest neighbour: nothing the data
 * doesn't hold is invented, and the PNG doesn't depend on a resampler's version).
 */
async function digitPng({ cells }: OpticalDigit): Promise<Buffer> {
  const pixels = Buffer.alloc(digitSide * digitSide);
  for (let y = 0; y < digitSide; y++)
    for (let x = 0; x < digitSide; x++)
      pixels[y * digitSide + x] = Math.round(
        ((cells[Math.floor(y / cellSide) * 8 + Math.floor(x / cellSide)] as number) * 255) / 16,
      );
  return sharp(pixels, { raw: { width: digitSide, height: digitSide, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
}

/**
 * The optical digits as an upload: `train/<digit>/<row>.png` for the first 1,200 rows,
 * `test/<digit>/<row>.png` for the next 400 (of 1,797), class folders 0-9.
 */
export async function opticalDigitsZip(): Promise<Buffer> {
  const digits = await opticalDigits();
  const { train, test } = opticalDigitsSplit;
  const entries = await Promise.all(
    digits.slice(0, train + test).map(async (digit, row) => ({
      name: `${row < train ? 'train' : 'test'}/${digit.digit}/${row}.png`,
      data: await digitPng(digit),
    })),
  );
  return zipOf(entries);
}

/** The three CIFAR-10 classes of the photo target, by their label in CIFAR-10. */
const cifarThreeClasses = { 0: 'airplane', 6: 'frog', 9: 'truck' } as const;
/** Training pictures per class: the first 500 of each in the training batches' order. */
const cifarThreeClassesTrainPerClass = 500;

/**
 * Three CIFAR-10 classes (airplane, frog, truck) as an upload: the first 500 training pictures of
 * each to `train/<class>/<index>.png` (1,500), every test picture of them to `test/<class>/<index>.png`
 * (3,000), 32×32 RGB PNGs, from the real archive (by default the one ../shared/ holds).
 */
export async function cifarThreeClassesZip(archive: string = sharedCifarArchive): Promise<Buffer> {
  const dataset = await cifar10.load({
    dataDir: path.join(path.dirname(archive), 'unused-data-dir'),
    userPath: archive,
  });
  const classes = Object.keys(cifarThreeClasses).map(Number);
  const className = (label: number) => cifarThreeClasses[label as keyof typeof cifarThreeClasses];
  const train = await imageFolderEntries(dataset.train, dataset.shape, {
    classes,
    perClass: cifarThreeClassesTrainPerClass,
    className,
    prefix: 'train/',
  });
  const test = await imageFolderEntries(dataset.test, dataset.shape, {
    classes,
    perClass: dataset.test.count,
    className,
    prefix: 'test/',
  });
  return zipOf([...train, ...test].map(({ name, data }) => ({ name, data })));
}

/**
 * LeNet-5 on the optical digits, every setting explicit: the recipe measured to pass 0.98 (see
 * docs/performance.md, "Recipes for your own images"), upload with imageKind strokes so that
 * augment shifts and never mirrors.
 */
export const opticalDigitsRecipe = {
  model: 'lenet5',
  optimizer: 'adam',
  learningRate: 3e-3,
  learningRateSchedule: { type: 'cosine', warmupEpochs: 2, minLearningRate: 0 },
  labelSmoothing: 0.1,
  augment: true,
  batchSize: 64,
  epochs: 60,
  weightDecay: 0,
  seed: 1,
  logEvery: 10,
} as const satisfies Omit<JobRequestInput, 'dataset'>;

/**
 * ResNet-20 from scratch on the three CIFAR-10 classes, every setting explicit: the recipe
 * measured (see docs/performance.md, "Recipes for your own images"); augment crops and flips (a
 * natural data set).
 */
export const cifarThreeClassesRecipe = {
  model: 'resnet20',
  optimizer: 'sgd',
  learningRate: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  learningRateSchedule: { type: 'cosine', warmupEpochs: 1, minLearningRate: 0.001 },
  labelSmoothing: 0.1,
  augment: true,
  batchSize: 64,
  epochs: 20,
  seed: 1,
  logEvery: 10,
} as const satisfies Omit<JobRequestInput, 'dataset'>;

/**
 * LeNet-5 on the three CIFAR-10 classes: the best of the LeNet-5 recipes measured, the fast
 * alternative to ResNet-20 on a CPU (see docs/performance.md).
 */
export const cifarThreeClassesLenetRecipe = {
  ...opticalDigitsRecipe,
  epochs: 100,
} as const satisfies Omit<JobRequestInput, 'dataset'>;
