import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import {
  skipReasons,
  type DatasetProgress,
  type DatasetReport,
  type DatasetUploadOptions,
  type SkippedFile,
  type SkipReason,
} from '../../contract/datasets.ts';
import { archiveEntries, type ArchiveFormat, type ArchiveLimits } from '../../archives/archive.ts';
import { acceptedImageFormats, ImageError, prepareUpload } from '../../images/prepare-image.ts';
import { SeededRandom } from '../../random.ts';
import { replaceFolderAtomically } from '../../storage/atomic-folder.ts';
import type { ImageShape } from '../dataset.ts';
import { encodeRecord, recordBytes } from '../record-layout.ts';
import { ImageKindGuess } from './guess-image-kind.ts';
import { placeFiles, type SplitName } from './layout.ts';
import { descriptionFile, splitFile, type StoredDataset } from './stored.ts';

export interface BuildLimits extends ArchiveLimits {
  /** Largest single file read as an image; bigger ones are skipped unread. */
  readonly maxFileBytes: number;
  /** Most pixels one image may have, refused from its header (a decompression bomb). */
  readonly maxImagePixels: number;
}

export interface BuildRequest {
  readonly archive: string;
  readonly format: ArchiveFormat;
  readonly id: string;
  readonly name: string;
  readonly options: DatasetUploadOptions;
  /** DATASETS_DIR: the data set is written to `<root>/<id>/`. */
  readonly root: string;
  readonly limits: BuildLimits;
  readonly onProgress: (progress: DatasetProgress) => Promise<void>;
}

/** An archive that makes no data set (no images, one class…): the message says why, for the data set's `error`. */
export class DatasetBuildError extends Error {
  override readonly name = 'DatasetBuildError';
}

interface Candidate {
  readonly path: string;
  readonly split: SplitName | null;
  readonly className: string;
  readonly width: number;
  readonly height: number;
  readonly grey: boolean;
  readonly digest: string;
}

const minimumSide = 8;
/** Channel levels apart within which a pixel counts as grey (JPEG's colour noise). */
const greyTolerance = 6;
const defaultSideRange = { min: 16, max: 64 };
const fewImages = 10;
const unbalancedRatio = 10;
const listedSkips = 100;
const progressEvery = 200;

/**
 * Turns an uploaded archive into a data set on disk, in two passes over the archive: the first
 * looks at every file (whether it is an image, its size and colour) and, once every path is
 * known, where it belongs (layout.ts), which
 * decides the classes, the image shape and the splits (and, unless the upload says, the images'
 * kind, from a sample: guess-image-kind.ts); the second decodes each image with
 * predict's own preparation (prepareUpload), so uploads to a model trained on it are brought to
 * its form exactly as its images were. Nothing is unpacked to disk; only the finished data set is
 * written, all at once. Throws ArchiveError or DatasetBuildError with the reason it can't be made.
 */
