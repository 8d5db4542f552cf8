/**
 * Predictions on the pictures people upload, and the model to take away, with the model a user
 * would train: LeNet-5, one epoch of the whole MNIST training set, trained once for this file.
 *
 * The pictures are made from MNIST test digits the model never trained on (test/support/digit-photos.ts:
 * photos of paper, small digits in large photos, chalk on a board, and the MNIST PNGs themselves).
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import sharp from 'sharp';
import type { Job } from '../../src/contract/job.ts';
import type { Prediction, PredictResponse } from '../../src/contract/predict.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { digitPhoto, photoKindDescriptions, type PhotoKind } from '../support/digit-photos.ts';
import { runJob } from '../support/jobs.ts';
import { request, startTestService, type TestService } from '../support/service.ts';
import { extractArchive, stockTfjsProbabilities } from '../support/stock-tfjs.ts';

/** Test digits from here on: beyond those the preprocessing was tuned on (5000 onwards). */
const firstDigit = 7000;
/** Photos per kind: the photo kinds cost more to make and analyse than MNIST PNGs. */
const counts: Record<PhotoKind, number> = { 'mnist-png': 120, photo: 90, 'small-in-photo': 60, chalkboard: 60 };

let service: TestService;
let job: Job;
let digits: Awaited<ReturnType<typeof mnist.load>>['test'];
const extracted: string[] = [];

before(async () => {
  // The one-epoch LeNet-5 on every core: the longest training of the suite.
  service = await startTestService({ TRAIN_THREADS: '2' });
  job = await runJob(
    service,
    { model: 'lenet5', dataset: 'mnist', epochs: 1, testLimit: 1000, seed: 14 },
    { timeoutMs: 180_000, intervalMs: 250 },
  );
  assert.equal(job.state, 'completed', job.error?.message);
  digits = (await mnist.load({ dataDir: service.config.DATA_DIR })).test;
});

after(async () => {
  await service?.close();
  await Promise.all(extracted.map((folder) => rm(folder, { recursive: true, force: true })));
});

function digitPixels(index: number): Uint8Array {
  return digits.images.subarray(index * 784, (index + 1) * 784);
}

