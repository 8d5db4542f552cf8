/**
 * Bases brought by the user through the API: a model a job trained, downloaded and uploaded back
 * as a base, listed, owned, counted against the storage limit and deleted; and every kind of
 * unusable upload refused with its status and reason, nothing kept.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import { Redis } from 'ioredis';
import type { OpenAPIV3 } from 'openapi-types';
import type { Base, BaseList } from '../../src/contract/bases.ts';
import type { ErrorBody } from '../../src/contract/errors.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { imageFolderEntries, zipOf } from '../support/archives.ts';
import { downloadedModelZip, modelJsonOf, savedModel } from '../support/base-archives.ts';
import { clientOf, processedDataset, runJob } from '../support/jobs.ts';
import { extractArchive } from '../support/stock-tfjs.ts';
import { request, startTestService, testRedisUrl, type TestService } from '../support/service.ts';

const aliceKey = 'alice-key-0123456789abcdef';
const bobKey = 'bob-key-0123456789abcdefgh';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
/** Room for two LeNet-5 bases (about 181 KB each) of one client, not three. */
const storagePerClient = 400_000;

let service: TestService;
/** The zip GET /jobs/:id/model gave for a LeNet-5 trained on MNIST. */
let trainedZip: Buffer;

before(async () => {
  service = await startTestService({
    API_KEYS: `${aliceKey},${bobKey}`,
    MAX_BASE_UPLOAD_BYTES: String(1024 * 1024),
    MAX_DATASET_BYTES_PER_CLIENT: String(storagePerClient),
  });
  const job = await runJob(
    service,
    { model: 'lenet5', dataset: 'mnist', epochs: 1, trainLimit: 500, testLimit: 200, seed: 1 },
    { apiKey: aliceKey },
  );
  assert.equal(job.state, 'completed', JSON.stringify(job.error));
  trainedZip = (await clientOf(service, { apiKey: aliceKey }).model(job.id)).bytes;
});
after(async () => service.close());

async function upload(archive: Buffer, key = aliceKey, fields: Record<string, string> = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('archive', new Blob([new Uint8Array(archive)]), 'lenet5-mnist.zip');
  return request<Base & ErrorBody>(`${service.url}/bases`, { method: 'POST', body: form, headers: bearer(key) });
}

async function refused(archive: Buffer, status: number, reason: RegExp): Promise<void> {
  const answer = await upload(archive);
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.match(answer.body.error, reason);
}

const list = async (key: string) =>
  (await request<BaseList>(`${service.url}/bases`, { headers: bearer(key) })).body.bases.map((base) => base.id);

