/**
 * The trainer's lean pieces of a step must compute what the TF.js ops they replace compute: the
 * loss kernel (src/backends/training-ops.ts, its wasm kernels in src/backends/wasm/kernels/) and the layer-by-layer forward pass
 * (src/training/forward.ts).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { alexnet } from '../../src/models/alexnet.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { trainingForward } from '../../src/training/forward.ts';
import { startBackend } from '../../src/backends/select.ts';
import { meanSoftmaxCrossEntropy } from '../../src/backends/training-ops.ts';
import { randomValues } from '../support/random-values.ts';

const batch = 64;
const classes = 10;
const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7) % classes);

/** Loss and gradient with respect to the logits. */
function lossAndGradient(
  logitValues: Float32Array,
  loss: (logits: tf.Tensor) => tf.Scalar,
): { value: number; gradient: Float32Array } {
  return tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad(loss)(tf.tensor2d(logitValues, [batch, classes]));
    return { value: value.dataSync()[0] as number, gradient: grad.dataSync() as Float32Array };
  });
}

const tfLoss = (logits: tf.Tensor): tf.Scalar =>
  tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), logits) as tf.Scalar;

describe('the training step’s loss', () => {
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
  });

  for (const scale of [1, 100]) {
    it(`equals tf.losses.softmaxCrossEntropy on one-hot labels, value and gradient, logits of scale ${scale}`, () => {
      const logits = randomValues(batch * classes, 7 + scale).map((value) => value * scale);
      const ours = lossAndGradient(logits, (l) => meanSoftmaxCrossEntropy(l, labels, classes));
      const reference = lossAndGradient(logits, tfLoss);
      assert.ok(
        Math.abs(ours.value - reference.value) <= 1e-6 * Math.max(1, reference.value),
        `${ours.value} vs ${reference.value}`,
      );
      const worst = ours.gradient.reduce(
        (most, value, i) => Math.max(most, Math.abs(value - (reference.gradient[i] as number))),
        0,
      );
      assert.ok(worst <= 1e-6, `largest gradient difference ${worst}`);
      assert.ok(
        Math.abs(ours.gradient.reduce((sum, value) => sum + value, 0)) < 1e-5,
        'each row of softmax − one-hot sums to 0',
      );
    });
  }

  it('is NaN for a label outside the classes, which the trainer reports as divergence', () => {
    const value = tf.tidy(
      () => meanSoftmaxCrossEntropy(tf.zeros([2, classes]), Int32Array.of(0, classes), classes).dataSync()[0],
    );
    assert.ok(Number.isNaN(value));
  });

  it('keeps no tensors of its own after the step', () => {
    const before = tf.memory().numTensors;
    lossAndGradient(randomValues(batch * classes, 3), (l) => meanSoftmaxCrossEntropy(l, labels, classes));
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('the training forward pass', () => {
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
  });

  const cases = [
    { name: 'LeNet-5 on MNIST', model: lenet5, shape: { height: 28, width: 28, channels: 1 } },
    // Seeded dropout in training mode: both passes must draw the same masks in the same order.
    { name: 'AlexNet on CIFAR-10', model: alexnet, shape: { height: 32, width: 32, channels: 3 } },
  ];
  for (const { name, model: definition, shape } of cases) {
    it(`${name}: layer by layer gives exactly model.apply(x, { training: true })`, () => {
      const x = tf.tensor4d(randomValues(2 * shape.height * shape.width * shape.channels, 11), [
        2,
        shape.height,
        shape.width,
        shape.channels,
      ]);
      const viaApply = definition.build(shape, classes, 5);
      const viaLayers = definition.build(shape, classes, 5);
      try {
        const expected = tf.tidy(() => (viaApply.apply(x, { training: true }) as tf.Tensor).dataSync());
        const actual = tf.tidy(() => trainingForward(viaLayers)(x).dataSync());
        assert.deepEqual(actual, expected);
      } finally {
        tf.dispose([x]);
        viaApply.dispose();
        viaLayers.dispose();
      }
    });
  }
});
