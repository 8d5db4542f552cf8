/**
 * The training loss with label smoothing (src/training/loss.ts) is PyTorch's
 * CrossEntropyLoss(label_smoothing=ε), value and gradient, on the wasm backend (where the plain
 * part is our own kernel) and on cpu (TF.js's op); ε = 0 is the notebook's loss, bit for bit.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import { meanSoftmaxCrossEntropy } from '../../src/backends/training-ops.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { meanTrainingLoss } from '../../src/training/loss.ts';
import { TrainingStep } from '../../src/training/training-step.ts';
import { randomValues } from '../support/random-values.ts';

/**
 * PyTorch's documented formula, in double precision: targets t = (1 − ε)·onehot + ε/K, the loss
 * the batch's mean of −Σₖ tₖ·log softmax(z)ₖ and its gradient (softmax(z) − t) / batch.
 */
function pytorchSmoothedLoss(
  logits: readonly number[][],
  labels: readonly number[],
  epsilon: number,
): { loss: number; gradient: number[][] } {
  const classes = (logits[0] as number[]).length;
  let total = 0;
  const gradient = logits.map((row, i) => {
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((sum, z) => sum + Math.exp(z - max), 0)) + max;
    return row.map((z, k) => {
      const target = (1 - epsilon) * (k === labels[i] ? 1 : 0) + epsilon / classes;
      total -= target * (z - logSum);
      return (Math.exp(z - logSum) - target) / logits.length;
    });
  });
  return { loss: total / logits.length, gradient };
}

function ours(
  logits: readonly number[][],
  labels: readonly number[],
  epsilon: number,
): { loss: number; gradient: number[][] } {
  const classes = (logits[0] as number[]).length;
  return tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((z: tf.Tensor) =>
      meanTrainingLoss(z, Int32Array.from(labels), classes, epsilon),
    )(tf.tensor2d(logits.map((row) => [...row])));
    return { loss: value.dataSync()[0] as number, gradient: grad.arraySync() as number[][] };
  });
}

function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, PyTorch's formula ${expected}`);
}

// Three images, four classes: one confident and right, one confident and wrong, one unsure.
const smallLogits = [
  [4.0, -1.0, 0.5, 0.0],
  [2.5, 0.3, -0.7, -3.0],
  [0.1, 0.2, 0.0, -0.1],
];
const smallLabels = [0, 3, 1];

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`the training loss with label smoothing, on ${backend}`, () => {
    before(async () => {
      await startBackend(backend, pino({ level: 'silent' }));
      assert.equal(tf.getBackend(), backend);
    });

    for (const epsilon of [0, 0.1, 0.5]) {
      it(`equals PyTorch's CrossEntropyLoss(label_smoothing=${epsilon}) on a small example, value and gradient`, () => {
        const expected = pytorchSmoothedLoss(smallLogits, smallLabels, epsilon);
        const actual = ours(smallLogits, smallLabels, epsilon);
        assertClose(actual.loss, expected.loss, 1e-6 * Math.max(1, expected.loss), 'loss');
        actual.gradient.forEach((row, i) =>
          row.forEach((value, k) =>
            assertClose(value, expected.gradient[i]?.[k] as number, 1e-6, `gradient [${i}, ${k}]`),
          ),
        );
      });
    }

    it('stays finite and exact on large logits (scale 100), 10 classes, a batch of 64', () => {
      const values = randomValues(64 * 10, 11);
      const logits = Array.from({ length: 64 }, (_, i) =>
        [...values.subarray(i * 10, i * 10 + 10)].map((v) => v * 100),
      );
      const labels = Array.from({ length: 64 }, (_, i) => (i * 7) % 10);
      const expected = pytorchSmoothedLoss(logits, labels, 0.1);
      const actual = ours(logits, labels, 0.1);
      assertClose(actual.loss, expected.loss, 1e-5 * Math.max(1, expected.loss), 'loss');
      const worst = Math.max(
        ...actual.gradient.flatMap((row, i) =>
          row.map((value, k) => Math.abs(value - (expected.gradient[i]?.[k] ?? 0))),
        ),
      );
      assert.ok(worst <= 1e-6, `largest gradient difference ${worst}`);
    });

    it('with 0 is the plain cross-entropy, value and gradient bit for bit', () => {
      const values = randomValues(64 * 10, 5);
      const labels = Int32Array.from({ length: 64 }, (_, i) => (i * 3) % 10);
      const lossAndGradient = (loss: (z: tf.Tensor) => tf.Scalar) =>
        tf.tidy(() => {
          const { value, grad } = tf.valueAndGrad(loss)(tf.tensor2d(values, [64, 10]));
          return { value: value.dataSync()[0], gradient: [...grad.dataSync()] };
        });
      assert.deepEqual(
        lossAndGradient((z) => meanTrainingLoss(z, labels, 10, 0)),
        lossAndGradient((z) => meanSoftmaxCrossEntropy(z, labels, 10)),
      );
    });
  });
}

// On the trainer's backend only: LeNet-5 steps take seconds on cpu.
describe('a training step with label smoothing 0', () => {
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
  });

  it('LeNet-5 steps train to the losses of a step that names no smoothing (the notebook’s), bit for bit', () => {
    const shape = { height: 28, width: 28, channels: 1 };
    const images = Uint8Array.from(randomValues(16 * 28 * 28, 3), (value) => Math.floor((value + 1) * 127.5));
    const labels = Int32Array.from({ length: 16 }, (_, i) => i % 10);
    const optimizer = { optimizer: 'sgd', learningRate: 0.01, momentum: 0.9, weightDecay: 0 } as const;
    const lossesOf = (labelSmoothing: number | undefined): number[] => {
      const model = lenet5.build(shape, 10, 7);
      const step = new TrainingStep(model, shape, 10, { ...optimizer, labelSmoothing });
      try {
        return Array.from({ length: 5 }, () => {
          const loss = step.run(images, labels);
          const value = loss.dataSync()[0] as number;
          loss.dispose();
          return value;
        });
      } finally {
        step.dispose();
        model.dispose();
      }
    };
    const notebook = lossesOf(undefined);
    assert.deepEqual(lossesOf(0), notebook);
    assert.notDeepEqual(lossesOf(0.1), notebook, 'smoothing changes the loss');
  });
});