describe('a model a job trained, uploaded back as a base', () => {
  let base: Base;

  before(async () => {
    const answer = await upload(trainedZip, aliceKey, { name: 'my digits' });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.headers.get('location'), `/bases/${answer.body.id}`);
    base = answer.body;
  });

  it('is LeNet-5 for 28×28×1 images with 10 classes, every layer covered', () => {
    assert.equal(base.name, 'my digits');
    assert.equal(base.network, 'lenet5');
    assert.deepEqual(base.input, { height: 28, width: 28, channels: 1 });
    assert.equal(base.classes, 10);
    assert.deepEqual(base.coveredLayers, ['conv2d', 'conv2d_1', 'dense', 'dense_1', 'dense_2']);
    assert.ok(base.bytes > 44_426 * 4, `${base.bytes} bytes: its weights and model.json`);
  });

  it('is listed and shown to its owner only; another client gets 404 and can’t delete it', async () => {
    assert.deepEqual(await list(aliceKey), [base.id]);
    const shown = await request<Base>(`${service.url}/bases/${base.id}`, { headers: bearer(aliceKey) });
    assert.deepEqual(shown.body, base);
    assert.deepEqual(await list(bobKey), []);
    for (const method of ['GET', 'DELETE']) {
      const answer = await request<ErrorBody>(`${service.url}/bases/${base.id}`, { method, headers: bearer(bobKey) });
      assert.equal(answer.status, 404, `${method} by another client`);
      assert.equal(answer.body.error, `no base with id ${base.id} (GET /bases lists yours)`);
    }
    assert.equal((await request(`${service.url}/bases`)).status, 401, 'no key, no bases');
  });

  it('can be uploaded as a raw zip with its name in the query, and is listed newest first', async () => {
    const answer = await request<Base>(`${service.url}/bases?name=raw`, {
      method: 'POST',
      body: new Uint8Array(trainedZip),
      headers: { ...bearer(aliceKey), 'content-type': 'application/zip' },
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.name, 'raw');
    assert.deepEqual(await list(aliceKey), [answer.body.id, base.id]);
    await deleteBase(answer.body.id);
  });

  it('starts a job of its network: head keeps every layer but the classifier; another network is refused', async () => {
    const other = await request<ErrorBody>(`${service.url}/jobs`, {
      method: 'POST',
      headers: { ...bearer(aliceKey), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'alexnet', dataset: 'mnist', initFrom: base.id }),
    });
    assert.equal(other.status, 400);
    assert.match(other.body.error, /names base .*, a lenet5; this job trains alexnet/);
    const job = await runJob(
      service,
      {
        model: 'lenet5',
        dataset: 'mnist',
        initFrom: base.id,
        trainLayers: 'head',
        epochs: 1,
        trainLimit: 300,
        testLimit: 100,
        seed: 2,
      },
      { apiKey: aliceKey },
    );
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    // Weights by layer, keyed by class and order: tfjs numbers layers per process, and saves the trained ones first.
    const weightsOf = async (zip: Buffer): Promise<Map<string, Float32Array>> => {
      const { folder, files } = await extractArchive(zip);
      const read = (suffix: string) =>
        readFile(path.join(folder, files.find((file) => file.endsWith(suffix)) ?? suffix));
      const manifest = JSON.parse((await read('model.json')).toString('utf8')) as {
        weightsManifest: { weights: { name: string; shape: number[] }[] }[];
      };
      const bytes = await read('.bin');
      const layerNumber = (name: string) => Number(/(\d+)\//.exec(name)?.[1]);
      let offset = 0;
      const byName = new Map<string, Float32Array>();
      for (const { name, shape } of manifest.weightsManifest.flatMap((group) => group.weights)) {
        const count = shape.reduce((a, b) => a * b, 1);
        byName.set(
          name,
          new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + count * 4)),
        );
        offset += count * 4;
      }
      const names = [...byName.keys()].sort((a, b) => layerNumber(a) - layerNumber(b));
      return new Map(
        names.map((name) => [
          `${name.split('_')[0]}#${names.filter((n) => n.split('_')[0] === name.split('_')[0]).indexOf(name)}`,
          byName.get(name) as Float32Array,
        ]),
      );
    };
    const before = await weightsOf(trainedZip);
    const after = await weightsOf((await clientOf(service, { apiKey: aliceKey }).model(job.id)).bytes);
    const classifier = [...before.keys()].filter((key) => key.startsWith('dense')).slice(-2);
    for (const [key, values] of before) {
      const same = values.every((value, i) => value === after.get(key)?.[i]);
      assert.equal(
        same,
        !classifier.includes(key),
        `${key}: ${classifier.includes(key) ? 'the classifier trains' : 'kept as the base has it'}`,
      );
    }
  });

  it('can’t be deleted while a queued job starts from it (409), then is deleted with its files (204)', async () => {
    // A job as POST /jobs records one that starts from the base.
    const redis = new Redis(testRedisUrl);
    const prefix = service.config.KEY_PREFIX;
    const jobId = randomUUID();
    try {
      await redis.hset(`${prefix}:job:${jobId}`, 'request', JSON.stringify({ model: 'lenet5', initFrom: base.id }));
      await redis.zadd(`${prefix}:jobs:queued`, 1, jobId);
      const busy = await request<ErrorBody>(`${service.url}/bases/${base.id}`, {
        method: 'DELETE',
        headers: bearer(aliceKey),
      });
      assert.equal(busy.status, 409);
      assert.match(busy.body.error, new RegExp(`used by job ${jobId}, which is queued or running`));
    } finally {
      await redis.del(`${prefix}:job:${jobId}`);
      await redis.zrem(`${prefix}:jobs:queued`, jobId);
      redis.disconnect();
    }
    await deleteBase(base.id);
    assert.equal((await request(`${service.url}/bases/${base.id}`, { headers: bearer(aliceKey) })).status, 404);
    assert.deepEqual(await readdir(service.config.BASES_DIR), ['uploads'], 'its folder went, no upload is left');
    assert.deepEqual(await readdir(`${service.config.BASES_DIR}/uploads`), []);
  });
});

async function deleteBase(id: string, key = aliceKey): Promise<void> {
  const answer = await request(`${service.url}/bases/${id}`, { method: 'DELETE', headers: bearer(key) });
  assert.equal(answer.status, 204);
}

