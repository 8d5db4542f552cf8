import type { JobSettings } from '../contract/job-request.ts';

/** Where early stopping stands: kept in checkpoints, so a resumed job stops where an uninterrupted one would. */
export interface EarlyStoppingState {
  /** The epoch whose metric is the best so far, 0 before the first. */
  readonly bestEpoch: number;
  readonly bestValue: number | null;
  readonly epochsWithoutImprovement: number;
}

export const noEarlyStoppingYet: EarlyStoppingState = { bestEpoch: 0, bestValue: null, epochsWithoutImprovement: 0 };

type Rule = NonNullable<JobSettings['earlyStopping']>;

/**
 * After an epoch with the metric's `value`: the new state, whether this epoch is the best, and
 * whether to stop now (patience epochs in a row without improving on the best by more than minDelta,
 * as Keras's EarlyStopping counts them).
 */
export function afterEpoch(
  rule: Rule,
  state: EarlyStoppingState,
  epoch: number,
  value: number,
): { state: EarlyStoppingState; best: boolean; stop: boolean } {
  const lower = rule.metric === 'validationLoss';
  const improved =
    state.bestValue === null ||
    (lower ? value < state.bestValue - rule.minDelta : value > state.bestValue + rule.minDelta);
  const next = improved
    ? { bestEpoch: epoch, bestValue: value, epochsWithoutImprovement: 0 }
    : { ...state, epochsWithoutImprovement: state.epochsWithoutImprovement + 1 };
  return { state: next, best: improved, stop: next.epochsWithoutImprovement >= rule.patience };
}
