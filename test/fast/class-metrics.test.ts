/** Precision, recall and F1 from confusion matrices worked out by hand (and checked against scikit-learn's zero_division=0). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classMetrics } from '../../src/training/class-metrics.ts';

/** Rounds every number, so sums like 0.5 + 2/3 compare with the fractions written out below. */
function rounded<T>(value: T): T {
  return JSON.parse(
    JSON.stringify(value, (_key, number: unknown) =>
      typeof number === 'number' ? Math.round(number * 1e9) / 1e9 : number,
    ),
  ) as T;
}

describe('classMetrics', () => {
  it('gives per-class precision, recall, F1 and support, 0 for a class never predicted, and leaves a class that never occurs out of the macro means', () => {
    // y_true a a a a b b b c c, y_pred a a a b a b b a a; d neither in the test set nor predicted.
    const matrix = [
      [3, 1, 0, 0],
      [1, 2, 0, 0],
      [2, 0, 0, 0],
      [0, 0, 0, 0],
    ];
    const { perClass, macro } = classMetrics(matrix, ['a', 'b', 'c', 'd']);
    assert.deepEqual(
      rounded(perClass),
      rounded([
        { className: 'a', precision: 3 / 6, recall: 3 / 4, f1: 0.6, support: 4 },
        { className: 'b', precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, support: 3 },
        { className: 'c', precision: 0, recall: 0, f1: 0, support: 2 },
        { className: 'd', precision: 0, recall: 0, f1: 0, support: 0 },
      ]),
    );
    assert.deepEqual(
      rounded(macro),
      rounded({ precision: (0.5 + 2 / 3) / 3, recall: (0.75 + 2 / 3) / 3, f1: (0.6 + 2 / 3) / 3 }),
    );
  });

  it('counts a class that is predicted but absent from the test set in the means, with recall 0', () => {
    const { perClass, macro } = classMetrics(
      [
        [1, 1],
        [0, 0],
      ],
      ['x', 'y'],
    );
    assert.deepEqual(
      rounded(perClass),
      rounded([
        { className: 'x', precision: 1, recall: 0.5, f1: 2 / 3, support: 2 },
        { className: 'y', precision: 0, recall: 0, f1: 0, support: 0 },
      ]),
    );
    assert.deepEqual(rounded(macro), rounded({ precision: 0.5, recall: 0.25, f1: 1 / 3 }));
  });

  it('is 1 everywhere for a perfect model and 0 (not NaN) without test images', () => {
    const perfect = classMetrics(
      [
        [5, 0],
        [0, 7],
      ],
      ['x', 'y'],
    );
    assert.deepEqual(perfect.macro, { precision: 1, recall: 1, f1: 1 });
    assert.deepEqual(
      perfect.perClass.map((metrics) => metrics.support),
      [5, 7],
    );
    const empty = classMetrics(
      [
        [0, 0],
        [0, 0],
      ],
      ['x', 'y'],
    );
    assert.deepEqual(empty.macro, { precision: 0, recall: 0, f1: 0 });
    assert.ok(empty.perClass.every((metrics) => metrics.precision === 0 && metrics.recall === 0 && metrics.f1 === 0));
  });
});