export async function buildUploadedDataset(request: BuildRequest): Promise<DatasetReport> {
  const { options, limits } = request;
  const skipped: SkippedFile[] = [];
  const skip = (file: string, reason: SkipReason, detail: string) => void skipped.push({ path: file, reason, detail });

  // Pass 1: what every file is; where each belongs is known once every path has been seen.
  const looks: { path: string; look: Look }[] = [];
  const guess = new ImageKindGuess();
  for await (const entry of archiveEntries(request.archive, request.format, limits)) {
    if (entry.kind === 'link') skip(entry.path, 'link', 'a link; links are never followed');
    if (entry.kind !== 'file') continue;
    let look: Look;
    if (entry.size > limits.maxFileBytes) {
      look = { reason: 'tooLarge', detail: `${entry.size} bytes, over the ${limits.maxFileBytes} one file may have` };
    } else {
      const bytes = await entry.read();
      look = await lookAt(bytes, limits.maxImagePixels);
      if (options.imageKind === undefined && !('reason' in look) && guess.wantsMore) await guess.lookAt(bytes);
    }
    looks.push({ path: entry.path, look });
    if (looks.length % progressEvery === 0)
      await request.onProgress({ phase: 'reading', done: looks.length, total: 0 });
  }
  const placements = placeFiles(looks.map(({ path }) => path));
  const candidates: Candidate[] = [];
  for (const { path: file, look } of looks) {
    const placement = placements.get(file);
    if (!placement) continue;
    if ('skip' in placement) skip(file, placement.skip, placement.detail);
    else if ('reason' in look) skip(file, look.reason, look.detail);
    else candidates.push({ path: file, ...placement, ...look });
  }

  const classNames = [...new Set(candidates.map((candidate) => candidate.className))].sort();
  if (candidates.length === 0)
    throw new DatasetBuildError(
      `the archive holds no usable images${describeSkips(skipped)}; lay it out as <class>/<image> (PNG, JPEG, WebP, GIF, TIFF or AVIF)`,
    );
  if (classNames.length < 2)
    throw new DatasetBuildError(
      `the archive has one class only (${classNames[0]}); a classifier needs images in at least 2 class folders`,
    );
  if (classNames.length > 256)
    throw new DatasetBuildError(`the archive has ${classNames.length} classes; at most 256 are supported`);

  const side = options.imageSize ?? defaultSide(candidates);
  const channels =
    (options.colour ?? (candidates.every((candidate) => candidate.grey) ? 'grey' : 'rgb')) === 'grey' ? 1 : 3;
  const shape: ImageShape = { height: side, width: side, channels };
  const imageKind = options.imageKind ?? guess.kind;
  const assigned = assignSplits(candidates, options);
  const label = new Map(classNames.map((name, index) => [name, index]));
  for (const split of ['train', 'test'] as const) {
    if (assigned[split].length === 0)
      throw new DatasetBuildError(
        `the data set would have no ${split} images: ${split === 'test' ? 'add a test/ folder or more images per class' : 'add images to train/'}`,
      );
  }

  // Pass 2: decode and lay out every image kept, in archive order within each split.
  const splitOf = new Map<string, SplitName>();
  for (const split of ['train', 'test', 'val'] as const)
    for (const candidate of assigned[split]) splitOf.set(candidate.path, split);
  const size = recordBytes(shape);
  const buffers = {
    train: new Uint8Array(assigned.train.length * size),
    test: new Uint8Array(assigned.test.length * size),
    val: new Uint8Array(assigned.val.length * size),
  };
  const written = { train: 0, test: 0, val: 0 };
  const perClass = { train: classNames.map(() => 0), test: classNames.map(() => 0), val: classNames.map(() => 0) };
  const byPath = new Map(candidates.map((candidate) => [candidate.path, candidate]));
  let converted = 0;
  for await (const entry of archiveEntries(request.archive, request.format, limits)) {
    const split = splitOf.get(entry.path);
    const candidate = byPath.get(entry.path);
    if (entry.kind !== 'file' || split === undefined || candidate === undefined) continue;
    // A path that occurs twice is kept once, as extracting would.
    splitOf.delete(entry.path);
    const bytes = await entry.read();
    let pixels: Uint8Array;
    try {
      pixels = (await prepareUpload(bytes, shape, limits.maxImagePixels, entry.path, imageKind)).pixels;
    } catch (error) {
      if (!(error instanceof ImageError)) throw error;
      throw new DatasetBuildError(
        `${entry.path} could be read once but not decoded the second time (${error.message}): the archive changed while it was processed`,
      );
    }
    const classIndex = label.get(candidate.className) as number;
    encodeRecord(pixels, classIndex, shape, buffers[split], written[split] * size);
    written[split] += 1;
    perClass[split][classIndex] = (perClass[split][classIndex] as number) + 1;
    if (++converted % progressEvery === 0)
      await request.onProgress({ phase: 'converting', done: converted, total: candidates.length });
  }
  for (const split of ['train', 'test', 'val'] as const) {
    if (written[split] !== assigned[split].length)
      throw new DatasetBuildError(
        `the archive changed while it was processed: ${assigned[split].length - written[split]} ${split} images went missing`,
      );
  }

  await request.onProgress({ phase: 'writing', done: 0, total: 1 });
  const description: StoredDataset = {
    format: 'trainer-dataset/1',
    id: request.id,
    name: request.name,
    shape: { ...shape, channels: channels === 1 ? 1 : 3 },
    classNames,
    imageKind,
    counts: { train: written.train, test: written.test, val: written.val },
  };
  await replaceFolderAtomically(request.root, request.id, async (folder) => {
    for (const split of ['train', 'test', 'val'] as const) {
      if (split !== 'val' || written.val > 0) await writeFile(path.join(folder, splitFile(split)), buffers[split]);
    }
    await writeFile(path.join(folder, descriptionFile), JSON.stringify(description));
  });

  const splitCounts = (split: SplitName) => ({ images: written[split], perClass: perClass[split] });
  return {
    classNames,
    shape,
    imageKind,
    imageKindSource: options.imageKind === undefined ? 'guessed' : 'given',
    splits: {
      train: splitCounts('train'),
      test: splitCounts('test'),
      val: written.val > 0 ? splitCounts('val') : null,
    },
    testSplit: candidates.some((candidate) => candidate.split === 'test') ? 'folder' : 'heldOut',
    skipped: summarise(skipped),
    bytes: buffers.train.byteLength + buffers.test.byteLength + buffers.val.byteLength,
    warnings: warningsFor(classNames, perClass, assigned),
  };
}

