import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import sharp from 'sharp';
import { archiveFormatOf, archiveFormatOfFile, ArchiveError } from '../../src/archives/archive.ts';
import type { DatasetProgress, DatasetReport } from '../../src/contract/datasets.ts';
import { datasetUploadOptions } from '../../src/contract/datasets.ts';
import type { ImageKind } from '../../src/contract/names.ts';
import type { Dataset } from '../../src/datasets/dataset.ts';
import { cifar10 } from '../../src/datasets/cifar10.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { prepareUpload } from '../../src/images/prepare-image.ts';
import { cifarPathForTests } from '../support/cifar10-source.ts';
import { buildUploadedDataset, DatasetBuildError, type BuildLimits } from '../../src/datasets/uploaded/build.ts';
import { loadUploadedDataset } from '../../src/datasets/uploaded/stored.ts';
import { imageFolderEntries, tarArchive, tarGzArchive, zipOf } from '../support/archives.ts';

const limits: BuildLimits = {
  maxEntries: 1000,
  maxUnpackedBytes: 20 * 1024 * 1024,
  maxFileBytes: 1024 * 1024,
  maxImagePixels: 1_000_000,
};
const digitName = (label: number) => `digit-${label}`;

let folder: string;
let digits: Dataset['test'];
let sequence = 0;

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'uploaded-dataset-test-'));
  digits = (await mnist.load({ dataDir: path.join(folder, 'mnist') })).test;
});
after(async () => rm(folder, { recursive: true, force: true }));

/** Builds a data set from the archive's bytes; its id, report and progress reports. */
async function build(
  archive: Buffer,
  options: Record<string, unknown> = {},
  buildLimits: BuildLimits = limits,
): Promise<{ id: string; report: DatasetReport; progress: DatasetProgress[] }> {
  const id = `set-${++sequence}`;
  const file = path.join(folder, `${id}.archive`);
  await writeFile(file, archive);
  const format = await archiveFormatOfFile(file);
  assert.ok(format, 'a recognised archive');
  const progress: DatasetProgress[] = [];
  const report = await buildUploadedDataset({
    archive: file,
    format,
    id,
    name: id,
    options: datasetUploadOptions.parse(options),
    root: path.join(folder, 'sets'),
    limits: buildLimits,
    onProgress: async (step) => void progress.push(step),
  });
  return { id, report, progress };
}

async function digitEntries(classes: readonly number[], perClass: number, prefix = '', from = 0) {
  return imageFolderEntries(digits, mnist.shape, { classes, perClass, className: digitName, prefix, from });
}

/** Asserts that the data set `id` holds `entry`'s image as predict prepares an upload as `kind` for its shape. */
async function assertStoredAsPredictPrepares(
  id: string,
  entry: { data: Buffer; name: string } | undefined,
  kind: ImageKind,
): Promise<void> {
  assert.ok(entry);
  const dataset = await loadUploadedDataset(path.join(folder, 'sets'), id);
  const expected = Buffer.from(
    (await prepareUpload(entry.data, dataset.shape, limits.maxImagePixels, entry.name, kind)).pixels,
  );
  const size = dataset.shape.height * dataset.shape.width * dataset.shape.channels;
  const stored = [dataset.train, dataset.test].flatMap((split) =>
    Array.from({ length: split.count }, (_, i) => Buffer.from(split.images.subarray(i * size, (i + 1) * size))),
  );
  assert.ok(
    stored.some((pixels) => pixels.equals(expected)),
    `the stored image is what predict makes of the upload as ${kind}`,
  );
}

async function assertRefused(
  archive: Buffer,
  message: RegExp,
  options: Record<string, unknown> = {},
  buildLimits: BuildLimits = limits,
): Promise<void> {
  await assert.rejects(build(archive, options, buildLimits), (error: unknown) => {
    assert.ok(
      error instanceof ArchiveError || error instanceof DatasetBuildError,
      `a reason for the user, got ${String(error)}`,
    );
    assert.match(error.message, message);
    return true;
  });
}

