import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { constants, gzipSync } from 'node:zlib';
import { cifar10, createCifar10Source } from '../../src/datasets/cifar10.ts';
import { DatasetError, type Dataset, type ImageSplit } from '../../src/datasets/dataset.ts';
import { readTar } from '../../src/archives/tar.ts';
import { serveFiles, testScratch } from '../support/scratch.ts';

/** The format wants 10 000 records a batch; the fixtures use 20 through the test-only option. */
const RECORDS = 20;
const RECORD_BYTES = 3073;
const BATCH_BYTES = RECORDS * RECORD_BYTES;
const TRAIN_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
];
const BATCH_FILES = [...TRAIN_FILES, 'test_batch.bin'];
const FOLDER = 'cifar-10-batches-bin';
const ARCHIVE = 'cifar-10-binary.tar.gz';
const OFFICIAL_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
/** Not the official names, so that a test can tell they were read from batches.meta.txt. */
const FIXTURE_NAMES = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'boat', 'lorry'];
// fetch() refuses port 1 outright ("bad port"): a load that should not download fails at once.
const NO_MIRROR = 'http://127.0.0.1:1/cifar';
const REAL_ARCHIVE = resolve(import.meta.dirname, '../../../shared/datasets/cifar10/cifar-10-binary.tar.gz');

const source = createCifar10Source({ recordsPerBatch: RECORDS });

const { tempDir, startMirror } = testScratch('cifar10-test');

// ---- Fixtures in the real binary format ------------------------------------------------------

/**
 * One batch file: labels and pseudo-random pixels that differ per file and record. In
 * data_batch_1.bin, record 0 is a solid colour (R 10, G 20, B 30) and record 1 a pattern that
 * pins row-major order and the channel planes: R = row, G = column, B = (row·32 + column) mod 256.
 */
function makeBatch(fileIndex: number): Buffer {
  const batch = Buffer.alloc(BATCH_BYTES);
  let seed = 12_345 + fileIndex * 1_000_003;
  for (let r = 0; r < RECORDS; r++) {
    const record = r * RECORD_BYTES;
    batch[record] = (fileIndex * 7 + r * 3) % 10;
    for (let i = 1; i < RECORD_BYTES; i++) {
      seed = (seed * 1_103_515_245 + 12_345) >>> 0;
      batch[record + i] = seed >>> 24;
    }
  }
  if (fileIndex === 0) {
    batch
      .fill(10, 1, 1 + 1024)
      .fill(20, 1 + 1024, 1 + 2048)
      .fill(30, 1 + 2048, RECORD_BYTES);
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        const p = RECORD_BYTES + 1 + y * 32 + x;
        batch[p] = y;
        batch[p + 1024] = x;
        batch[p + 2048] = (y * 32 + x) & 255;
      }
    }
  }
  return batch;
}

const BATCHES = new Map(BATCH_FILES.map((name, i) => [name, makeBatch(i)]));
// Trailing blank lines, as in the official file.
const META = Buffer.from(`${FIXTURE_NAMES.join('\n')}\n\n`);

function fixtureFiles(): Map<string, Buffer> {
  return new Map([...BATCHES, ['batches.meta.txt', META]]);
}

/** The expected split, computed pixel by pixel from the planar records (independently of the loader). */
function expectedSplit(names: readonly string[]): ImageSplit {
  const count = names.length * RECORDS;
  const images = new Uint8Array(count * 3072);
  const labels = new Uint8Array(count);
  names.forEach((name, f) => {
    const batch = BATCHES.get(name) as Buffer;
    for (let r = 0; r < RECORDS; r++) {
      const n = f * RECORDS + r;
      labels[n] = batch[r * RECORD_BYTES] as number;
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          for (let c = 0; c < 3; c++) {
            images[n * 3072 + (y * 32 + x) * 3 + c] = batch[r * RECORD_BYTES + 1 + c * 1024 + y * 32 + x] as number;
          }
        }
      }
    }
  });
  return { images, labels, count };
}

const EXPECTED_TRAIN = expectedSplit(TRAIN_FILES);
const EXPECTED_TEST = expectedSplit(['test_batch.bin']);

