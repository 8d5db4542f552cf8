/**
 * TrainingStep's seams (src/training/training-step.ts): images, gradients and apply, called apart
 * as the profile bench calls them, must train exactly as run(), the trainer's whole step.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import { lenet5 } from '../../src/models/lenet5.ts';
import { TrainingStep } from '../../src/training/training-step.ts';

const shape = { height: 28, width: 28, channels: 1 };
const batch = 16;
const settings = { optimizer: 'sgd' as const, learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4 };
const batches = Array.from({ length: 3 }, (_, b) => ({
  images: Uint8Array.from({ length: batch * 28 * 28 }, (_, i) => (i * 31 + b * 17) % 256),
  labels: Int32Array.from({ length: batch }, (_, i) => (i + b) % 10),
}));

describe('the training step', () => {
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
  });

  it('through its seams trains exactly as run(), and leaves no tensors behind', async () => {
    const whole = lenet5.build(shape, 10, 3);
    const parts = lenet5.build(shape, 10, 3);
    const wholeStep = new TrainingStep(whole, shape, 10, settings);
    const partsStep = new TrainingStep(parts, shape, 10, settings);
    try {
      const wholeLosses: number[] = [];
      const partsLosses: number[] = [];
      for (const { images, labels } of batches) {
        const loss = wholeStep.run(images, labels);
        wholeLosses.push((await loss.data())[0] as number);
        loss.dispose();

        const tensorsBefore = tf.memory().numTensors;
        const xs = partsStep.images(images, labels.length);
        let forwardDone = false;
        const { loss: partLoss, grads } = partsStep.gradients(xs, labels, () => (forwardDone = true));
        assert.ok(forwardDone);
        assert.equal(grads.length, partsStep.variables.length);
        xs.dispose();
        partsStep.apply(grads);
        tf.dispose(grads);
        partsLosses.push((await partLoss.data())[0] as number);
        partLoss.dispose();
        // The optimizer makes its momentum buffers on the first step only.
        if (partsStep.optimizer.iterations > 1) assert.equal(tf.memory().numTensors, tensorsBefore);
      }
      assert.deepEqual(partsLosses, wholeLosses);
      const values = (model: typeof whole) => model.getWeights().map((weight) => weight.dataSync());
      assert.deepEqual(values(parts), values(whole));
    } finally {
      wholeStep.dispose();
      partsStep.dispose();
      whole.dispose();
      parts.dispose();
    }
  });
});
