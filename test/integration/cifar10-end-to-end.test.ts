import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import sharp from 'sharp';
import type { Prediction, PredictResponse } from '../../src/contract/predict.ts';
import { cifar10 } from '../../src/datasets/cifar10.ts';
import type { Dataset } from '../../src/datasets/dataset.ts';
import { normalisedImages } from '../../src/datasets/normalise.ts';
import { loadArtifact } from '../../src/models/artifact.ts';
import { startBackend } from '../../src/backends/select.ts';
import { cifarPathForTests } from '../support/cifar10-source.ts';
import { extractArchive, stockTfjsProbabilities } from '../support/stock-tfjs.ts';
import { runJob } from '../support/jobs.ts';
import { request, startTestService, type TestService } from '../support/service.ts';

describe('CIFAR-10 end to end over HTTP', () => {
  let folder: string;
  let service: TestService;
  let dataset: Dataset;
  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-cifar-'));
    const source = await cifarPathForTests(folder);
    service = await startTestService({ CIFAR10_PATH: source.path });
    dataset = await cifar10.load({ dataDir: service.config.DATA_DIR, userPath: source.path });
  });
  after(async () => {
    await service?.close();
    await rm(folder, { recursive: true, force: true });
  });

  /** A CIFAR-10 test image, enlarged to a JPEG file, through predict: its answer, checked for shape. */
  async function predictsTestImage(jobId: string, index: number): Promise<Prediction> {
    const predicted = await request<PredictResponse>(`${service.url}/jobs/${jobId}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: new Uint8Array(await testImageJpeg(index)),
    });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
    const [prediction] = predicted.body.predictions;
    assert.ok(prediction);
    assert.equal(prediction.top.length, 5);
    assert.equal(prediction.className, dataset.classNames[prediction.label]);
    return prediction;
  }

  async function testImageJpeg(index: number): Promise<Buffer> {
    const pixels = Buffer.from(dataset.test.images.subarray(index * 3072, (index + 1) * 3072));
    return sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
      .resize(96, 96)
      .jpeg()
      .toBuffer();
  }

  /** The job's model download, loaded by stock TensorFlow.js, gives the service's probabilities for the same prepared image. */
  async function assertDownloadPredictsAlike(jobId: string, index: number, prediction: Prediction): Promise<void> {
    const download = await fetch(`${service.url}/jobs/${jobId}/model`);
    assert.equal(download.status, 200);
    const { folder: extracted } = await extractArchive(Buffer.from(await download.arrayBuffer()), folder);
    const explained = await request<PredictResponse>(`${service.url}/jobs/${jobId}/predict?explain=1`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: new Uint8Array(await testImageJpeg(index)),
    });
    const input = explained.body.predictions[0]?.explanation?.input.replace(/^data:image\/png;base64,/, '') ?? '';
    const [stock] = await stockTfjsProbabilities(extracted, [
      new Uint8Array(await sharp(Buffer.from(input, 'base64')).raw().toBuffer()),
    ]);
    for (const { label, probability } of prediction.top) {
      assert.ok(
        Math.abs((stock?.[label] ?? NaN) - probability) < 1e-4,
        `class ${label}: stock TensorFlow.js ${stock?.[label]}, the service ${probability}`,
      );
    }
  }

  it('trains LeNet-5 above chance, with augmentation on by default, and predicts real CIFAR images sent as PNG', async () => {
    const job = await runJob(
      service,
      { model: 'lenet5', dataset: 'cifar10', epochs: 1, trainLimit: 6000, testLimit: 1000, batchSize: 16, seed: 3 },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    assert.equal(job.state, 'completed', job.error?.message);
    assert.equal(job.request.augment, true);
    assert.equal(job.request.weightDecay, 0);
    assert.equal(job.result?.params, 62006);
    assert.deepEqual(job.result?.classNames, [
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
    ]);
    const accuracy = job.result?.testAccuracy ?? 0;
    assert.ok(accuracy > 0.2, `test accuracy ${accuracy} is not clearly above chance (0.1)`);

    // The same test images, as PNG files through predict: the answers agree with the job's own
    // evaluation about as well as its accuracy says, so colour order and normalisation match training.
    const count = 192;
    const labels: number[] = [];
    for (let start = 0; start < count; start += 64) {
      const form = new FormData();
      for (let i = start; i < start + 64; i++) {
        const pixels = Buffer.from(dataset.test.images.subarray(i * 3072, (i + 1) * 3072));
        const png = await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
          .png()
          .toBuffer();
        form.append('images', new Blob([png], { type: 'image/png' }), `test-${i}.png`);
      }
      const predicted = await request<PredictResponse>(`${service.url}/jobs/${job.id}/predict`, {
        method: 'POST',
        body: form,
      });
      assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
      assert.ok(
        predicted.body.predictions.every((prediction) => prediction.className === dataset.classNames[prediction.label]),
      );
      labels.push(...predicted.body.predictions.map((prediction) => prediction.label));
    }
    const right = labels.filter((label, i) => label === dataset.test.labels[i]).length;
    assert.ok(right / count > 0.15, `predict recognised ${right} of ${count} test images`);
    // The trained model itself, on the data set's own bytes: the API's answers must be the same,
    // so the PNG round trip, the colour order and the normalisation match training's.
    await startBackend('wasm', pino({ level: 'silent' }));
    const { model } = await loadArtifact(service.config.ARTIFACTS_DIR, job.id);
    const direct = tf.tidy(() =>
      tf.argMax(
        model.predict(
          normalisedImages(dataset.test.images.subarray(0, count * 3072), count, dataset.shape),
        ) as tf.Tensor2D,
        1,
      ),
    );
    const directLabels = Array.from(await direct.data());
    direct.dispose();
    model.dispose();
    const agreeing = labels.filter((label, i) => label === directLabels[i]).length;
    assert.ok(agreeing >= count - 2, `predict agreed with the model on only ${agreeing} of ${count} images`);

    // A wider picture, the test image (doubled) in the middle of noise: the natural preprocessing
    // takes the centred square, so the answer is the test image's, not a squeezed whole's.
    const pixels = Buffer.from(dataset.test.images.subarray(0, 3072));
    const square = await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
      .resize(64, 64, { kernel: 'nearest' })
      .raw()
      .toBuffer();
    const wide = Buffer.from(Array.from({ length: 128 * 64 * 3 }, (_, i) => (i * 7919) % 251));
    for (let y = 0; y < 64; y++) square.copy(wide, (y * 128 + 32) * 3, y * 64 * 3, (y + 1) * 64 * 3);
    const widePng = await sharp(wide, { raw: { width: 128, height: 64, channels: 3 } })
      .png()
      .toBuffer();
    const explained = await request<PredictResponse>(`${service.url}/jobs/${job.id}/predict?explain=1`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: new Uint8Array(widePng),
    });
    assert.equal(explained.status, 200, JSON.stringify(explained.body));
    const [centred] = explained.body.predictions;
    assert.deepEqual(
      centred?.explanation && { ...centred.explanation, input: centred.explanation.input.slice(0, 22) },
      {
        preprocess: 'natural',
        inverted: false,
        crop: { left: 32, top: 0, width: 64, height: 64 },
        input: 'data:image/png;base64,',
      },
    );
    assert.equal(centred?.label, labels[0], 'the centred square answers as the test image does');
  });

  it('trains AlexNet (56,826,698 parameters) through the same API and predicts a real CIFAR image file', async () => {
    // AlexNet learns about 5 images/s on two cores: a few steps prove the pipeline, not the accuracy.
    const job = await runJob(
      service,
      { model: 'alexnet', dataset: 'cifar10', epochs: 1, trainLimit: 48, testLimit: 100, batchSize: 16, seed: 3 },
      { timeoutMs: 240_000, intervalMs: 250 },
    );
    assert.equal(job.state, 'completed', job.error?.message);
    assert.equal(job.result?.params, 56826698);
    assert.equal(job.request.weightDecay, 1e-4);
    assert.equal(job.epochs.length, 1);
    assert.equal(job.result?.total, 100);
    assert.ok(Number.isFinite(job.result?.testLoss));

    const prediction = await predictsTestImage(job.id, 42);
    const total = prediction.top.reduce((sum, entry) => sum + entry.probability, 0);
    assert.ok(total > 0.4 && total <= 1.0001, `top-5 probabilities sum to ${total}`);
    // Its download, with the shipped module for the adaptive pooling and dropout, in stock TensorFlow.js.
    await assertDownloadPredictsAlike(job.id, 42, prediction);
  });

  it('trains ResNet-20 (269,722 parameters) with its recipe by default, predicts, and its download (standard layers only) predicts alike in stock TensorFlow.js', async () => {
    const job = await runJob(
      service,
      { model: 'resnet20', dataset: 'cifar10', epochs: 1, trainLimit: 256, testLimit: 100, seed: 3 },
      { timeoutMs: 240_000, intervalMs: 250 },
    );
    assert.equal(job.state, 'completed', job.error?.message);
    assert.equal(job.result?.params, 269722);
    assert.deepEqual(
      {
        learningRate: job.request.learningRate,
        batchSize: job.request.batchSize,
        learningRateSchedule: job.request.learningRateSchedule,
        weightDecay: job.request.weightDecay,
        augment: job.request.augment,
      },
      {
        learningRate: 0.1,
        batchSize: 128,
        learningRateSchedule: { type: 'cosine', warmupEpochs: 0, minLearningRate: 0.001 },
        weightDecay: 1e-4,
        augment: true,
      },
    );
    assert.equal(job.result?.total, 100);
    assert.ok(Number.isFinite(job.result?.testLoss));
    const prediction = await predictsTestImage(job.id, 7);
    await assertDownloadPredictsAlike(job.id, 7, prediction);
  });
});