/** A file's size, colour and digest, from its header, or why it is no image to train on. */
type Look = { width: number; height: number; grey: boolean; digest: string } | { reason: SkipReason; detail: string };

async function lookAt(bytes: Buffer, maxPixels: number): Promise<Look> {
  if (bytes.length === 0) return { reason: 'notAnImage', detail: 'an empty file' };
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes).metadata();
  } catch (error) {
    const message = (error as Error).message;
    return /unsupported image format/i.test(message)
      ? { reason: 'notAnImage', detail: 'not an image' }
      : { reason: 'unreadable', detail: `an image that can't be decoded (${message})` };
  }
  if (!metadata.format || !acceptedImageFormats.has(metadata.format))
    return { reason: 'notAnImage', detail: `${metadata.format ?? 'an unknown'} file, not a raster image` };
  const { width, height } = metadata;
  if (width * height > maxPixels)
    return {
      reason: 'tooLarge',
      detail: `${width}×${height} pixels, over the ${maxPixels} one image may have (MAX_IMAGE_PIXELS)`,
    };
  if (Math.min(width, height) < minimumSide)
    return { reason: 'tooSmall', detail: `${width}×${height} pixels; at least ${minimumSide} a side` };
  const grey = (metadata.channels ?? 3) - (metadata.hasAlpha ? 1 : 0) === 1 || (await looksGrey(bytes));
  return { width, height, grey, digest: createHash('sha1').update(bytes).digest('hex') };
}

