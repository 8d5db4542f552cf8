/**
 * CIFAR-10: 60 000 colour images, 32×32, in 10 classes, from the "binary version" of the data set
 * (https://www.cs.toronto.edu/~kriz/cifar.html): `cifar-10-batches-bin/data_batch_1.bin` …
 * `data_batch_5.bin` (training) and `test_batch.bin` (test), each 10 000 records of one label byte
 * then 1024 red, 1024 green and 1024 blue bytes (row-major planes), and `batches.meta.txt` with the
 * class names, one per line.
 *
 * Looked for, in this order:
 *   1. the user's path (CIFAR10_PATH) when one is given: the `.tar.gz` (or plain `.tar`) archive,
 *      or a folder that is `cifar-10-batches-bin/` itself, holds it, or holds the archive. A path that
 *      is given but missing or malformed is an error; the lookup does not fall through to DATA_DIR.
 *   2. `DATA_DIR/cifar10/cifar-10-batches-bin/` (extracted), then `DATA_DIR/cifar10/cifar-10-binary.tar.gz`.
 *   3. a download of the archive into `DATA_DIR/cifar10/`, checked against the official MD5.
 * Files found locally are checked by structure only (names, sizes, label range, class names), not by
 * checksum, so that a faithful rebuild of the data set is accepted. The images are converted to
 * interleaved HWC bytes, as TensorFlow.js's NHWC tensors want, in one pass per batch file.
 */
import type { Stats } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  DatasetError,
  type Dataset,
  type DatasetLoadOptions,
  type DatasetSource,
  type ImageShape,
  type ImageSplit,
} from './dataset.ts';
import type { ImageKind } from '../contract/names.ts';
import { downloadFile } from './download.ts';
import { badFileError, errorMessage } from './errors.ts';
import { gunzipIfNeeded } from './idx.ts';
import { readTar } from '../archives/tar.ts';
import { decodeRecords, recordBytes } from './record-layout.ts';
import { isFile, isDirectory } from './files.ts';

/** The archive on the data set's home page. */
export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
/** MD5 of the official `cifar-10-binary.tar.gz`, as published on the home page. */
const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
const CIFAR10_ARCHIVE = 'cifar-10-binary.tar.gz';
/** The folder the archive extracts to, and the prefix of its entries. */
const CIFAR10_FOLDER = 'cifar-10-batches-bin';

const NAME = 'cifar10';
const SHAPE: ImageShape = { height: 32, width: 32, channels: 3 };
const IMAGE_KIND: ImageKind = 'natural';
/** The official order, as in batches.meta.txt; a loaded Dataset carries the names read from that file. */
const CLASS_NAMES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];
const IMAGE_BYTES = SHAPE.height * SHAPE.width * SHAPE.channels;
const RECORD_BYTES = recordBytes(SHAPE);
const RECORDS_PER_BATCH = 10_000;
const TRAIN_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
];
const TEST_FILES = ['test_batch.bin'];
const META_FILE = 'batches.meta.txt';
const ALL_FILES = [...TRAIN_FILES, ...TEST_FILES, META_FILE];

export interface Cifar10SourceOptions {
  /** MD5 of the archive the mirror serves; default the official one. Local copies are never checksummed. */
  readonly downloadMd5?: string;
  /**
   * Records in each batch file: for small test fixtures only. Default (and the format's) 10 000;
   * the source's trainSize and testSize follow it.
   */
  readonly recordsPerBatch?: number;
}

/** Where the files were found, and what to tell the user when one of them is bad. */
type Location =
  | { readonly kind: 'folder'; readonly dir: string; readonly remedy: string }
  | { readonly kind: 'archive'; readonly path: string; readonly remedy: string };

/** The files of one location, whether a folder or an archive's entries. */
interface BatchFiles {
  /** How error messages name the file. */
  describe(name: string): string;
  /** Its size in bytes, or undefined when it is missing. */
  size(name: string): Promise<number | undefined>;
  /** Its bytes; valid until the next call (a folder's batches share one buffer). */
  read(name: string): Promise<Uint8Array>;
  readonly remedy: string;
}

