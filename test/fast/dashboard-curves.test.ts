/** The points the dashboard's charts draw from a job's history, and how compared jobs are told apart (src/dashboard/curves.js, in Node). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EpochSummary } from '../../src/contract/job.ts';
import {
  bestByAccuracy,
  differingFields,
  testAccuracy,
  trainingLoss,
  validationLoss,
} from '../../src/dashboard/curves.js';

const epoch = (number: number, loss: number, more: Partial<EpochSummary> = {}): EpochSummary => ({
  epoch: number,
  loss,
  testAccuracy: 0.5 + number / 10,
  seconds: 1,
  imagesPerSecond: 100,
  ...more,
});

describe('trainingLoss', () => {
  it('puts each loss log line at its batch counted from the start', () => {
    const logs = [
      { epoch: 1, batch: 5, loss: 2.3 },
      { epoch: 1, batch: 10, loss: 2.1 },
      { epoch: 2, batch: 5, loss: 1.9 },
    ];
    assert.deepEqual(trainingLoss({ logs, epochs: [epoch(1, 2.2)], batchesPerEpoch: 10 }), [
      { x: 5, y: 2.3 },
      { x: 10, y: 2.1 },
      { x: 15, y: 1.9 },
    ]);
  });
  it("draws the epochs' mean losses, at each epoch's last batch, when the epochs were too short to log a line", () => {
    // 2 epochs × 94 batches with logEvery 100: no log line at all.
    assert.deepEqual(trainingLoss({ logs: [], epochs: [epoch(1, 2.1), epoch(2, 1.4)], batchesPerEpoch: 94 }), [
      { x: 94, y: 2.1 },
      { x: 188, y: 1.4 },
    ]);
    assert.deepEqual(trainingLoss({ logs: [], epochs: [], batchesPerEpoch: 94 }), []);
  });
});

describe('validationLoss', () => {
  it('has a point at the last batch of each epoch that validated, and none for the others', () => {
    const epochs = [epoch(1, 2, { validationLoss: 1.8 }), epoch(2, 1.5), epoch(3, 1.2, { validationLoss: 1.1 })];
    assert.deepEqual(validationLoss({ logs: [], epochs, batchesPerEpoch: 94 }), [
      { x: 94, y: 1.8 },
      { x: 282, y: 1.1 },
    ]);
  });
});

describe('testAccuracy', () => {
  it('has a point per epoch', () => {
    assert.deepEqual(testAccuracy([epoch(1, 2), epoch(2, 1)]), [
      { x: 1, y: 0.6 },
      { x: 2, y: 0.7 },
    ]);
  });
});

describe('differingFields', () => {
  it('names the request fields whose values are not all equal, in request order', () => {
    const jobs = [
      { request: { learningRate: 0.1, seed: 1, batchSize: 16, augment: false } },
      { request: { learningRate: 0.05, seed: 1, batchSize: 16, augment: true } },
      { request: { learningRate: 0.1, seed: 1, batchSize: 16, augment: false } },
    ];
    assert.deepEqual(differingFields(jobs), ['learningRate', 'augment']);
  });

  it('compares values as JSON, so equal objects are equal', () => {
    const schedule = () => ({ type: 'step', stepEpochs: 2, factor: 0.5 });
    const jobs = [{ request: { learningRateSchedule: schedule() } }, { request: { learningRateSchedule: schedule() } }];
    assert.deepEqual(differingFields(jobs), []);
  });

  it('names none for no jobs', () => {
    assert.deepEqual(differingFields([]), []);
  });
});

describe('bestByAccuracy', () => {
  const result = (testAccuracy: number) => ({ testAccuracy });

  it('picks the completed job with the highest test accuracy, the first of equals', () => {
    const jobs = [
      { id: 'a', result: null },
      { id: 'b', result: result(0.8) },
      { id: 'c', result: result(0.9) },
      { id: 'd', result: result(0.9) },
    ];
    assert.equal(bestByAccuracy(jobs), 'c');
  });

  it('picks none while none has completed', () => {
    assert.equal(bestByAccuracy([{ id: 'a', result: null }]), null);
  });
});