describe('an archive of class folders becomes a data set', () => {
  test('a zip of real MNIST digits: classes sorted, stratified held-out test split, the images exactly as predict would prepare them', async () => {
    const entries = await digitEntries([3, 1, 7], 20);
    // As photographs, predict's preparation leaves a 28×28 image as it is.
    const options = { testFraction: 0.25, seed: 5, imageKind: 'natural' };
    const { id, report } = await build(await zipOf(entries), options);
    assert.equal(report.imageKind, 'natural');
    assert.equal(report.imageKindSource, 'given');
    assert.deepEqual(report.classNames, ['digit-1', 'digit-3', 'digit-7']);
    assert.deepEqual(report.shape, { height: 28, width: 28, channels: 1 }, 'size and grey from the images');
    assert.equal(report.testSplit, 'heldOut');
    assert.deepEqual(report.splits.train.perClass, [15, 15, 15]);
    assert.deepEqual(report.splits.test.perClass, [5, 5, 5]);
    assert.equal(report.splits.val, null);
    assert.equal(report.skipped.count, 0);
    assert.equal(report.bytes, 60 * (1 + 28 * 28));

    const dataset = await loadUploadedDataset(path.join(folder, 'sets'), id);
    assert.equal(dataset.train.count + dataset.test.count, 60);
    // PNG is lossless and the images are MNIST's size: every stored image is one of the digits, with its folder's label.
    const byPixels = new Map(entries.map((entry) => [digitKey(entry.name), entry.label]));
    for (const split of [dataset.train, dataset.test]) {
      for (let i = 0; i < split.count; i++) {
        const label = byPixels.get(Buffer.from(split.images.subarray(i * 784, (i + 1) * 784)).toString('base64'));
        assert.notEqual(label, undefined, `image ${i} is one of the uploaded digits`);
        assert.equal(dataset.classNames[split.labels[i] as number], digitName(label as number));
      }
    }
    const again = await build(await zipOf(entries), options);
    const reloaded = await loadUploadedDataset(path.join(folder, 'sets'), again.id);
    assert.deepEqual(reloaded.test.images, dataset.test.images, 'the same seed holds out the same images');
  });

  test('train/ and test/ folders inside a wrapping folder, as a tar.gz; val/ kept apart; colour and size as asked', async () => {
    const entries = [
      ...(await digitEntries([0, 1], 8, 'my-digits/train/')),
      ...(await digitEntries([0, 1], 3, 'my-digits/test/', 5000)),
      ...(await digitEntries([0, 1], 2, 'my-digits/val/', 8000)),
    ];
    const { report } = await build(tarGzArchive([{ name: 'my-digits/', type: 'directory' }, ...entries]), {
      imageSize: '32',
      colour: 'rgb',
    });
    assert.deepEqual(report.classNames, ['digit-0', 'digit-1']);
    assert.equal(report.testSplit, 'folder');
    assert.deepEqual(report.shape, { height: 32, width: 32, channels: 3 });
    assert.deepEqual([report.splits.train.images, report.splits.test.images, report.splits.val?.images], [16, 6, 4]);
  });

  test('CIFAR-10 test photos as JPEG: colour and 32×32 from the images, natural kind, each image as predict prepares it', async () => {
    const source = await cifarPathForTests(path.join(folder, 'cifar'));
    const photos = (await cifar10.load({ dataDir: path.join(folder, 'cifar-data'), userPath: source.path })).test;
    const entries = await imageFolderEntries(photos, cifar10.shape, {
      classes: [0, 3, 8],
      perClass: 10,
      className: (label) => cifar10.classNames[label] as string,
      format: 'jpeg',
    });
    const { id, report } = await build(await zipOf(entries));
    assert.deepEqual(report.classNames, ['airplane', 'cat', 'ship']);
    assert.deepEqual(report.shape, { height: 32, width: 32, channels: 3 });
    assert.equal(report.imageKind, 'natural');
    assert.equal(report.imageKindSource, 'guessed');
    await assertStoredAsPredictPrepares(id, entries[0], 'natural');
  });

  test('without an imageKind, scanned digits are guessed strokes and prepared as such; the option overrides the guess', async () => {
    const entries = await digitEntries([2, 5, 9], 12);
    const archive = await zipOf(entries);
    const guessed = await build(archive);
    assert.equal(guessed.report.imageKind, 'strokes');
    assert.equal(guessed.report.imageKindSource, 'guessed');
    const dataset = await loadUploadedDataset(path.join(folder, 'sets'), guessed.id);
    assert.equal(dataset.imageKind, 'strokes', 'training and predict take the guess');
    await assertStoredAsPredictPrepares(guessed.id, entries[0], 'strokes');

    const given = await build(archive, { imageKind: 'natural' });
    assert.equal(given.report.imageKind, 'natural');
    assert.equal(given.report.imageKindSource, 'given');
  });

  test('non-image files, hidden files, files outside class folders, links, tiny and huge images are skipped and reported; odd Unicode names are one class', async () => {
    const [a, b] = await digitEntries([4], 2);
    const tiny = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    const huge = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    const decomposed = 'cafe\u0301';
    const composed = 'caf\u00e9';
    const tar = tarArchive([
      { name: `${decomposed}/a.png`, data: (a as { data: Buffer }).data },
      { name: `${composed}/b.png`, data: (b as { data: Buffer }).data },
      { name: 'dog/1.png', data: (a as { data: Buffer }).data },
      { name: 'dog/2.png', data: (b as { data: Buffer }).data },
      { name: 'dog/notes.txt', data: Buffer.from('not an image') },
      { name: 'dog/broken.png', data: (a as { data: Buffer }).data.subarray(0, 60) },
      { name: 'dog/tiny.png', data: tiny },
      { name: 'dog/huge.png', data: huge },
      { name: 'dog/.DS_Store', data: Buffer.from('x') },
      { name: 'README.md', data: Buffer.from('# digits') },
      { name: 'dog/link.png', type: 'symlink', linkTarget: '/etc/passwd' },
      { name: ' /blank.png', data: (a as { data: Buffer }).data },
      { name: 'evil\u202egnp/x.png', data: (a as { data: Buffer }).data },
    ]);
    const { report } = await build(tar);
    assert.deepEqual(report.classNames, [composed, 'dog'], 'NFD and NFC spellings of café are one class');
    assert.deepEqual(report.skipped.byReason, {
      notAnImage: 1,
      unreadable: 1,
      tooSmall: 1,
      tooLarge: 1,
      link: 1,
      hidden: 1,
      outsideClassFolder: 3,
    });
    const reasons = new Map(report.skipped.files.map((file) => [file.path, file.reason]));
    assert.equal(reasons.get('dog/notes.txt'), 'notAnImage');
    assert.equal(reasons.get('dog/link.png'), 'link');
    assert.equal(reasons.get(' /blank.png'), 'outsideClassFolder');
    assert.match(report.warnings.join('\n'), /only \d training images/);
  });

  test('a symbolic link in a zip (Unix mode in its attributes) is skipped, never followed', async () => {
    const entries = await digitEntries([1, 2], 3);
    const { report } = await build(
      await zipOf([...entries, { name: 'digit-1/passwd.png', data: Buffer.from('/etc/passwd'), unixMode: 0o120777 }]),
    );
    assert.deepEqual(report.skipped.files, [
      { path: 'digit-1/passwd.png', reason: 'link', detail: 'a link; links are never followed' },
    ]);
    assert.equal(report.splits.train.images + report.splits.test.images, 6);
  });

  test('warnings: unbalanced classes and test files that copy training files', async () => {
    const big = await digitEntries([2], 40, 'train/');
    const small = await digitEntries([5], 3, 'train/');
    const copy = { ...(big[0] as { name: string; data: Buffer }), name: 'test/digit-2/copy.png' };
    const test5 = await digitEntries([5], 2, 'test/', 9000);
    const { report } = await build(await zipOf([...big, ...small, copy, ...test5]));
    const warnings = report.warnings.join('\n');
    assert.match(warnings, /strongly unbalanced: 40 training images in the largest, 3 in the smallest/);
    assert.match(warnings, /1 test or validation files are byte-for-byte copies of training files/);
  });
});