/** Whether a colour image holds only greys (a scan or a JPEG saved as RGB), from a thumbnail: cheap next to decoding it whole. */
async function looksGrey(bytes: Buffer): Promise<boolean> {
  const side = 16;
  const { data } = await sharp(bytes)
    .resize(side, side, { fit: 'fill' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  for (let i = 0; i + 2 < data.length; i += 3) {
    const [r, g, b] = [data[i] as number, data[i + 1] as number, data[i + 2] as number];
    if (Math.max(r, g, b) - Math.min(r, g, b) > greyTolerance) return false;
  }
  return true;
}

/** The most common image's larger side, kept within a range a model trains on at a sensible cost. */
function defaultSide(candidates: readonly Candidate[]): number {
  const counts = new Map<number, number>();
  for (const { width, height } of candidates) {
    const side = Math.max(width, height);
    counts.set(side, (counts.get(side) ?? 0) + 1);
  }
  const [common] = [...counts].sort(([sideA, a], [sideB, b]) => b - a || sideA - sideB)[0] as [number, number];
  return Math.min(defaultSideRange.max, Math.max(defaultSideRange.min, common));
}

/**
 * The archive's own splits, or, without a test folder, `testFraction` of each class's training
 * images held out: chosen by the seed from the class's images in path order, so the same archive
 * and seed always hold out the same images. Every class of two or more images gives at least one.
 */
function assignSplits(candidates: readonly Candidate[], options: DatasetUploadOptions): Record<SplitName, Candidate[]> {
  const splits: Record<SplitName, Candidate[]> = { train: [], test: [], val: [] };
  const hasTest = candidates.some((candidate) => candidate.split === 'test');
  for (const candidate of candidates)
    if (candidate.split !== null && (hasTest || candidate.split !== 'train')) splits[candidate.split].push(candidate);
  if (hasTest) return splits;
  const byClass = new Map<string, Candidate[]>();
  for (const candidate of candidates) {
    if (candidate.split !== null && candidate.split !== 'train') continue;
    const members = byClass.get(candidate.className);
    if (members) members.push(candidate);
    else byClass.set(candidate.className, [candidate]);
  }
  const random = new SeededRandom(options.seed);
  for (const className of [...byClass.keys()].sort()) {
    const images = (byClass.get(className) as Candidate[]).sort((a, b) => (a.path < b.path ? -1 : 1));
    const held = images.length < 2 ? 0 : Math.max(1, Math.round(images.length * options.testFraction));
    const order = random.permutation(images.length);
    const test = new Set(Array.from(order.subarray(0, held)));
    images.forEach((image, index) => splits[test.has(index) ? 'test' : 'train'].push(image));
  }
  return splits;
}

function warningsFor(
  classNames: readonly string[],
  perClass: Record<SplitName, number[]>,
  assigned: Record<SplitName, Candidate[]>,
): string[] {
  const warnings: string[] = [];
  const train = perClass.train;
  classNames.forEach((name, index) => {
    const count = train[index] as number;
    if (count === 0) warnings.push(`class ${name} has no training images`);
    else if (count < fewImages) warnings.push(`class ${name} has only ${count} training images`);
    if ((perClass.test[index] as number) === 0)
      warnings.push(`class ${name} has no test images: its accuracy can't be measured`);
  });
  const counts = train.filter((count) => count > 0);
  const most = Math.max(...counts);
  const least = Math.min(...counts);
  if (counts.length > 1 && most >= unbalancedRatio * least) {
    warnings.push(
      `the classes are strongly unbalanced: ${most} training images in the largest, ${least} in the smallest`,
    );
  }
  const trainDigests = new Set(assigned.train.map((candidate) => candidate.digest));
  const copies = [...assigned.test, ...assigned.val].filter((candidate) => trainDigests.has(candidate.digest));
  if (copies.length > 0) {
    warnings.push(
      `${copies.length} test or validation files are byte-for-byte copies of training files (e.g. ${copies[0]?.path}): accuracy on them will look better than it is`,
    );
  }
  return warnings;
}

function summarise(skipped: readonly SkippedFile[]): DatasetReport['skipped'] {
  const byReason = Object.fromEntries(skipReasons.map((reason) => [reason, 0])) as Record<SkipReason, number>;
  for (const file of skipped) byReason[file.reason] += 1;
  return { count: skipped.length, byReason, files: skipped.slice(0, listedSkips) };
}

function describeSkips(skipped: readonly SkippedFile[]): string {
  if (skipped.length === 0) return '';
  const { byReason } = summarise(skipped);
  const reasons = Object.entries(byReason)
    .filter(([, count]) => count > 0)
    .map(([reason, count]) => `${count} ${reason}`);
  return ` (${skipped.length} file${skipped.length === 1 ? '' : 's'} skipped: ${reasons.join(', ')})`;
}
