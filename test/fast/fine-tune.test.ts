import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { startBackend } from '../../src/backends/select.ts';
import { loadArtifact, saveArtifact } from '../../src/models/artifact.ts';
import {
  frozenWeightValues,
  initialiseFrom,
  setFrozenWeights,
  setTrainableLayers,
} from '../../src/models/fine-tune.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { createLogger } from '../../src/logger.ts';
import { loadConfig } from '../../src/config.ts';

const shape = { height: 28, width: 28, channels: 1 };
let folder: string;

before(async () => {
  await startBackend('wasm', createLogger(loadConfig({ LOG_LEVEL: 'silent' })));
  folder = await mkdtemp(path.join(tmpdir(), 'fine-tune-test-'));
});
after(async () => rm(folder, { recursive: true, force: true }));

const values = (model: tfl.LayersModel) => model.getWeights().map((weight) => Array.from(weight.dataSync()));

describe('starting a model from another job’s', () => {
  test('through the saved model: every weight when the class counts agree, all but the last layer (a new head) when not', async () => {
    const source = lenet5.build(shape, 10, 1);
    await saveArtifact(folder, source, {
      jobId: 'source',
      dataset: 'mnist',
      shape,
      classNames: [...'0123456789'],
      imageKind: 'strokes',
    });
    const saved = await loadArtifact(folder, 'source');

    const same = lenet5.build(shape, 10, 2);
    assert.deepEqual(initialiseFrom(same, saved.model), { newHead: false });
    assert.deepEqual(values(same), values(source));

    const fewer = lenet5.build(shape, 4, 3);
    const freshHead = values(fewer).slice(-2);
    assert.deepEqual(initialiseFrom(fewer, saved.model), { newHead: true });
    const started = values(fewer);
    assert.deepEqual(started.slice(0, -2), values(source).slice(0, -2), 'every layer but the last from the source');
    assert.deepEqual(started.slice(-2), freshHead, 'the last layer (kernel, bias) as initialised');
    saved.model.dispose();
    assert.deepEqual(values(fewer), started, 'the weights outlive the source model');
    for (const model of [source, same, fewer]) model.dispose();
  });

  test('dense only: the other layers stop training, and a replica copy gets their values', () => {
    const model = lenet5.build(shape, 10, 4);
    const all = model.trainableWeights.length;
    setTrainableLayers(model, 'dense', 0);
    const dense = model.layers.filter((layer) => layer.getClassName() === 'Dense');
    assert.ok(dense.length >= 2);
    assert.equal(model.trainableWeights.length, dense.length * 2, 'kernel and bias of each dense layer');
    assert.ok(model.trainableWeights.length < all);

    const copy = lenet5.build(shape, 10, 5);
    setTrainableLayers(copy, 'dense', 0);
    setFrozenWeights(copy, frozenWeightValues(model));
    const frozen = (m: tfl.LayersModel) =>
      m.weights.filter((weight) => !weight.trainable).map((weight) => Array.from(weight.read().dataSync()));
    assert.deepEqual(frozen(copy), frozen(model));
    tf.dispose([]);
    model.dispose();
    copy.dispose();
  });
});
