import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goesOn, isRung, rungScore } from '../../src/training/successive-halving.ts';

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
    assert.deepEqual(
      six.map((value) => goesOn(rule, value, six)),
      [false, true, false, true, false, false],
    );
  });

  it("scores a run by the experiment's metric, higher better: validation figures when it validates, else the test ones, a loss negated", () => {
    const older = { epoch: 1, loss: 0.9, testAccuracy: 0.7, seconds: 1, imagesPerSecond: 1 };
    const tested = { ...older, testLoss: 0.8 };
    const validated = { ...tested, validationAccuracy: 0.6, validationLoss: 1.1 };
    assert.equal(rungScore('testAccuracy', tested), 0.7);
    assert.equal(rungScore('testAccuracy', validated), 0.6);
    assert.equal(rungScore('testLoss', tested), -0.8);
    assert.equal(rungScore('testLoss', validated), -1.1);
    assert.equal(
      rungScore('testLoss', older),
      Number.NEGATIVE_INFINITY,
      'a summary without its test loss is judged worst',
    );
    // The lower loss goes on: of three runs, the best third.
    const scores = [0.5, 2.3, 0.7].map((testLoss) => rungScore('testLoss', { ...tested, testLoss }));
    assert.deepEqual(
      scores.map((score) => goesOn(rule, score, scores)),
      [true, false, false],
    );
  });
});