function assertIsFixture(dataset: Dataset): void {
  assert.equal(dataset.name, 'cifar10');
  assert.deepEqual(dataset.shape, { height: 32, width: 32, channels: 3 });
  assert.deepEqual(dataset.classNames, FIXTURE_NAMES);
  for (const split of [dataset.train, dataset.test]) {
    // Plain Uint8Arrays of their own, not Buffers or views on a file.
    assert.equal(Object.getPrototypeOf(split.images), Uint8Array.prototype);
    assert.equal(split.images.byteLength, split.images.buffer.byteLength);
  }
  assert.deepEqual(dataset.train, EXPECTED_TRAIN);
  assert.deepEqual(dataset.test, EXPECTED_TEST);

  // Hand-checked records of data_batch_1.bin.
  const { images, labels } = dataset.train;
  assert.equal(labels[0], 0);
  assert.equal(labels[1], 3);
  for (let p = 0; p < 1024; p++) assert.deepEqual([...images.subarray(p * 3, p * 3 + 3)], [10, 20, 30]);
  const pixel = (y: number, x: number): number[] => {
    const at = 3072 + (y * 32 + x) * 3;
    return [...images.subarray(at, at + 3)];
  };
  assert.deepEqual(pixel(0, 0), [0, 0, 0]);
  assert.deepEqual(pixel(0, 1), [0, 1, 1]);
  assert.deepEqual(pixel(1, 0), [1, 0, 32]);
  assert.deepEqual(pixel(7, 31), [7, 31, 255]);
  assert.deepEqual(pixel(31, 30), [31, 30, 254]);
}

// ---- A tiny tar writer ---------------------------------------------------------------------

interface TarEntry {
  readonly name: string;
  readonly data?: Uint8Array;
  /** Typeflag: '0' (file, the default), '5' (folder), '2' (symlink), 'L', 'x'… */
  readonly type?: string;
  /** ustar's path prefix; with `gnu`, the GNU magic and no prefix. */
  readonly prefix?: string;
  readonly gnu?: boolean;
}

function tarHeader(entry: TarEntry, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(entry.name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('15100000000\0', 136);
  header.write(entry.type ?? '0', 156);
  if (entry.gnu === true) {
    header.write('ustar  \0', 257);
  } else {
    header.write('ustar\0', 257);
    header.write('00', 263);
    header.write(entry.prefix ?? '', 345);
  }
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

function makeTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.data ?? new Uint8Array(0);
    parts.push(tarHeader(entry, data.length), Buffer.from(data), Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** The layout of the official archive: a folder entry, then its files in no particular order. */
function cifarTar(files: ReadonlyMap<string, Uint8Array> = fixtureFiles()): Buffer {
  return makeTar([
    { name: `${FOLDER}/`, type: '5' },
    ...[...files].reverse().map(([name, data]) => ({ name: `${FOLDER}/${name}`, data })),
  ]);
}

const gzip = (bytes: Uint8Array): Buffer => gzipSync(bytes, { level: constants.Z_BEST_SPEED });
const md5 = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');

async function writeFolder(dir: string, files: ReadonlyMap<string, Uint8Array> = fixtureFiles()): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, data] of files) await writeFile(join(dir, name), data);
  return dir;
}

async function writeArchive(path: string, files?: ReadonlyMap<string, Uint8Array>): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, gzip(cifarTar(files)));
  return path;
}

