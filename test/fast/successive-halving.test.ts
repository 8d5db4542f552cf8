import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goesOn, isRung } from '../../src/training/successive-halving.ts';

const rule = { type: 'successiveHalving' as const, reductionFactor: 3, minEpochs: 2 };

describe('successive halving', () => {
  it('judges runs at the rungs minEpochs × reductionFactor^k only', () => {
    assert.deepEqual(
      Array.from({ length: 20 }, (_, i) => i + 1).filter((epoch) => isRung(rule, epoch)),
      [2, 6, 18],
    );
  });

  it('lets a run go on while fewer than reductionFactor reached the rung, then only the best 1/reductionFactor', () => {
    assert.equal(goesOn(rule, 0.1, [0.9, 0.1]), true, 'too few to judge');
    assert.equal(goesOn(rule, 0.1, [0.9, 0.5, 0.1]), false);
    assert.equal(goesOn(rule, 0.9, [0.9, 0.5, 0.1]), true);
    // Six reached: the best two go on.
    const six = [0.2, 0.8, 0.5, 0.7, 0.1, 0.6];
    assert.deepEqual(six.map((value) => goesOn(rule, value, six)), [false, true, false, true, false, false]);
  });
});