describe('a base that can’t be used is refused with the reason, nothing kept', () => {
  it('a body that is no archive (415), a zip that is corrupt (400)', async () => {
    await refused(
      Buffer.from('just some text, not a zip'),
      415,
      /^the upload is not a zip \(or tar, tar\.gz\) archive$/,
    );
    await refused(trainedZip.subarray(0, trainedZip.length - 40), 400, /zip archive/);
  });

  it('a graph model', async () => {
    const graph = { format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [] };
    await refused(
      await zipOf([{ name: 'web_model/model.json', data: Buffer.from(JSON.stringify(graph)) }]),
      400,
      /^a graph model \(tensorflowjs_converter --output_format tfjs_graph_model\) can't be fine-tuned; convert with --output_format tfjs_layers_model$/,
    );
  });

  it('weights shorter than its manifest says', async () => {
    const model = await savedModel(
      tfl.sequential({ layers: [tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5 })] }),
    );
    await refused(
      await zipOf([
        { name: 'model.json', data: modelJsonOf(model, ['weights.bin']) },
        { name: 'weights.bin', data: model.weights.subarray(0, 100) },
      ]),
      400,
      /hold 100 bytes, but its 2 weights take 624 by model\.json's manifest: a shard is truncated or missing/,
    );
  });

  it('a zip with an entry whose path climbs out with ../', async () => {
    await refused(
      await zipOf([
        { name: 'model.json', data: Buffer.from('{}') },
        { name: '../../etc/weights.bin', data: Buffer.alloc(16) },
      ]),
      400,
      /climbs out of the archive with \.\.\/; refused/,
    );
  });

  it('an upload over MAX_BASE_UPLOAD_BYTES: 413', async () => {
    const large = await zipOf([
      {
        name: 'weights.bin',
        data: Buffer.from(new Uint8Array(1100 * 1024).map((_, i) => (i * 7919) % 251)),
        compress: false,
      },
    ]);
    await refused(large, 413, /over 1048576 bytes, the most one upload may have \(MAX_BASE_UPLOAD_BYTES\)/);
  });

  it('a model whose input is no image', async () => {
    const flat = await savedModel(tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 10 })] }));
    await refused(await downloadedModelZip(flat), 400, /^the model's input is \[null, 784\]; a base takes one image/);
  });

  it('a model that matches none of the networks, naming the closest and what it lacks', async () => {
    const other = await savedModel(
      tfl.sequential({
        layers: [
          tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5 }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 10 }),
        ],
      }),
    );
    await refused(
      await downloadedModelZip(other),
      400,
      /^the model matches none of this server's networks \(lenet5, alexnet, resnet20, mobilenetv2\): closest is lenet5, which lacks conv2d_1 \(Conv2D, weights \[5, 5, 6, 16\] \[16\]\)/,
    );
  });

  it('leaves nothing behind', async () => {
    assert.deepEqual(await list(aliceKey), []);
    assert.deepEqual(await readdir(`${service.config.BASES_DIR}/uploads`), []);
  });
});

describe('a base’s bytes count against its owner’s storage, shared with data sets', () => {
  it('a third base past MAX_DATASET_BYTES_PER_CLIENT is refused (413); another client’s storage is its own; deleting gives it back', async () => {
    const first = await upload(trainedZip);
    const second = await upload(trainedZip);
    assert.equal(first.status, 201);
    assert.equal(second.status, 201);
    const third = await upload(trainedZip);
    assert.equal(third.status, 413);
    assert.equal(
      third.body.error,
      `the base takes ${first.body.bytes} bytes, which would put your data sets and bases over the storage limit of ${storagePerClient} bytes (MAX_DATASET_BYTES_PER_CLIENT); delete data sets or bases you no longer need`,
    );
    assert.equal((await upload(trainedZip, bobKey)).status, 201, "another client's storage is its own");
    await deleteBase(second.body.id);

    // One base left: a data set that would fit alone fails for the bytes the base takes.
    const digits = (await mnist.load({ dataDir: service.config.DATA_DIR })).test;
    const archive = await zipOf(
      await imageFolderEntries(digits, mnist.shape, { classes: [0, 1], perClass: 150, className: String }),
    );
    assert.ok(300 * 785 < storagePerClient && 300 * 785 + first.body.bytes > storagePerClient);
    const form = new FormData();
    form.append('archive', new Blob([new Uint8Array(archive)]), 'digits.zip');
    const uploaded = await request<{ id: string }>(`${service.url}/datasets`, {
      method: 'POST',
      body: form,
      headers: bearer(aliceKey),
    });
    assert.equal(uploaded.status, 202);
    const dataset = await processedDataset(service, uploaded.body.id, { apiKey: aliceKey });
    assert.equal(dataset.state, 'failed');
    assert.match(dataset.error?.message ?? '', /over the storage limit/);
    await deleteBase(first.body.id);
    assert.equal((await upload(trainedZip)).status, 201, 'the space is back');
  });
});

describe('the OpenAPI document', () => {
  it('describes the bases routes, the upload body and the Location header of its 201', async () => {
    const { body: document } = await request<OpenAPIV3.Document>(`${service.url}/openapi.json`);
    const upload = document.paths['/bases']?.post;
    assert.deepEqual(
      Object.keys((upload?.requestBody as OpenAPIV3.RequestBodyObject | undefined)?.content ?? {}).sort(),
      ['application/octet-stream', 'application/zip', 'multipart/form-data'],
    );
    const created = upload?.responses['201'] as OpenAPIV3.ResponseObject | undefined;
    assert.ok(created?.headers?.Location);
    for (const status of ['400', '413', '415']) assert.ok(upload?.responses[status], `POST /bases lists ${status}`);
    assert.ok(document.paths['/bases']?.get && document.paths['/bases/{id}']?.get);
    assert.ok(document.paths['/bases/{id}']?.delete?.responses['409']);
    assert.ok(document.components?.schemas?.Base && document.components.schemas.BaseList);
  });
});
