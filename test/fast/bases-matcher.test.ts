/**
 * Which of our networks a base is: layers matched by name (our builds' unnamed layers by class and
 * order), with the weight shapes of the network built for the base's input; and starting a fresh
 * network from a base, layer by layer, for the worker.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import { applyBase, baseMismatch } from '../../src/bases/apply-base.ts';
import { BaseError } from '../../src/bases/base-error.ts';
import { weightLayers } from '../../src/bases/layer-keys.ts';
import { matchNetwork } from '../../src/bases/network-match.ts';
import type { BaseDescription } from '../../src/bases/stored-base.ts';
import type { ImageShape } from '../../src/datasets/dataset.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { mobilenetv2 } from '../../src/models/mobilenetv2.ts';
import { resnet20 } from '../../src/models/resnet20.ts';
import { savedModel } from '../support/base-archives.ts';

const MNIST: ImageShape = { height: 28, width: 28, channels: 1 };
const IMAGENET: ImageShape = { height: 224, width: 224, channels: 3 };

before(async () => {
  assert.equal(await startBackend('wasm', pino({ level: 'silent' })), 'wasm');
});

/** A model as a base arrives: saved by tfjs-layers (tf.io.withSaveHandler) and loaded back, as the upload's check loads it. */
async function asUploaded(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  const { modelTopology, weightSpecs, weights } = await savedModel(model);
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs, weightData }));
}

const values = (model: tfl.LayersModel) => model.getWeights().map((weight) => Array.from(weight.dataSync()));

describe('matching a base to a network', () => {
  it('a LeNet-5 build matches lenet5, its unnamed layers by class and order whatever tfjs numbered them', async () => {
    // Another build first, so this one's tfjs names (conv2d_Conv2D3 …) differ from a first build's.
    lenet5.build(MNIST, 10, 0).dispose();
    const base = await asUploaded(lenet5.build(MNIST, 10, 1));
    assert.match(base.layers[0]?.name ?? '', /^conv2d_Conv2D\d+$/);
    const match = matchNetwork(weightLayers(base), MNIST);
    assert.equal(match.network, 'lenet5');
    assert.equal(match.classes, 10);
    assert.deepEqual(
      match.coveredLayers.map((layer) => layer.key),
      ['conv2d', 'conv2d_1', 'dense', 'dense_1', 'dense_2'],
    );
    base.dispose();
  });

  it('a MobileNetV2 build (224×224×3, 1000 classes, as Keras’s) matches mobilenetv2 by its Keras layer names', async () => {
    const base = await asUploaded(mobilenetv2.build(IMAGENET, 1000, 1));
    const match = matchNetwork(weightLayers(base), IMAGENET);
    assert.equal(match.network, 'mobilenetv2');
    assert.equal(match.classes, 1000);
    assert.equal(match.coveredLayers.length, 105, '52 convolutions and 52 BatchNorms, and the classifier');
    assert.deepEqual(
      match.coveredLayers.slice(0, 3).map((layer) => layer.key),
      ['Conv1', 'bn_Conv1', 'expanded_conv_depthwise'],
    );
    assert.equal(match.coveredLayers.at(-1)?.key, 'predictions');
    base.dispose();
  });

  it('a MobileNetV2 inside a model with a head of its own (Keras’s transfer learning) matches, without a classifier', async () => {
    const shape = { height: 32, width: 32, channels: 3 };
    const backbone = mobilenetv2.build(shape, 10, 2);
    const input = tfl.input({ shape: [32, 32, 3] });
    const features = backbone.apply(input) as tfl.SymbolicTensor;
    const head = tfl.layers.dense({ units: 5, name: 'my_head' }).apply(features) as tfl.SymbolicTensor;
    const base = await asUploaded(tfl.model({ inputs: input, outputs: head }));
    const match = matchNetwork(weightLayers(base), shape);
    assert.equal(match.network, 'mobilenetv2');
    assert.equal(match.classes, 10, "the nested network's own classifier is there");
    base.dispose();
  });

  it('a ResNet-20 build matches resnet20, not lenet5 or mobilenetv2', async () => {
    const shape = { height: 32, width: 32, channels: 3 };
    const base = await asUploaded(resnet20.build(shape, 10, 1));
    const match = matchNetwork(weightLayers(base), shape);
    assert.equal(match.network, 'resnet20');
    assert.equal(match.coveredLayers.length, 39);
    base.dispose();
  });

  it('a model Keras named (conv2d_7, dense_12, …) matches lenet5 too', async () => {
    const names = ['conv2d_7', 'max_pooling2d_3', 'conv2d_8', 'max_pooling2d_4', 'flatten_2', 'dense_12', 'dense_13'];
    const layer = (index: number) => ({ name: names[index] as string });
    const keras = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ ...layer(0), inputShape: [28, 28, 1], filters: 6, kernelSize: 5, activation: 'relu' }),
        tfl.layers.maxPooling2d({ ...layer(1), poolSize: 2 }),
        tfl.layers.conv2d({ ...layer(2), filters: 16, kernelSize: 5, activation: 'relu' }),
        tfl.layers.maxPooling2d({ ...layer(3), poolSize: 2 }),
        tfl.layers.flatten(layer(4)),
        tfl.layers.dense({ ...layer(5), units: 120, activation: 'relu' }),
        tfl.layers.dense({ ...layer(6), units: 84, activation: 'relu' }),
      ],
    });
    const base = await asUploaded(keras);
    const match = matchNetwork(weightLayers(base), MNIST);
    assert.equal(match.network, 'lenet5');
    assert.equal(match.classes, null, 'it ends before the classifier: every job from it gets a new head');
    base.dispose();
  });

  it('a model matching none is refused naming the closest network and the layer it lacks', async () => {
    const other = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 7, kernelSize: 5 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10 }),
      ],
    });
    const base = await asUploaded(other);
    assert.throws(
      () => matchNetwork(weightLayers(base), MNIST),
      (error: unknown) =>
        error instanceof BaseError &&
        error.message.startsWith(
          "the model matches none of this server's networks (lenet5, alexnet, resnet20, mobilenetv2): closest is lenet5, which has conv2d (Conv2D) with weights [5, 5, 1, 6] [6] where the base's has [5, 5, 1, 7] [7]",
        ),
    );
    base.dispose();
  });
});

