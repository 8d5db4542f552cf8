/**
 * The optimizers (src/training/optimizers/): Adam against TensorFlow.js's own and against the
 * formula computed here in double precision, AdamW's decoupled weight decay, a learning rate
 * changed between steps, and the state handed out and taken back.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import type { OptimizerName } from '../../src/contract/job-request.ts';
import { adamConstants } from '../../src/training/optimizers/adam.ts';
import { createOptimizer, stateSlots, type StepOptimizer } from '../../src/training/optimizers/optimizer.ts';
import { SeededRandom } from '../../src/random.ts';

const size = 6;
const steps = 5;
const tolerance = 1e-5;

/** Starting weights and one gradient per step, the same for every run. */
function problem(): { start: number[]; gradients: number[][] } {
  const random = new SeededRandom(5);
  const draw = () => Array.from({ length: size }, () => 2 * random.next() - 1);
  return { start: draw(), gradients: Array.from({ length: steps }, draw) };
}

/** Adam's formula, step by step in double precision: PyTorch's Adam (`decoupled` false) and AdamW. */
function adamByHand(rates: readonly number[], weightDecay: number, decoupled: boolean): number[] {
  const { beta1, beta2, epsilon } = adamConstants;
  const { start, gradients } = problem();
  const weights = [...start];
  const first = new Array<number>(size).fill(0);
  const second = new Array<number>(size).fill(0);
  gradients.forEach((gradients, index) => {
    const t = index + 1;
    const rate = rates[index] as number;
    for (let i = 0; i < size; i++) {
      const weight = weights[i] as number;
      const gradient = (gradients[i] as number) + (decoupled ? 0 : weightDecay * weight);
      first[i] = beta1 * (first[i] as number) + (1 - beta1) * gradient;
      second[i] = beta2 * (second[i] as number) + (1 - beta2) * gradient * gradient;
      const corrected = (first[i] as number) / (1 - beta1 ** t);
      const root = Math.sqrt((second[i] as number) / (1 - beta2 ** t));
      weights[i] = (decoupled ? weight * (1 - rate * weightDecay) : weight) - (rate * corrected) / (root + epsilon);
    }
  });
  return weights;
}

/** Our optimizer over one variable, through `steps` steps at `rates` (one per step). */
async function trained(
  optimizer: OptimizerName,
  rates: readonly number[],
  weightDecay: number,
  from?: { steps: number; take: (optimizer: StepOptimizer) => Promise<void> },
): Promise<number[]> {
  const { start, gradients } = problem();
  const variable = tf.tidy(() => tf.variable(tf.tensor1d(start)));
  const settings = { optimizer, learningRate: rates[0] as number, momentum: 0.9, weightDecay };
  let stepper = createOptimizer([variable], settings);
  try {
    for (const [index, values] of gradients.entries()) {
      if (from && index === from.steps) {
        // Goes on in a fresh optimizer from the state of this one, as a resumed run does.
        const state = await stepper.state();
        const next = createOptimizer([variable], settings);
        await next.setState(stepper.iterations, state);
        tf.dispose(state);
        stepper.dispose();
        stepper = next;
        await from.take(stepper);
      }
      stepper.setLearningRate(rates[index] as number);
      const gradient = tf.tensor1d(values);
      stepper.apply([gradient]);
      gradient.dispose();
    }
    return Array.from(await variable.data());
  } finally {
    stepper.dispose();
    variable.dispose();
  }
}

function assertClose(actual: readonly number[], expected: readonly number[], what: string): void {
  actual.forEach((value, i) =>
    assert.ok(
      Math.abs(value - (expected[i] as number)) <= tolerance * Math.max(1, Math.abs(expected[i] as number)),
      `${what}: weight ${i} is ${value}, ${expected[i]} expected`,
    ),
  );
}

describe('optimizers', () => {
  before(() => startBackend('wasm', pino({ level: 'silent' })));

  const rates = [1e-2, 1e-2, 5e-3, 5e-3, 1e-3];

  it('Adam steps as tf.train.adam does (at its epsilon 1e-8) and as the formula computed by hand', async () => {
    const { start, gradients } = problem();
    const reference = tf.tidy(() => tf.variable(tf.tensor1d(start)));
    const theirs = tf.train.adam(0.01, adamConstants.beta1, adamConstants.beta2, adamConstants.epsilon);
    for (const values of gradients) {
      const gradient = tf.tensor1d(values);
      theirs.applyGradients([{ name: reference.name, tensor: gradient }]);
      gradient.dispose();
    }
    const expected = Array.from(await reference.data());
    theirs.dispose();
    reference.dispose();
    const ours = await trained('adam', new Array<number>(steps).fill(0.01), 0);
    assertClose(ours, expected, 'against tf.train.adam');
    assertClose(ours, adamByHand(new Array<number>(steps).fill(0.01), 0, false), 'against the formula');
    assert.notDeepEqual(ours, start, 'it moved the weights');
  });

  it('Adam adds weight decay to the gradient, AdamW shrinks the weights apart from it, each at the rate of its step', async () => {
    const adam = await trained('adam', rates, 0.1);
    const adamw = await trained('adamw', rates, 0.1);
    assertClose(adam, adamByHand(rates, 0.1, false), 'adam');
    assertClose(adamw, adamByHand(rates, 0.1, true), 'adamw');
    const undecayed = adamByHand(rates, 0, false);
    assert.ok(
      adam.some((weight, i) => Math.abs(weight - (undecayed[i] as number)) > 10 * tolerance) &&
        adamw.some((weight, i) => Math.abs(weight - (adam[i] as number)) > 10 * tolerance),
      'weight decay changes the steps, and differently for the two',
    );
  });

  for (const optimizer of ['sgd', 'adam', 'adamw'] as const) {
    it(`${optimizer} hands out its state (${stateSlots(optimizer)} tensor(s) a variable) and goes on from it in a fresh optimizer exactly`, async () => {
      const whole = await trained(optimizer, rates, 0.01);
      const resumed = await trained(optimizer, rates, 0.01, {
        steps: 2,
        take: async (taken) => {
          assert.equal(taken.iterations, 2);
          const state = await taken.state();
          assert.equal(state.length, stateSlots(optimizer));
          tf.dispose(state);
        },
      });
      assert.deepEqual(resumed, whole);
    });
  }

  it('leaves no tensor behind once disposed, and holds no state before its first step', async () => {
    const before = tf.memory().numTensors;
    await trained('adamw', rates, 0.01);
    assert.equal(tf.memory().numTensors, before);
    const variable = tf.tidy(() => tf.variable(tf.zeros([3])));
    const fresh = createOptimizer([variable], { optimizer: 'adam', learningRate: 1e-3, momentum: 0, weightDecay: 0 });
    assert.deepEqual(await fresh.state(), []);
    fresh.dispose();
    variable.dispose();
  });
});