interface LoadContext {
  readonly recordsPerBatch: number;
  readonly status: (line: string) => void;
}

export function createCifar10Source(options: Cifar10SourceOptions = {}): DatasetSource {
  const recordsPerBatch = options.recordsPerBatch ?? RECORDS_PER_BATCH;
  if (!Number.isSafeInteger(recordsPerBatch) || recordsPerBatch < 1) {
    throw new RangeError(`recordsPerBatch must be a positive integer, got ${recordsPerBatch}`);
  }
  const downloadMd5 = options.downloadMd5 ?? CIFAR10_MD5;

  return {
    name: NAME,
    shape: SHAPE,
    classNames: CLASS_NAMES,
    imageKind: IMAGE_KIND,
    trainSize: TRAIN_FILES.length * recordsPerBatch,
    testSize: TEST_FILES.length * recordsPerBatch,
    // As in the notebook: CIFAR-10 was trained with random crops and mirrored images.
    augmentByDefault: true,

    /**
     * Whether DATA_DIR/cifar10/ holds the extracted folder or the archive. A user path (CIFAR10_PATH)
     * is not known here, so a data set found only there reads as not available locally.
     */
    async isAvailableLocally({
      dataDir,
      userPath,
    }: Pick<DatasetLoadOptions, 'dataDir' | 'userPath'>): Promise<boolean> {
      if (userPath) return (await locateUserPath(userPath).catch(() => undefined)) !== undefined;
      return (await locateInDataDir(dataDir)) !== undefined;
    },

    async load({ dataDir, userPath, mirrorUrl = CIFAR10_URL, onStatus }: DatasetLoadOptions): Promise<Dataset> {
      const context: LoadContext = { recordsPerBatch, status: (line) => onStatus?.(`${NAME}: ${line}`) };
      let location =
        userPath !== undefined && userPath !== '' ? await locateUserPath(userPath) : await locateInDataDir(dataDir);
      if (location === undefined) {
        const path = join(dataDir, NAME, CIFAR10_ARCHIVE);
        await downloadFile(archiveUrl(mirrorUrl), path, { md5: downloadMd5, onStatus: context.status });
        location = { kind: 'archive', path, remedy: dataDirRemedy(path) };
      }
      const started = performance.now();
      const files = location.kind === 'folder' ? folderFiles(location, context) : await archiveFiles(location, context);
      const dataset = await readDataset(files, context);
      context.status(
        `${dataset.train.count} training and ${dataset.test.count} test images checked and converted in ${seconds(started)}`,
      );
      return dataset;
    },
  };
}

export const cifar10: DatasetSource = createCifar10Source();

/** Files under the user's path are the user's: never deleted or replaced by a download. */
const USER_PATH_REMEDY =
  `This comes from the CIFAR-10 path setting (CIFAR10_PATH): put a good copy of the CIFAR-10 binary version ` +
  `there (${CIFAR10_ARCHIVE}, or the ${CIFAR10_FOLDER}/ folder it extracts to), or point CIFAR10_PATH elsewhere; ` +
  `when it is unset, DATA_DIR/${NAME}/ is used.`;

const dataDirRemedy = (what: string): string =>
  `Put a good copy of the CIFAR-10 binary version there, or delete ${what} so that it is downloaded again.`;

