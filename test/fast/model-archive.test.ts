import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import { normalisedImages } from '../../src/datasets/normalise.ts';
import { adaptiveAveragePooling2d } from '../../src/models/adaptive-average-pooling.ts';
import { saveArtifact, type ArtifactMetadata } from '../../src/models/artifact.ts';
import { archiveFiles, modelArchive } from '../../src/models/model-archive.ts';
import { seededDropout } from '../../src/models/seeded-dropout.ts';
import { extractArchive, stockTfjsProbabilities } from '../support/stock-tfjs.ts';

const folders: string[] = [];
before(async () => {
  assert.equal(await startBackend('cpu', pino({ level: 'silent' })), 'cpu');
});
after(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

/** Deterministic image bytes covering 0..255. */
function imageBytes(count: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: count }, (_, i) => (i * 37 + seed * 101 + ((i * i) % 13)) % 256);
}

describe('modelArchive', () => {
  it('zips a model with both custom layers that stock TensorFlow.js loads and answers exactly as the service does', async () => {
    const shape = { height: 10, width: 9, channels: 3 };
    // Pooling 6x5 maps to 4x7, so windows overlap, and to more cells than it has, as AlexNet's on CIFAR-10 does.
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [10, 9, 3], filters: 4, kernelSize: 3, strides: 1, activation: 'relu' }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        adaptiveAveragePooling2d({ outputSize: [4, 7] }),
        tfl.layers.flatten(),
        seededDropout({ rate: 0.5, seed: 3 }),
        tfl.layers.dense({ units: 3 }),
      ],
    });
    const root = await mkdtemp(path.join(tmpdir(), 'model-archive-test-'));
    folders.push(root);
    const metadata: ArtifactMetadata = {
      jobId: 'job-archive',
      dataset: 'tiny',
      shape,
      classNames: ['cat', 'dog', 'fox'],
      imageKind: 'natural',
    };
    await saveArtifact(root, model, metadata);

    const { folder, files } = await extractArchive(await modelArchive(root, 'job-archive', 'alexnet'), root);
    assert.deepEqual(files, Object.values(archiveFiles).sort());
    const described = JSON.parse(await readFile(path.join(folder, archiveFiles.metadata), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(described, {
      jobId: 'job-archive',
      model: 'alexnet',
      dataset: 'tiny',
      classNames: ['cat', 'dog', 'fox'],
      input: {
        shape: [null, 10, 9, 3],
        layout: 'NHWC, channels grey (1) or RGB (3)',
        normalisation: { formula: '(x / 255 - 0.5) / 0.5', from: [0, 255], to: [-1, 1] },
        preprocess: 'natural',
        preprocessSteps:
          "A photograph: take the largest centred part with the model's aspect ratio, then resize it to the model's size.",
      },
      output: 'one logit per class, in the order of classNames: apply softmax for probabilities',
    });
    const modelJson = JSON.parse(await readFile(path.join(folder, archiveFiles.model), 'utf8')) as {
      format: string;
      weightsManifest: { paths: string[] }[];
    };
    assert.equal(modelJson.format, 'layers-model');
    assert.deepEqual(
      modelJson.weightsManifest.map((group) => group.paths),
      [[archiveFiles.weights]],
    );

    const images = [imageBytes(270, 1), imageBytes(270, 2), imageBytes(270, 3)];
    const joined = new Uint8Array(images.flatMap((image) => [...image]));
    const expected = tf.tidy(
      () =>
        tf
          .softmax(model.predict(normalisedImages(joined, images.length, shape)) as tf.Tensor2D)
          .arraySync() as number[][],
    );
    const actual = await stockTfjsProbabilities(folder, images);
    assert.equal(actual.length, 3);
    actual.forEach((row, i) =>
      row.forEach((probability, j) =>
        assert.ok(
          Math.abs(probability - (expected[i]?.[j] ?? NaN)) < 1e-6,
          `image ${i} class ${j}: ${probability} against ${expected[i]?.[j]}`,
        ),
      ),
    );
    assert.notDeepEqual(
      expected[0],
      expected[1],
      'different images answer differently, so the comparison means something',
    );
    model.dispose();
  });
});
