/**
 * An uploaded base's archive checked as the API checks it, and stored and loaded back as the worker
 * loads it: what a user brings (our model download, tensorflowjs_converter's folder with quantised
 * shards) is taken, and each way of being unusable is refused with its reason and status.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import { ArchiveError } from '../../src/archives/archive.ts';
import { startBackend } from '../../src/backends/select.ts';
import { BaseError } from '../../src/bases/base-error.ts';
import { checkBaseArchive } from '../../src/bases/check-base.ts';
import { removeOrphanBaseFiles } from '../../src/bases/orphan-folders.ts';
import { loadBase, readBaseDescription, StoredBaseError, storeBase } from '../../src/bases/stored-base.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import type { ZipEntry } from '../../src/storage/zip.ts';
import { zipOf } from '../support/archives.ts';
import { downloadedModelZip, modelJsonOf, savedModel, type SavedModel } from '../support/base-archives.ts';
import { testScratch } from '../support/scratch.ts';

const scratch = testScratch('bases-check-');
const MNIST = { height: 28, width: 28, channels: 1 };
const limits = { maxEntries: 100, maxUnpackedBytes: 10 * 1024 * 1024, maxModelBytes: 1024 * 1024 };
let folder: string;
let digits: SavedModel;

before(async () => {
  assert.equal(await startBackend('wasm', pino({ level: 'silent' })), 'wasm');
  folder = await scratch.tempDir();
  digits = await savedModel(lenet5.build(MNIST, 10, 1));
});

let uploads = 0;
async function upload(archive: Buffer): Promise<string> {
  const file = path.join(folder, `upload-${++uploads}`);
  await writeFile(file, archive);
  return file;
}

async function refusal(archive: Buffer, checkLimits = limits): Promise<BaseError | ArchiveError> {
  const file = await upload(archive);
  return checkBaseArchive(file, checkLimits).then(
    () => assert.fail('the base was taken'),
    (error: unknown) => {
      assert.ok(error instanceof BaseError || error instanceof ArchiveError, String(error));
      return error;
    },
  );
}

const digitsZip = (entries: readonly ZipEntry[]) => zipOf(entries);

describe('an uploaded base is taken', () => {
  it('as GET /jobs/:id/model zips it, stored and loaded back with the same weights', async () => {
    const checked = await checkBaseArchive(await upload(await downloadedModelZip(digits)), limits);
    assert.equal(checked.match.network, 'lenet5');
    assert.deepEqual(checked.input, MNIST);
    const description = await storeBase(
      path.join(folder, 'bases'),
      { id: 'digits', name: 'my digits', owner: 'alice', createdAt: new Date('2026-12-08T10:00:00Z') },
      checked,
    );
    assert.equal(description.bytes, checked.weights.byteLength + Buffer.byteLength(JSON.stringify(checked.modelJson)));
    assert.deepEqual(await readdir(path.join(folder, 'bases', 'digits')).then((files) => files.sort()), [
      'base.json',
      'model.json',
      'weights.bin',
    ]);
    const loaded = await loadBase(path.join(folder, 'bases'), 'digits');
    assert.deepEqual(loaded.description, description);
    assert.deepEqual(await readBaseDescription(path.join(folder, 'bases'), 'digits'), description);
    const weights = Buffer.concat(loaded.model.getWeights().map((weight) => Buffer.from(weight.dataSync().buffer)));
    assert.ok(weights.equals(digits.weights), 'the weights as uploaded');
    loaded.model.dispose();
  });

  it('as tensorflowjs_converter writes it: in a folder, quantised to uint8, over several shards', async () => {
    const specs = [];
    const parts: Buffer[] = [];
    let offset = 0;
    for (const spec of digits.weightSpecs) {
      const count = spec.shape.reduce((product, side) => product * side, 1);
      const values = new Float32Array(
        digits.weights.buffer.slice(digits.weights.byteOffset + offset, digits.weights.byteOffset + offset + 4 * count),
      );
      offset += 4 * count;
      const min = Math.min(...values);
      const scale = (Math.max(...values) - min) / 255 || 1;
      parts.push(Buffer.from(Uint8Array.from(values, (value) => Math.round((value - min) / scale))));
      specs.push({ ...spec, quantization: { dtype: 'uint8', min, scale } });
    }
    const quantised = Buffer.concat(parts);
    const half = Math.floor(quantised.length / 2);
    const archive = await digitsZip([
      {
        name: 'web_model/model.json',
        data: modelJsonOf({ ...digits, weightSpecs: specs as SavedModel['weightSpecs'] }, [
          'group1-shard1of2.bin',
          'group1-shard2of2.bin',
        ]),
      },
      { name: 'web_model/group1-shard1of2.bin', data: quantised.subarray(0, half) },
      { name: 'web_model/group1-shard2of2.bin', data: quantised.subarray(half) },
      { name: '__MACOSX/web_model/._group1-shard1of2.bin', data: Buffer.from('resource fork') },
    ]);
    const checked = await checkBaseArchive(await upload(archive), limits);
    assert.equal(checked.match.network, 'lenet5');
    assert.equal(checked.weights.byteLength, quantised.length, 'stored quantised, as uploaded');
  });
});

describe('an unusable base is refused with the reason', () => {
  it('a body that is no archive: 415', async () => {
    const error = await refusal(Buffer.from('this is not a zip at all'));
    assert.equal((error as BaseError).statusCode, 415);
  });

  it('a corrupt zip', async () => {
    const zip = await downloadedModelZip(digits);
    const error = await refusal(zip.subarray(0, zip.length - 30));
    assert.match(error.message, /zip archive/);
  });

  it('no model.json', async () => {
    const error = await refusal(await digitsZip([{ name: 'weights.bin', data: digits.weights }]));
    assert.match(error.message, /^the archive holds no model\.json/);
  });

  it('a graph model', async () => {
    const graph = {
      format: 'graph-model',
      modelTopology: { node: [], library: {}, versions: {} },
      weightsManifest: [],
    };
    const error = await refusal(await digitsZip([{ name: 'model.json', data: Buffer.from(JSON.stringify(graph)) }]));
    assert.equal(
      error.message,
      "a graph model (tensorflowjs_converter --output_format tfjs_graph_model) can't be fine-tuned; convert with --output_format tfjs_layers_model",
    );
  });

  it('weights shorter than the manifest says, or longer', async () => {
    const short = await refusal(
      await digitsZip([
        { name: 'model.json', data: modelJsonOf(digits, ['weights.bin']) },
        { name: 'weights.bin', data: digits.weights.subarray(0, digits.weights.length - 4) },
      ]),
    );
    assert.match(
      short.message,
      /hold 177700 bytes, but its 10 weights take 177704 by model\.json's manifest: a shard is truncated or missing/,
    );
    const long = await refusal(
      await digitsZip([
        { name: 'model.json', data: modelJsonOf(digits, ['weights.bin']) },
        { name: 'weights.bin', data: Buffer.concat([digits.weights, Buffer.alloc(8)]) },
      ]),
    );
    assert.match(long.message, /8 more than its 10 weights take/);
  });

  it('a shard the manifest names that is missing, and one it does not name', async () => {
    const missing = await refusal(
      await digitsZip([{ name: 'model.json', data: modelJsonOf(digits, ['weights.bin']) }]),
    );
    assert.match(missing.message, /names the shard weights\.bin, which the archive lacks/);
    const stray = await refusal(
      await digitsZip([
        { name: 'model.json', data: modelJsonOf(digits, ['weights.bin']) },
        { name: 'weights.bin', data: digits.weights },
        { name: 'group2-shard1of1.bin', data: Buffer.alloc(4) },
      ]),
    );
    assert.match(stray.message, /holds group2-shard1of1\.bin, which model\.json's weights manifest doesn't name/);
  });

  it('paths that climb out: an entry’s, or a shard’s in the manifest', async () => {
    const entry = await refusal(
      await digitsZip([
        { name: 'model.json', data: modelJsonOf(digits, ['weights.bin']) },
        { name: '../weights.bin', data: digits.weights },
      ]),
    );
    assert.ok(entry instanceof ArchiveError);
    assert.match(entry.message, /climbs out of the archive with \.\.\/; refused/);
    const shard = await refusal(
      await digitsZip([
        { name: 'model/model.json', data: modelJsonOf(digits, ['../weights.bin']) },
        { name: 'weights.bin', data: digits.weights },
      ]),
    );
    assert.match(shard.message, /shards must lie in model\.json's folder or below it/);
  });

  it('more than MAX_BASE_UPLOAD_BYTES unpacked (a zip of zeros): 413', async () => {
    const error = await refusal(
      await downloadedModelZip(digits, [{ name: 'padding.txt', data: Buffer.alloc(2 * 1024 * 1024) }]),
    );
    assert.equal((error as BaseError).statusCode, 413);
    assert.match(
      error.message,
      /unpack to more than 1048576 bytes, the most a base may have \(MAX_BASE_UPLOAD_BYTES\)/,
    );
  });

  it('a layer class TensorFlow.js can not build, named with its layer', async () => {
    // As tfjs-layers saves it: { class_name: 'Sequential', config: { layers } }.
    const topology = structuredClone(digits.modelTopology) as {
      config: { layers: { class_name: string; config: { name: string } }[] };
    };
    const flatten = topology.config.layers[4];
    assert.equal(flatten?.class_name, 'Flatten');
    flatten.class_name = 'TFOpLambda';
    flatten.config.name = 'tf.reshape';
    const error = await refusal(
      await digitsZip([
        { name: 'model.json', data: modelJsonOf({ ...digits, modelTopology: topology }, ['weights.bin']) },
        { name: 'weights.bin', data: digits.weights },
      ]),
    );
    assert.match(
      error.message,
      /^the model's layer tf\.reshape is of class TFOpLambda, which TensorFlow\.js can't build/,
    );
  });

  it('an input that is no image', async () => {
    const flat = await savedModel(
      tfl.sequential({
        layers: [tfl.layers.dense({ inputShape: [784], units: 120 }), tfl.layers.dense({ units: 10 })],
      }),
    );
    const error = await refusal(await downloadedModelZip(flat));
    assert.equal(
      error.message,
      "the model's input is [null, 784]; a base takes one image, [null, height, width, channels] with its sides given",
    );
  });
});

describe('a stored base', () => {
  it('whose weights changed on disk is refused when loaded', async () => {
    const checked = await checkBaseArchive(await upload(await downloadedModelZip(digits)), limits);
    const root = path.join(folder, 'damaged');
    await storeBase(root, { id: 'b', name: 'b', owner: '', createdAt: new Date() }, checked);
    await writeFile(path.join(root, 'b', 'weights.bin'), Buffer.alloc(checked.weights.byteLength));
    await assert.rejects(
      loadBase(root, 'b'),
      (error: unknown) => error instanceof StoredBaseError && /doesn't match its checksum/.test(error.message),
    );
    await assert.rejects(loadBase(root, 'gone'), /its description can't be read .*it may have been deleted/);
  });

  it('left unrecorded by a crash is removed at start-up once old, a recorded one kept', async () => {
    const checked = await checkBaseArchive(await upload(await downloadedModelZip(digits)), limits);
    const root = path.join(folder, 'orphans');
    for (const id of ['kept', 'orphan'])
      await storeBase(root, { id, name: id, owner: '', createdAt: new Date() }, checked);
    const recorded = async (id: string) => id === 'kept';
    assert.deepEqual(await removeOrphanBaseFiles(root, recorded, 60_000), [], 'nothing young is touched');
    assert.deepEqual(await removeOrphanBaseFiles(root, recorded, 60_000, Date.now() + 120_000), ['orphan']);
    assert.deepEqual(await readdir(root), ['kept']);
  });
});