async function locateUserPath(userPath: string): Promise<Location> {
  const remedy = USER_PATH_REMEDY;
  let info: Stats;
  try {
    info = await stat(userPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetError(
      code === 'ENOENT'
        ? `The CIFAR-10 path ${userPath} does not exist. Point CIFAR10_PATH at ${CIFAR10_ARCHIVE} or at the ` +
            `extracted ${CIFAR10_FOLDER}/ folder, or unset it to use DATA_DIR/${NAME}/.`
        : `The CIFAR-10 path ${userPath} cannot be read (${errorMessage(err)}). ${remedy}`,
    );
  }
  if (info.isFile()) return { kind: 'archive', path: userPath, remedy };
  if (!info.isDirectory()) {
    throw badFileError(userPath, 'is neither a file nor a folder', remedy);
  }
  const nested = join(userPath, CIFAR10_FOLDER);
  if (await isDirectory(nested)) return { kind: 'folder', dir: nested, remedy };
  const archive = join(userPath, CIFAR10_ARCHIVE);
  if (await isFile(archive)) return { kind: 'archive', path: archive, remedy };
  if (basename(userPath) === CIFAR10_FOLDER || (await someExist(userPath, ALL_FILES))) {
    return { kind: 'folder', dir: userPath, remedy };
  }
  throw badFileError(
    userPath,
    `is a folder without ${CIFAR10_FOLDER}/, ${CIFAR10_ARCHIVE} or the batch files (${ALL_FILES.join(', ')}) in it`,
    remedy,
  );
}

async function locateInDataDir(dataDir: string): Promise<Location | undefined> {
  const folder = join(dataDir, NAME, CIFAR10_FOLDER);
  if (await isDirectory(folder)) {
    return {
      kind: 'folder',
      dir: folder,
      remedy: `Put a good copy of the CIFAR-10 binary version in ${folder}/, or delete that folder so that ${CIFAR10_ARCHIVE} is used or downloaded again.`,
    };
  }
  const archive = join(dataDir, NAME, CIFAR10_ARCHIVE);
  if (await isFile(archive)) return { kind: 'archive', path: archive, remedy: dataDirRemedy('it') };
  return undefined;
}

/** The mirror URL may name the archive itself or a folder that holds it. */
function archiveUrl(mirrorUrl: string): string {
  const trimmed = mirrorUrl.replace(/\/+$/, '');
  let path = trimmed;
  try {
    path = new URL(trimmed).pathname;
  } catch {
    // Not a URL: fetch() will say so, naming it.
  }
  return /\.(tar\.gz|tgz|tar)$/i.test(path) ? trimmed : `${trimmed}/${CIFAR10_ARCHIVE}`;
}

function folderFiles(location: { dir: string; remedy: string }, context: LoadContext): BatchFiles {
  const { dir, remedy } = location;
  context.status(`reading ${dir}/`);
  // One buffer for all six batch files: only one raw batch is held at a time, and it is read once.
  let scratch: Uint8Array | undefined;
  return {
    remedy,
    describe: (name) => join(dir, name),
    async size(name) {
      try {
        const info = await stat(join(dir, name));
        return info.isFile() ? info.size : undefined;
      } catch {
        return undefined;
      }
    },
    async read(name) {
      const path = join(dir, name);
      try {
        if (name === META_FILE) return await readFile(path);
        const handle = await open(path, 'r');
        try {
          const { size } = await handle.stat();
          if (scratch === undefined || scratch.length < size) scratch = new Uint8Array(size);
          let filled = 0;
          while (filled < size) {
            const { bytesRead } = await handle.read(scratch, filled, size - filled, filled);
            if (bytesRead === 0) break;
            filled += bytesRead;
          }
          return scratch.subarray(0, filled);
        } finally {
          await handle.close();
        }
      } catch (err) {
        throw badFileError(path, `cannot be read (${errorMessage(err)})`, remedy);
      }
    },
  };
}

async function archiveFiles(location: { path: string; remedy: string }, context: LoadContext): Promise<BatchFiles> {
  const { path, remedy } = location;
  const entries = await readArchive(path, remedy, context);
  const entry = (name: string): Uint8Array | undefined => entries.get(`${CIFAR10_FOLDER}/${name}`);
  return {
    remedy,
    describe: (name) => `${CIFAR10_FOLDER}/${name} in ${path}`,
    size: (name) => Promise.resolve(entry(name)?.length),
    read(name) {
      const bytes = entry(name);
      if (bytes === undefined)
        return Promise.reject(badFileError(`${CIFAR10_FOLDER}/${name} in ${path}`, 'is missing', remedy));
      return Promise.resolve(bytes);
    },
  };
}

/** Reads, decompresses (off the main thread) and indexes the archive; the compressed bytes are dropped on return. */
async function readArchive(path: string, remedy: string, context: LoadContext): Promise<Map<string, Uint8Array>> {
  let started = performance.now();
  let compressed: Uint8Array;
  try {
    compressed = await readFile(path);
  } catch (err) {
    throw badFileError(path, `cannot be read (${errorMessage(err)})`, remedy);
  }
  context.status(`read ${path} (${formatMB(compressed.length)}) in ${seconds(started)}`);
  started = performance.now();
  const tar = await gunzipIfNeeded(compressed, path, remedy);
  if (tar !== compressed) context.status(`decompressed it into ${formatMB(tar.length)} in ${seconds(started)}`);
  return readTar(tar, { file: path, remedy });
}

async function readDataset(files: BatchFiles, context: LoadContext): Promise<Dataset> {
  const batchBytes = context.recordsPerBatch * RECORD_BYTES;
  // Structure before content: a missing or short file is reported before any conversion work.
  for (const name of ALL_FILES) {
    const size = await files.size(name);
    if (size === undefined) throw badFileError(files.describe(name), 'is missing', files.remedy);
    if (name !== META_FILE && size !== batchBytes) {
      throw badFileError(
        files.describe(name),
        `${size < batchBytes ? 'is truncated' : 'is too long'}: ${size} bytes, ${batchBytes} expected ` +
          `(${context.recordsPerBatch} records of ${RECORD_BYTES} bytes)`,
        files.remedy,
      );
    }
  }
  const classNames = parseClassNames(await files.read(META_FILE), files.describe(META_FILE), files.remedy);
  const train = await readSplit(TRAIN_FILES, files, context);
  const test = await readSplit(TEST_FILES, files, context);
  return { name: NAME, shape: SHAPE, classNames, imageKind: IMAGE_KIND, train, test };
}

function parseClassNames(bytes: Uint8Array, file: string, remedy: string): string[] {
  const names = new TextDecoder()
    .decode(bytes)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  if (names.length !== CLASS_NAMES.length) {
    throw badFileError(
      file,
      `lists ${names.length} class names, ${CLASS_NAMES.length} expected (one per line, e.g. ${CLASS_NAMES.join(', ')})`,
      remedy,
    );
  }
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) throw badFileError(file, `lists the class name "${duplicate}" twice`, remedy);
  return names;
}

