/**
 * MobileNetV2 from its ImageNet base through the service, on three real CIFAR-10 classes uploaded
 * as class folders (airplane, frog, truck: 1,500 to train, 3,000 to test): what GET /models lists,
 * the 400s, what `model: auto` picks for photographs, a short job of a classifier on the ImageNet
 * features, and its model answering in stock TensorFlow.js as the service does (the ImageInput
 * layer resizes and rescales inside the network). The full targets take minutes: `npm run bench -- --own-images`.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { ModelCatalog } from '../../src/contract/catalog.ts';
import type { UploadedDataset } from '../../src/contract/datasets.ts';
import type { ErrorBody } from '../../src/contract/errors.ts';
import type { Job } from '../../src/contract/job.ts';
import { clientOf, processedDataset, runJob, submitJob } from '../support/jobs.ts';
import { cifarThreeClassesZip } from '../support/own-images.ts';
import { request, startTestService, type TestService } from '../support/service.ts';
import { extractArchive, stockTfjsProbabilities } from '../support/stock-tfjs.ts';

let service: TestService;
let dataset: UploadedDataset;
const extracted: string[] = [];

before(async () => {
  service = await startTestService({ TRAIN_THREADS: '2' });
  const uploaded = await clientOf(service).uploadDataset(
    { name: 'three-classes.zip', bytes: new Uint8Array(await cifarThreeClassesZip()), type: 'application/zip' },
    {},
  );
  dataset = await processedDataset(service, uploaded.id, { timeoutMs: 120_000 });
  assert.equal(dataset.state, 'ready', JSON.stringify(dataset.error));
});
after(async () => {
  await service?.close();
  await Promise.all(extracted.map((folder) => rm(folder, { recursive: true, force: true })));
});

const postJob = (body: Record<string, unknown>) =>
  request<Job & ErrorBody>(`${service.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dataset: dataset.id, ...body }),
  });

describe('the ImageNet base', () => {
  it('is listed under mobilenetv2 in GET /models, with where it comes from', async () => {
    const { body } = await request<ModelCatalog>(`${service.url}/models`);
    const mobilenet = body.models.find((model) => model.name === 'mobilenetv2');
    assert.deepEqual(
      mobilenet?.bases.map((base) => [base.name, base.lastLayer, base.inputRange]),
      [['imagenet', 'block_10_project_BN', [0, 1]]],
    );
    assert.match(mobilenet?.bases[0]?.source ?? '', /nsfwjs 4\.4\.0 \(MIT licence\).*quantised/);
    assert.ok(body.models.filter((model) => model.name !== 'mobilenetv2').every((model) => model.bases.length === 0));
  });

  it('refuses a base of another network, inputSize elsewhere and top or head with nothing to keep', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ model: 'lenet5', initFrom: 'imagenet' }, /imagenet is a base of mobilenetv2; lenet5 has no built-in base/],
      [{ model: 'resnet20', inputSize: 64 }, /inputSize is for mobilenetv2/],
      [{ model: 'mobilenetv2', trainLayers: 'top' }, /trainLayers top keeps the layers initFrom gives/],
      [{ model: 'mobilenetv2', initFrom: 'imagenet', inputSize: 16 }, /inputSize/],
    ];
    for (const [body, reason] of cases) {
      const answer = await postJob(body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.match(answer.body.error, reason);
    }
  });

  it('is what model auto picks for these photographs, saying why', async () => {
    const job = await submitJob(service, { dataset: dataset.id });
    try {
      const { model, initFrom, trainLayers, inputSize, optimizer, epochs, autoChoice } = job.request;
      assert.deepEqual(
        { model, initFrom, trainLayers, inputSize, optimizer, epochs },
        { model: 'mobilenetv2', initFrom: 'imagenet', trainLayers: 'top', inputSize: 96, optimizer: 'adam', epochs: 4 },
      );
      assert.match(
        autoChoice?.reasons.join('\n') ?? '',
        /mobilenetv2 from its ImageNet base: photographs \(1,500 training images/,
      );
    } finally {
      await clientOf(service).cancel(job.id);
    }
  });

  describe('a classifier on its features (trainLayers head), 600 pictures, 3 epochs', () => {
    let job: Job;
    before(async () => {
      job = await runJob(
        service,
        {
          model: 'mobilenetv2',
          dataset: dataset.id,
          initFrom: 'imagenet',
          trainLayers: 'head',
          inputSize: 96,
          optimizer: 'adam',
          learningRate: 0.01,
          epochs: 3,
          batchSize: 32,
          trainLimit: 600,
          testLimit: 600,
          seed: 5,
        },
        { timeoutMs: 300_000, intervalMs: 500 },
      );
      assert.equal(job.state, 'completed', JSON.stringify(job.error));
    });

    it('tells the classes apart far above chance from 600 pictures', () => {
      // The upload keeps CIFAR-10's order, classes mixed: the first 600 hold all three.
      assert.ok((job.result?.testAccuracy ?? 0) >= 0.7, `test accuracy ${job.result?.testAccuracy}`);
      // Counted as GET /models counts: the frozen blocks 0-10 too, not only the 96 × 3 + 3 trained.
      assert.ok((job.result?.params ?? 0) > 100_000, `params ${job.result?.params}`);
    });

    it('answers in stock TensorFlow.js as the service does, its ImageInput from custom-layers.mjs', async () => {
      const pictures = await Promise.all(
        [0, 1, 2].map((i) => {
          const pixels = Buffer.alloc(32 * 32 * 3);
          for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 3) * 37) % 251;
          return sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
            .png()
            .toBuffer();
        }),
      );
      const answer = await clientOf(service).predict(
        job.id,
        pictures.map((bytes, i) => ({ name: `${i}.png`, bytes: new Uint8Array(bytes), type: 'image/png' })),
        { explain: true },
      );
      const inputs = await Promise.all(
        answer.predictions.map(async (prediction) => {
          const png = Buffer.from(
            prediction.explanation?.input.replace(/^data:image\/png;base64,/, '') ?? '',
            'base64',
          );
          return new Uint8Array(await sharp(png).removeAlpha().raw().toBuffer());
        }),
      );
      const { folder } = await extractArchive((await clientOf(service).model(job.id)).bytes);
      extracted.push(folder);
      const probabilities = await stockTfjsProbabilities(folder, inputs);
      answer.predictions.forEach((prediction, i) => {
        for (const { label, probability } of prediction.top) {
          const stock = probabilities[i]?.[label] ?? NaN;
          assert.ok(
            Math.abs(stock - probability) < 1e-4,
            `picture ${i}, class ${label}: stock ${stock}, service ${probability}`,
          );
        }
      });
    });
  });
});