describe('starting a network from a base', () => {
  it('sets every layer by name, the classifier too when the class counts agree', async () => {
    const source = lenet5.build(MNIST, 10, 1);
    const base = await asUploaded(source);
    const same = lenet5.build(MNIST, 10, 2);
    assert.deepEqual(applyBase(same, base), {
      covered: ['conv2d', 'conv2d_1', 'dense', 'dense_1', 'dense_2'],
      newHead: false,
    });
    assert.deepEqual(values(same), values(source));

    const fewer = lenet5.build(MNIST, 4, 3);
    const freshHead = values(fewer).slice(-2);
    assert.equal(applyBase(fewer, base).newHead, true);
    assert.deepEqual(values(fewer).slice(0, -2), values(source).slice(0, -2), 'every layer but the classifier');
    assert.deepEqual(values(fewer).slice(-2), freshHead, 'the classifier as initialised');
    base.dispose();
    assert.deepEqual(values(fewer).slice(0, 2), values(source).slice(0, 2), 'the weights outlive the base');
    for (const model of [source, same, fewer]) model.dispose();
  });

  it('refuses a network the base does not fit, naming the layer, before setting any', async () => {
    const base = await asUploaded(lenet5.build(MNIST, 10, 1));
    const larger = lenet5.build({ height: 32, width: 32, channels: 1 }, 10, 2);
    const before = values(larger);
    assert.throws(
      () => applyBase(larger, base),
      /the base's layer dense has weights \[256, 120\] \[120\], the network's \[400, 120\] \[120\]/,
    );
    assert.deepEqual(values(larger), before);
    for (const model of [base, larger]) model.dispose();
  });

  it('tells the API beforehand whether a base fits a data set’s images', () => {
    const description = (network: 'lenet5' | 'mobilenetv2', input: ImageShape): BaseDescription => {
      const model = (network === 'lenet5' ? lenet5 : mobilenetv2).build(input, 10, 0);
      const layers = weightLayers(model).map(({ key, className, shapes }) => ({
        name: key,
        className,
        shapes: shapes.map((shape) => [...shape]),
      }));
      model.dispose();
      return {
        format: 'trainer-base/1',
        id: 'b',
        name: 'b',
        owner: '',
        network,
        input: { ...input, channels: input.channels === 1 ? 1 : 3 },
        classes: 10,
        bytes: 0,
        createdAt: new Date().toISOString(),
        coveredLayers: layers,
        weightsBytes: 0,
        weightsSha256: '0'.repeat(64),
      };
    };
    const digits = description('lenet5', MNIST);
    assert.equal(baseMismatch(digits, MNIST), null);
    assert.match(
      baseMismatch(digits, { height: 32, width: 32, channels: 1 }) ?? '',
      /layer dense has weights \[400, 120\]/,
    );
    const photos = description('mobilenetv2', IMAGENET);
    assert.equal(baseMismatch(photos, { height: 32, width: 32, channels: 3 }), null, 'its weights fit any image size');
    assert.match(
      baseMismatch(photos, { height: 32, width: 32, channels: 1 }) ?? '',
      /layer Conv1 has weights \[3, 3, 1, 32\]/,
    );
  });
});