/** Predictions for `images` in requests of at most 64 files (MAX_UPLOAD_FILES). */
async function predictAll(images: readonly Buffer[], query = ''): Promise<Prediction[]> {
  const predictions: Prediction[] = [];
  for (let start = 0; start < images.length; start += 64) {
    const form = new FormData();
    images
      .slice(start, start + 64)
      .forEach((image, i) =>
        form.append(`image${i}`, new Blob([new Uint8Array(image)], { type: 'image/jpeg' }), `image${i}`),
      );
    const answer = await request<PredictResponse>(`${service.url}/jobs/${job.id}/predict${query}`, {
      method: 'POST',
      body: form,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    predictions.push(...answer.body.predictions);
  }
  return predictions;
}

/** The share of `kind`'s pictures answered right with each query (each a preprocess mode). */
async function accuracies(kind: PhotoKind, queries: Record<string, string>): Promise<Record<string, number>> {
  const indices = Array.from({ length: counts[kind] }, (_, i) => firstDigit + i);
  const photos = await Promise.all(indices.map((index) => digitPhoto(digitPixels(index), kind, index)));
  const shares: Record<string, number> = {};
  for (const [name, query] of Object.entries(queries)) {
    const predictions = await predictAll(photos, query);
    shares[name] =
      predictions.filter((prediction, i) => prediction.label === digits.labels[indices[i] as number]).length /
      indices.length;
  }
  return shares;
}

const bothModes = { auto: '', none: '?preprocess=none' };

function report(t: TestContext, kind: PhotoKind, accuracies: Record<string, number>): void {
  const figures = Object.entries(accuracies).map(
    ([preprocess, accuracy]) => `${preprocess} ${(accuracy * 100).toFixed(1)}%`,
  );
  t.diagnostic(`${kind} (${counts[kind]} images; ${photoKindDescriptions[kind]}): ${figures.join(', ')}`);
}

describe('predict on pictures of handwritten digits', () => {
  it('gets at least 95% of digit photos right, where a plain resize gets most wrong', async (t) => {
    for (const kind of ['photo', 'small-in-photo', 'chalkboard'] as const) {
      const { auto = 0, none = 1 } = await accuracies(kind, bothModes);
      report(t, kind, { auto, none });
      assert.ok(auto >= 0.95, `${kind}: ${auto} right`);
      assert.ok(
        none < 0.9,
        `${kind}: a plain resize got ${none} right; the pictures don't test what preprocessing adds`,
      );
    }
  });

  it('answers MNIST-style PNGs as well as a plain resize does', async (t) => {
    const { auto = 0, none = 1 } = await accuracies('mnist-png', bothModes);
    report(t, 'mnist-png', { auto, none, testAccuracy: job.result?.testAccuracy ?? NaN });
    assert.ok(auto >= none, `auto ${auto} against none ${none}`);
    assert.ok(auto >= 0.95);
  });

  it('says what the model saw with explain=1: the inverted, cropped digit of a photo as a 28×28 PNG', async () => {
    const index = firstDigit;
    const photo = await digitPhoto(digitPixels(index), 'photo', index);
    const { width = 0, height = 0 } = await sharp(photo).metadata();
    const [explained] = await predictAll([photo], '?explain=1');
    assert.ok(explained?.explanation);
    const { preprocess, inverted, crop, input } = explained.explanation;
    assert.deepEqual([preprocess, inverted, explained.blank], ['strokes', true, false]);
    assert.ok(
      crop && crop.left >= 0 && crop.top >= 0 && crop.left + crop.width <= width && crop.top + crop.height <= height,
      JSON.stringify(crop),
    );
    assert.ok(crop.width * crop.height < (width * height) / 2, 'the crop is the digit, not the page');
    const png = Buffer.from(input.replace(/^data:image\/png;base64,/, ''), 'base64');
    const { width: seenWidth, height: seenHeight, channels } = await sharp(png).metadata();
    assert.deepEqual([seenWidth, seenHeight, channels], [28, 28, 1]);
    const seen = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    // MNIST's form: black margins round a digit whose ink fills at most the 20×20 box.
    const rows = Array.from({ length: 28 }, (_, y) =>
      seen.data.subarray(y * 28, y * 28 + 28).some((value) => value > 0),
    );
    assert.ok(rows.filter(Boolean).length <= 21 && !rows[0] && !rows[27], 'ink rows within the box');

    const [plain] = await predictAll([photo], '?explain=1&preprocess=none');
    assert.deepEqual(
      [plain?.explanation?.preprocess, plain?.explanation?.inverted, plain?.explanation?.crop],
      ['none', false, null],
    );
    assert.equal((await predictAll([photo])).at(0)?.explanation, undefined, 'no explanation unless asked');
  });

  it('says an image is blank instead of guessing silently', async () => {
    const noise = Buffer.alloc(400 * 300 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = 215 + ((i * 7919) % 13);
    const paper = await sharp(noise, { raw: { width: 400, height: 300, channels: 3 } })
      .jpeg({ quality: 70 })
      .toBuffer();
    const black = await sharp({ create: { width: 28, height: 28, channels: 3, background: '#000000' } })
      .png()
      .toBuffer();
    const [onPaper, onBlack, digit] = await predictAll([
      paper,
      black,
      await digitPhoto(digitPixels(firstDigit), 'photo', firstDigit),
    ]);
    assert.equal(onPaper?.blank, true, 'empty paper');
    assert.equal(onBlack?.blank, true, 'a black square');
    assert.equal(digit?.blank, false);
    const [stretchedBlack] = await predictAll([black], '?preprocess=none');
    assert.equal(stretchedBlack?.blank, true, 'blank with a plain resize too');
  });
});

describe('GET /jobs/:id/model', () => {
  it('is a zip that stock TensorFlow.js loads and answers with as the service does', async () => {
    const response = await fetch(`${service.url}/jobs/${job.id}/model`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/zip');
    assert.equal(response.headers.get('content-disposition'), `attachment; filename="lenet5-mnist-${job.id}.zip"`);
    const { folder, files } = await extractArchive(Buffer.from(await response.arrayBuffer()));
    extracted.push(folder);
    assert.deepEqual(files, ['README.md', 'custom-layers.mjs', 'metadata.json', 'model.json', 'weights.bin']);

    // The service's answers and the inputs it gave the model, for a photo of each digit 0..9.
    const indices = Array.from({ length: 10 }, (_, label) =>
      digits.labels.findIndex((value, index) => index >= firstDigit && value === label),
    );
    const photos = await Promise.all(indices.map((index) => digitPhoto(digitPixels(index), 'photo', index)));
    const predictions = await predictAll(photos, '?explain=1');
    const inputs = await Promise.all(
      predictions.map(async (prediction) => {
        const png = Buffer.from(prediction.explanation?.input.replace(/^data:image\/png;base64,/, '') ?? '', 'base64');
        return new Uint8Array(await sharp(png).extractChannel(0).raw().toBuffer());
      }),
    );
    const probabilities = await stockTfjsProbabilities(folder, inputs);
    predictions.forEach((prediction, i) => {
      for (const { label, probability } of prediction.top) {
        const stock = probabilities[i]?.[label] ?? NaN;
        assert.ok(
          Math.abs(stock - probability) < 1e-5,
          `photo ${i}, class ${label}: stock TensorFlow.js ${stock}, the service ${probability}`,
        );
      }
    });
    assert.ok(new Set(predictions.map((prediction) => prediction.label)).size >= 8, 'the ten photos are told apart');
  });
});
