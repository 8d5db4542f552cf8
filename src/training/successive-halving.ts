import type { EarlyTermination, ExperimentMetric } from '../contract/experiment.ts';
import type { EpochSummary } from '../contract/job.ts';

/** Whether `epoch` is a rung of the rule: minEpochs × reductionFactor^k. */
export function isRung(rule: EarlyTermination, epoch: number): boolean {
  for (let rung = rule.minEpochs; rung <= epoch; rung *= rule.reductionFactor) if (rung === epoch) return true;
  return false;
}

/**
 * What a run is judged by after an epoch, higher better: by the experiment's metric, on the
 * validation images when the run validates, else on the test images (a loss negated).
 */
export function rungScore(metric: ExperimentMetric, summary: EpochSummary): number {
  if (metric === 'testAccuracy') return summary.validationAccuracy ?? summary.testAccuracy;
  // A summary from before epochs recorded their test loss is judged worst rather than guessed.
  return -(summary.validationLoss ?? summary.testLoss ?? Number.POSITIVE_INFINITY);
}

/**
 * Whether a run whose score (rungScore) at a rung is `value` goes on, given the values of every run that
 * has reached the rung (its own among them): with fewer than reductionFactor of them, it does
 * (too few to judge, as ASHA waits); otherwise only when it is at least the k-th best, k being
 * ⌊count / reductionFactor⌋.
 */
export function goesOn(rule: EarlyTermination, value: number, reached: readonly number[]): boolean {
  if (reached.length < rule.reductionFactor) return true;
  const kept = Math.floor(reached.length / rule.reductionFactor);
  const cutoff = [...reached].sort((a, b) => b - a)[kept - 1] as number;
  return value >= cutoff;
}