function withFile(name: string, data: Uint8Array | undefined): Map<string, Uint8Array> {
  const files: Map<string, Uint8Array> = fixtureFiles();
  if (data === undefined) files.delete(name);
  else files.set(name, data);
  return files;
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

// ---- Tests -----------------------------------------------------------------------------------

describe('cifar10 data set', () => {
  test('declares the official facts', () => {
    assert.equal(cifar10.name, 'cifar10');
    assert.deepEqual(cifar10.shape, { height: 32, width: 32, channels: 3 });
    assert.deepEqual(cifar10.classNames, OFFICIAL_NAMES);
    assert.equal(cifar10.trainSize, 50_000);
    assert.equal(cifar10.testSize, 10_000);
    assert.equal(cifar10.augmentByDefault, true);
    assert.equal(source.trainSize, 5 * RECORDS);
    assert.equal(source.testSize, RECORDS);
  });

  test('loads the same HWC images from a folder or an archive, via DATA_DIR or the user path', async () => {
    const root = await tempDir();
    const emptyDataDir = join(root, 'empty');
    const folderDataDir = join(root, 'folder-data');
    const archiveDataDir = join(root, 'archive-data');
    await writeFolder(join(folderDataDir, 'cifar10', FOLDER));
    await writeArchive(join(archiveDataDir, 'cifar10', ARCHIVE));
    const renamedArchive = await writeArchive(join(root, 'user', 'my-copy.tgz'));
    const plainTar = join(root, 'user', 'plain.tar');
    await writeFile(plainTar, cifarTar());
    const holdsArchive = join(root, 'holds-archive');
    await writeArchive(join(holdsArchive, ARCHIVE));
    const holdsFolder = join(root, 'holds-folder');
    const batchesFolder = await writeFolder(join(holdsFolder, FOLDER));
    const otherName = await writeFolder(join(root, 'extracted-elsewhere'));

    assert.equal(await source.isAvailableLocally({ dataDir: emptyDataDir }), false);
    assert.equal(await source.isAvailableLocally({ dataDir: folderDataDir }), true);
    assert.equal(await source.isAvailableLocally({ dataDir: archiveDataDir }), true);

    const cases: [string, { dataDir: string; userPath?: string }][] = [
      ['DATA_DIR folder', { dataDir: folderDataDir }],
      ['DATA_DIR archive', { dataDir: archiveDataDir }],
      ['user archive', { dataDir: emptyDataDir, userPath: renamedArchive }],
      ['user plain tar', { dataDir: emptyDataDir, userPath: plainTar }],
      ['user folder holding the archive', { dataDir: emptyDataDir, userPath: holdsArchive }],
      ['user folder holding cifar-10-batches-bin/', { dataDir: emptyDataDir, userPath: holdsFolder }],
      ['user cifar-10-batches-bin/ itself', { dataDir: emptyDataDir, userPath: batchesFolder }],
      ['user folder of batch files under another name', { dataDir: emptyDataDir, userPath: otherName }],
      // The user path comes first: DATA_DIR's copy is not looked at.
      ['user path before DATA_DIR', { dataDir: folderDataDir, userPath: renamedArchive }],
    ];
    for (const [what, options] of cases) {
      const lines: string[] = [];
      const dataset = await source.load({ ...options, mirrorUrl: NO_MIRROR, onStatus: (line) => lines.push(line) });
      assert.doesNotThrow(() => assertIsFixture(dataset), what);
      assert.ok(
        lines.length > 0 && lines.every((line) => line.startsWith('cifar10: ')),
        `${what}: ${lines.join(' | ')}`,
      );
      assert.ok(
        lines.some((line) => /images checked and converted in/.test(line)),
        `${what}: ${lines.join(' | ')}`,
      );
    }
    assert.deepEqual(await readdir(emptyDataDir).catch(() => []), []);
  });

  test('a truncated batch file is a DatasetError naming the file, its size and the fix', async () => {
    const root = await tempDir();
    const short = (BATCHES.get('data_batch_3.bin') as Buffer).subarray(0, BATCH_BYTES - 100);

    const folder = await writeFolder(join(root, 'data', 'cifar10', FOLDER), withFile('data_batch_3.bin', short));
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), mirrorUrl: NO_MIRROR }),
      join(folder, 'data_batch_3.bin'),
      `is truncated: ${BATCH_BYTES - 100} bytes, ${BATCH_BYTES} expected`,
      /Put a good copy of the CIFAR-10 binary version/,
      /delete that folder/,
    );

    const archive = await writeArchive(join(root, 'user', ARCHIVE), withFile('data_batch_3.bin', short));
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), userPath: archive, mirrorUrl: NO_MIRROR }),
      `${FOLDER}/data_batch_3.bin in ${archive} is truncated`,
      /CIFAR10_PATH/,
    );

    // The real format's size: a fixture-sized file is short by 9 950 records.
    const official = await expectDatasetError(
      cifar10.load({ dataDir: join(root, 'none'), userPath: folder, mirrorUrl: NO_MIRROR }),
    );
    assert.match(official, new RegExp(`data_batch_1\\.bin is truncated: ${BATCH_BYTES} bytes, 30730000 expected`));
  });

  test('a label outside 0..9 is a DatasetError naming the file and the record', async () => {
    const root = await tempDir();
    const bad = Buffer.from(BATCHES.get('test_batch.bin') as Buffer);
    bad[17 * RECORD_BYTES] = 12;
    const folder = await writeFolder(join(root, FOLDER), withFile('test_batch.bin', bad));
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), userPath: folder, mirrorUrl: NO_MIRROR }),
      join(folder, 'test_batch.bin'),
      /has label 12 in record 17 \(counting from 0\), outside 0\.\.9/,
    );
  });

  test('a missing batch file is a DatasetError naming it, in a folder or an archive', async () => {
    const root = await tempDir();
    const folder = await writeFolder(join(root, 'data', 'cifar10', FOLDER), withFile('data_batch_4.bin', undefined));
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), mirrorUrl: NO_MIRROR }),
      `${join(folder, 'data_batch_4.bin')} is missing`,
    );
    const archive = await writeArchive(join(root, 'a.tar.gz'), withFile('test_batch.bin', undefined));
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), userPath: archive, mirrorUrl: NO_MIRROR }),
      `${FOLDER}/test_batch.bin in ${archive} is missing`,
    );
  });

  test('bad class names in batches.meta.txt are a DatasetError naming the file', async () => {
    const root = await tempDir();
    const nine = await writeFolder(
      join(root, 'nine'),
      withFile('batches.meta.txt', Buffer.from(FIXTURE_NAMES.slice(1).join('\n'))),
    );
    await expectDatasetError(
      source.load({ dataDir: root, userPath: nine, mirrorUrl: NO_MIRROR }),
      join(nine, 'batches.meta.txt'),
      /lists 9 class names, 10 expected/,
    );
    const twice = await writeFolder(
      join(root, 'twice'),
      withFile('batches.meta.txt', Buffer.from([...FIXTURE_NAMES.slice(1), 'cat'].join('\r\n'))),
    );
    await expectDatasetError(source.load({ dataDir: root, userPath: twice, mirrorUrl: NO_MIRROR }), /"cat" twice/);
  });

  test('a user path that does not exist or holds no CIFAR-10 is an error, not a fallback to DATA_DIR', async () => {
    const root = await tempDir();
    await writeFolder(join(root, 'data', 'cifar10', FOLDER));
    const missing = join(root, 'no-such-file.tar.gz');
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), userPath: missing, mirrorUrl: NO_MIRROR }),
      `The CIFAR-10 path ${missing} does not exist`,
      /CIFAR10_PATH/,
    );
    const unrelated = join(root, 'unrelated');
    await mkdir(unrelated);
    await writeFile(join(unrelated, 'notes.txt'), 'hello');
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), userPath: unrelated, mirrorUrl: NO_MIRROR }),
      `${unrelated} is a folder without ${FOLDER}/, ${ARCHIVE}`,
    );
    const notArchive = join(unrelated, 'notes.txt');
    await expectDatasetError(
      source.load({ dataDir: join(root, 'data'), userPath: notArchive, mirrorUrl: NO_MIRROR }),
      `${notArchive} is too short (5 bytes) to be a tar archive`,
    );
  });

  test('a truncated or corrupt archive is a DatasetError naming it', async () => {
    const root = await tempDir();
    const tarBytes = cifarTar();
    const gz = gzip(tarBytes);
    const cutGzip = join(root, 'cut.tar.gz');
    await writeFile(cutGzip, gz.subarray(0, gz.length - 1000));
    await expectDatasetError(
      source.load({ dataDir: root, userPath: cutGzip, mirrorUrl: NO_MIRROR }),
      `${cutGzip} is not a valid gzip file`,
      /truncated/,
    );
    // A tar cut inside an entry, and one cut at a block boundary (no end-of-archive marker).
    const cutTar = join(root, 'cut.tar');
    await writeFile(cutTar, tarBytes.subarray(0, 512 * 40 + 100));
    await expectDatasetError(
      source.load({ dataDir: root, userPath: cutTar, mirrorUrl: NO_MIRROR }),
      `${cutTar} is truncated`,
    );
    await writeFile(cutTar, tarBytes.subarray(0, tarBytes.length - 1024));
    await expectDatasetError(
      source.load({ dataDir: root, userPath: cutTar, mirrorUrl: NO_MIRROR }),
      `${cutTar} is truncated`,
      /end-of-archive marker/,
    );
    const flipped = Buffer.from(tarBytes);
    flipped[512 + 5] = 0x41; // inside the second header's name
    await writeFile(cutTar, flipped);
    await expectDatasetError(source.load({ dataDir: root, userPath: cutTar, mirrorUrl: NO_MIRROR }), /wrong checksum/);
  });

  test('downloads the archive into DATA_DIR/cifar10/, verified, and only once', async () => {
    const archive = gzip(cifarTar());
    const mirror = await startMirror(serveFiles(new Map([['/kriz/cifar-10-binary.tar.gz', archive]])));
    const downloading = createCifar10Source({ recordsPerBatch: RECORDS, downloadMd5: md5(archive) });
    const dataDir = await tempDir();
    const lines: string[] = [];

    // A mirror's folder URL: the archive's name is appended.
    assertIsFixture(
      await downloading.load({ dataDir, mirrorUrl: `${mirror.url}/kriz/`, onStatus: (line) => lines.push(line) }),
    );
    assert.deepEqual(mirror.requests, ['/kriz/cifar-10-binary.tar.gz']);
    assert.deepEqual(await readdir(join(dataDir, 'cifar10')), [ARCHIVE]);
    assert.ok(lines.includes(`cifar10: downloading ${mirror.url}/kriz/cifar-10-binary.tar.gz`), lines.join(' | '));
    assert.ok(
      lines.some((line) => line.includes('MD5 verified')),
      lines.join(' | '),
    );
    assert.equal(await downloading.isAvailableLocally({ dataDir: dataDir }), true);

    assertIsFixture(await downloading.load({ dataDir, mirrorUrl: NO_MIRROR }));
    assert.equal(mirror.requests.length, 1);

    // The archive's own URL works as well.
    const second = await tempDir();
    assertIsFixture(
      await downloading.load({ dataDir: second, mirrorUrl: `${mirror.url}/kriz/cifar-10-binary.tar.gz` }),
    );
    assert.equal(mirror.requests.length, 2);
  });

  test('a download that fails its checksum is a DatasetError and leaves no file behind', async () => {
    const good = gzip(cifarTar());
    const bad = Buffer.from(good);
    bad[1000] = (bad[1000] as number) ^ 0xff;
    const mirror = await startMirror(serveFiles(new Map([['/cifar-10-binary.tar.gz', bad]])));
    const dataDir = await tempDir();

    await expectDatasetError(
      createCifar10Source({ recordsPerBatch: RECORDS, downloadMd5: md5(good) }).load({
        dataDir,
        mirrorUrl: mirror.url,
      }),
      /Checksum mismatch/,
      `${mirror.url}/cifar-10-binary.tar.gz`,
      md5(good),
      md5(bad),
      `put it in ${join(dataDir, 'cifar10')}/ as ${ARCHIVE}`,
    );
    assert.deepEqual(await readdir(join(dataDir, 'cifar10')), []);

    // By default the official checksum applies, which no rebuilt archive matches.
    const served = await startMirror(serveFiles(new Map([['/cifar-10-binary.tar.gz', good]])));
    await expectDatasetError(
      cifar10.load({ dataDir, mirrorUrl: served.url }),
      /Checksum mismatch/,
      'c32a1d4ab5d03f1284b67883e8d87530',
    );
    assert.deepEqual(await readdir(join(dataDir, 'cifar10')), []);
    assert.equal(await cifar10.isAvailableLocally({ dataDir: dataDir }), false);
  });

  test('the real archive in shared/datasets loads through the user path', async () => {
    assert.ok(
      existsSync(REAL_ARCHIVE),
      `The CIFAR-10 archive was expected at ${REAL_ARCHIVE} (shared/datasets/ beside the project's clone).`,
    );
    const lines: string[] = [];
    const dataset = await cifar10.load({
      dataDir: await tempDir(),
      userPath: REAL_ARCHIVE,
      mirrorUrl: NO_MIRROR,
      onStatus: (line) => lines.push(line),
    });
    assert.deepEqual(dataset.classNames, OFFICIAL_NAMES);
    assert.equal(dataset.train.count, 50_000);
    assert.equal(dataset.test.count, 10_000);
    assert.equal(dataset.train.images.length, 50_000 * 3072);
    assert.equal(dataset.test.images.length, 10_000 * 3072);
    for (const [split, perClass] of [
      [dataset.train, 5_000],
      [dataset.test, 1_000],
    ] as const) {
      const counts = new Array<number>(10).fill(0);
      for (const label of split.labels) counts[label] = (counts[label] ?? 0) + 1;
      assert.deepEqual(counts, new Array<number>(10).fill(perClass));
    }
    // CIFAR-10's per-channel means are about R 125.3, G 123.0, B 113.9: these only come out per
    // channel when the planes were really interleaved into RGB triples.
    let red = 0;
    let green = 0;
    let blue = 0;
    const { images } = dataset.train;
    for (let i = 0; i < images.length; i += 3) {
      red += images[i] as number;
      green += images[i + 1] as number;
      blue += images[i + 2] as number;
    }
    const means = [red, green, blue].map((sum) => sum / (50_000 * 1024));
    [125.3, 123.0, 113.9].forEach((official, c) => {
      assert.ok(
        Math.abs((means[c] as number) - official) < 5,
        `channel ${c} mean ${means[c]}, about ${official} expected`,
      );
    });
    assert.ok(
      lines.some((line) => line.startsWith(`cifar10: read ${REAL_ARCHIVE}`)),
      lines.join(' | '),
    );
  });
});

