/** The dashboard chart's axes: tick values and the ranges the curves are drawn on (src/dashboard/chart.js, in Node). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accuracyAxes, lossAxes, plotRange, ticks } from '../../src/dashboard/chart.js';

describe('ticks', () => {
  it('steps by 1, 2 or 5 times a power of ten, covering the range', () => {
    assert.deepEqual(ticks(0, 2.3, 5), [0, 0.5, 1, 1.5, 2]);
    assert.deepEqual(ticks(0, 125, 6), [0, 50, 100]);
    assert.deepEqual(ticks(1, 2, 6), [1, 1.2, 1.4, 1.6, 1.8, 2]);
    assert.deepEqual(ticks(0.31, 0.47, 5), [0.35, 0.4, 0.45]);
  });

  it('gives clean decimals, not floating-point residue', () => {
    for (const value of ticks(0, 0.7, 7)) assert.equal(value, Number(value.toFixed(10)));
  });

  it('copes with an empty range', () => {
    assert.deepEqual(ticks(3, 3, 5), [3]);
  });
});

describe('plotRange', () => {
  it('runs the loss axis from 0 when the losses spread widely, with 5% above the highest', () => {
    const range = plotRange(
      [
        { x: 5, y: 2.3 },
        { x: 125, y: 0.5 },
      ],
      lossAxes,
    );
    assert.deepEqual({ ...range, yMax: Number(range.yMax.toFixed(6)) }, { xMin: 0, xMax: 125, yMin: 0, yMax: 2.415 });
  });

  it('zooms into a narrow band of values, with a margin, so that close curves can be told apart', () => {
    const range = plotRange(
      [
        { x: 1, y: 2.2 },
        { x: 2, y: 2.3 },
      ],
      lossAxes,
    );
    assert.deepEqual(
      [range.yMin, range.yMax].map((value) => Number(value.toFixed(6))),
      [2.19, 2.31],
    );
  });

  it('starts the accuracy axis at epoch 1 and keeps it at least one epoch wide', () => {
    assert.deepEqual(plotRange([{ x: 1, y: 0.5 }], accuracyAxes), { xMin: 1, xMax: 2, yMin: 0, yMax: 0.525 });
  });
});