/** Converts the split's batch files, one at a time, into one HWC byte array and its labels. */
async function readSplit(names: readonly string[], files: BatchFiles, context: LoadContext): Promise<ImageSplit> {
  const { recordsPerBatch } = context;
  const count = names.length * recordsPerBatch;
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (const [i, name] of names.entries()) {
    const bytes = await files.read(name);
    if (bytes.length !== recordsPerBatch * RECORD_BYTES) {
      // Checked before, unless the file changed since.
      throw badFileError(files.describe(name), `changed while being read: ${bytes.length} bytes`, files.remedy);
    }
    const badRecord = decodeRecords(
      bytes,
      recordsPerBatch,
      SHAPE,
      CLASS_NAMES.length,
      images,
      labels,
      i * recordsPerBatch,
    );
    if (badRecord !== -1) {
      throw badFileError(
        files.describe(name),
        `has label ${bytes[badRecord * RECORD_BYTES]} in record ${badRecord} (counting from 0), ` +
          `outside 0..${CLASS_NAMES.length - 1}`,
        files.remedy,
      );
    }
  }
  context.status(`${names.join(', ')}: ${count} images`);
  return { images, labels, count };
}

async function someExist(dir: string, names: readonly string[]): Promise<boolean> {
  for (const name of names) if (await isFile(join(dir, name))) return true;
  return false;
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

function formatMB(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(0)} MB`;
}