describe('tar reader', () => {
  const data = (text: string): Uint8Array => new TextEncoder().encode(text);
  const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

  test('reads regular files as views, with ustar prefixes, GNU long names and pax paths; skips the rest', () => {
    const longName = `${'deep/'.repeat(30)}file.txt`;
    const tar = makeTar([
      { name: './a.txt', data: data('alpha') },
      { name: 'dir/', type: '5' },
      { name: 'link', type: '2' },
      { name: 'b.bin', prefix: 'some/prefix', data: data('x'.repeat(700)) },
      { name: '././@LongLink', type: 'L', gnu: true, data: data(`${longName}\0`) },
      { name: longName.slice(0, 100), gnu: true, data: data('long') },
      { name: 'PaxHeaders/c', type: 'x', data: data('26 path=pax/c-renamed.txt\n') },
      { name: 'c-truncated', data: data('pax') },
      { name: 'empty', data: new Uint8Array(0) },
    ]);
    const entries = readTar(tar, { file: 'test.tar' });
    assert.deepEqual([...entries.keys()], ['a.txt', 'some/prefix/b.bin', longName, 'pax/c-renamed.txt', 'empty']);
    assert.equal(text(entries.get('a.txt')), 'alpha');
    assert.equal(entries.get('some/prefix/b.bin')?.length, 700);
    assert.equal(text(entries.get(longName)), 'long');
    assert.equal(text(entries.get('pax/c-renamed.txt')), 'pax');
    const a = entries.get('a.txt') as Uint8Array;
    assert.equal(a.buffer, tar.buffer);
    assert.equal(a.byteOffset, tar.byteOffset + 512);
    assert.equal(Object.getPrototypeOf(a), Uint8Array.prototype);
  });

  test('a truncated or corrupt archive is a DatasetError naming the file', () => {
    const tar = makeTar([{ name: 'a.bin', data: new Uint8Array(2000) }]);
    const read = (bytes: Uint8Array) => () => readTar(bytes, { file: 'x.tar', remedy: 'Fix it.' });
    assert.throws(read(tar.subarray(0, 1000)), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.match(
        err.message,
        /^x\.tar is truncated: its entry a\.bin needs 2000 bytes from byte 512, but the archive ends after 1000\. Fix it\.$/,
      );
      return true;
    });
    assert.throws(
      read(tar.subarray(0, 512 * 5)),
      /x\.tar is truncated: it ends after 2560 bytes without the end-of-archive marker/,
    );
    assert.throws(read(tar.subarray(0, 512 * 5 + 10)), /x\.tar is truncated: it ends inside a tar header/);
    assert.throws(read(new Uint8Array(0)), /x\.tar is too short \(0 bytes\) to be a tar archive/);
    assert.throws(read(Buffer.alloc(1024, 7)), /x\.tar is not a tar archive/);
  });
});