describe('archives that make no data set fail with the reason', () => {
  test('not an archive, or an empty one', async () => {
    assert.equal(archiveFormatOf(Buffer.from('hello, this is text')), null);
    await assertRefused(await zipOf([]), /holds no usable images/);
    await assertRefused(tarArchive([]), /holds no usable images/);
  });

  test('one class only', async () => {
    await assertRefused(
      await zipOf(await digitEntries([8], 5)),
      /one class only \(digit-8\).*at least 2 class folders/,
    );
  });

  test('truncated zip, tar and tar.gz archives', async () => {
    const entries = await digitEntries([0, 1], 5);
    const zip = await zipOf(entries);
    await assertRefused(zip.subarray(0, zip.length - 30), /truncated|end-of-directory/);
    const tar = tarArchive(entries);
    await assertRefused(tar.subarray(0, 1500), /truncated/);
    const gz = tarGzArchive(entries);
    await assertRefused(gz.subarray(0, Math.floor(gz.length / 2)), /truncated|can't be read/);
  });

  test('paths that climb out of the archive or start at the root', async () => {
    const [digit] = await digitEntries([0], 1);
    const data = (digit as { data: Buffer }).data;
    await assertRefused(
      await zipOf([
        { name: 'a/../../etc/x.png', data },
        { name: 'b/1.png', data },
      ]),
      /climbs out of the archive/,
    );
    await assertRefused(tarArchive([{ name: '/etc/cron.d/x.png', data }]), /absolute path/);
    const written = await readdir(folder);
    assert.ok(!written.includes('etc'), 'nothing written outside the data set folder');
  });

  test('a zip bomb is refused from its declared sizes, before anything is inflated', async () => {
    const zeros = Buffer.alloc(limits.maxUnpackedBytes + 1);
    const bomb = await zipOf([{ name: 'a/zeros.png', data: zeros }, ...(await digitEntries([1], 1))]);
    assert.ok(bomb.length < 100_000, `the bomb is small compressed (${bomb.length} bytes)`);
    await assertRefused(bomb, /unpacks to more than 20971520 bytes/);
    await assertRefused(tarGzArchive([{ name: 'a/zeros.png', data: zeros }]), /unpacks to more than/);
  });

  test('a zip entry that inflates to more than it declares is refused', async () => {
    const zip = await zipOf(await digitEntries([0, 1], 1));
    // Lie in the central directory: the first entry claims to be 10 bytes.
    const directory = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    zip.writeUInt32LE(10, directory + 24);
    await assertRefused(zip, /can't be inflated to its declared 10 bytes|unpacks to/);
    assert.ok(deflateRawSync(Buffer.alloc(10)).length > 0);
  });

  test('more entries than the limit', async () => {
    await assertRefused(
      await zipOf(await digitEntries([0, 1], 3)),
      /more than 5 entries/,
      {},
      { ...limits, maxEntries: 5 },
    );
  });

  test('only blank or deceptive class folder names', async () => {
    const [a, b] = await digitEntries([6], 2);
    await assertRefused(
      tarArchive([
        { name: '  /a.png', data: (a as { data: Buffer }).data },
        { name: 'x\u0007/b.png', data: (b as { data: Buffer }).data },
      ]),
      /no usable images \(2 files skipped: 2 outsideClassFolder\)/,
    );
  });
});

/** The pixels of the MNIST test digit an entry was made from (its file is named by the digit's index), as a key. */
function digitKey(name: string): string {
  const index = Number(path.basename(name, '.png'));
  return Buffer.from(digits.images.subarray(index * 784, (index + 1) * 784)).toString('base64');
}
