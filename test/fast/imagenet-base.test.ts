/**
 * MobileNetV2 from its ImageNet base: the input layer that brings the service's images to the
 * base's form, the weights taken from nsfwjs by Keras layer name, what `top` and `head` freeze, and
 * frozen BatchNorm normalising with its moving statistics.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import type { JobSettings } from '../../src/contract/job-request.ts';
import { startFromImagenet } from '../../src/bases/imagenet.ts';
import { networkFor, networkParameters } from '../../src/models/build-for-job.ts';
import { ImageInput } from '../../src/models/image-input.ts';
import { storedJobSettings } from '../support/job-settings.ts';

const photos = { height: 32, width: 32, channels: 3 };
const fromImagenet = (overrides: Partial<JobSettings>): JobSettings => ({
  ...storedJobSettings,
  model: 'mobilenetv2',
  initFrom: 'imagenet',
  inputSize: 64,
  trainLayers: 'top',
  ...overrides,
});

before(async () => {
  await startBackend('wasm', pino({ level: 'silent' }));
});

describe('ImageInput', () => {
  it('resizes, repeats grey into colour and maps [-1, 1] to the range given', () => {
    const layer = new ImageInput({ size: [4, 6], channels: 3, scale: 0.5, offset: 0.5 });
    const grey = tf.tensor4d([-1, 1, -1, 1], [1, 2, 2, 1]);
    const out = layer.apply(grey) as tf.Tensor;
    assert.deepEqual(out.shape, [1, 4, 6, 3]);
    const values = out.dataSync();
    assert.ok(Math.min(...values) >= 0 && Math.max(...values) <= 1);
    assert.equal(values[0], 0, 'the top-left pixel, -1, becomes 0 in every channel');
    assert.equal(values[2], 0);
    tf.dispose([grey, out]);
  });

  it('travels in a saved model and loads back the same', async () => {
    const input = tfl.input({ shape: [8, 8, 1] });
    const output = new ImageInput({ size: [16, 16], channels: 3, scale: 0.5, offset: 0.5 }).apply(input);
    const model = tfl.model({ inputs: input, outputs: output as tfl.SymbolicTensor });
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(
        async (artifacts) => (
          (saved = artifacts),
          { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }
        ),
      ),
    );
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved as tf.io.ModelArtifacts));
    const x = tf.randomUniform([2, 8, 8, 1], -1, 1);
    const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    assert.deepEqual(b.shape, [2, 16, 16, 3]);
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
  });
});

describe('MobileNetV2 from the ImageNet base', () => {
  it("takes ImageNet's weights for the stem and blocks 0-10 only, by Keras name", () => {
    const model = networkFor(fromImagenet({}), photos, 3);
    const fresh = networkFor(fromImagenet({}), photos, 3);
    const layers = startFromImagenet(model);
    // Conv1, bn_Conv1, and expanded_conv's 4 and blocks 1-10's 6 weighted layers each.
    assert.equal(layers, 2 + 4 + 10 * 6);
    const same = (name: string) => {
      const ours = model.getLayer(name).getWeights();
      const theirs = fresh.getLayer(name).getWeights();
      return ours.every((w, i) => {
        const other = (theirs[i] as tf.Tensor).dataSync();
        return w.dataSync().every((v, k) => v === other[k]);
      });
    };
    assert.ok(!same('Conv1') && !same('block_10_project_BN'), 'the base layers hold ImageNet weights');
    assert.ok(
      same('block_11_expand') && same('Conv_1') && same('predictions'),
      'the rest start as the seed draws them',
    );
    model.dispose();
    fresh.dispose();
  });

  it('top trains blocks 11-16, the last convolution and the classifier; frozen BatchNorm uses its moving statistics', () => {
    const model = networkFor(fromImagenet({}), photos, 3);
    startFromImagenet(model);
    const trainable = new Set(model.trainableWeights.map((w) => w.originalName.split('/')[0]));
    assert.ok(trainable.has('block_11_expand') && trainable.has('Conv_1_bn') && trainable.has('predictions'));
    assert.ok(
      ![...trainable].some((name) => /^(Conv1|bn_Conv1|expanded_conv|block_[0-9]_|block_10_)/.test(name ?? '')),
    );
    const upToBase = tfl.model({
      inputs: model.inputs,
      outputs: model.getLayer('block_10_project_BN').output as tfl.SymbolicTensor,
    });
    const x = tf.randomUniform([4, 32, 32, 3], -1, 1);
    const training = upToBase.apply(x, { training: true }) as tf.Tensor;
    const inference = upToBase.predict(x) as tf.Tensor;
    assert.ok(
      (tf.max(tf.abs(tf.sub(training, inference))).dataSync()[0] ?? 1) < 1e-5,
      'the frozen part computes the same in training',
    );
    tf.dispose([x, training, inference]);
    model.dispose();
  });

  it('head: a classifier on the pooled output of block 10, the only layer that trains', () => {
    const model = networkFor(fromImagenet({ trainLayers: 'head' }), { height: 28, width: 28, channels: 1 }, 10);
    startFromImagenet(model);
    assert.equal(model.layers.at(-1)?.name, 'predictions');
    assert.deepEqual(model.outputs[0]?.shape, [null, 10]);
    assert.equal(
      model.trainableWeights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0),
      96 * 10 + 10,
    );
    assert.ok(networkParameters(model) > 96 * 10 + 10, 'result.params counts the frozen base too');
    model.dispose();
  });
});
