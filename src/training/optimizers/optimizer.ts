import type * as tf from '@tensorflow/tfjs-core';
import type { JobSettings, OptimizerName } from '../../contract/job-request.ts';
import { Adam } from './adam.ts';
import { MomentumSgd } from './momentum-sgd.ts';

export type OptimizerSettings = Pick<JobSettings, 'optimizer' | 'learningRate' | 'momentum' | 'weightDecay'>;

/**
 * How a TrainingStep updates its variables from their gradients, and the state that update keeps
 * between steps (a checkpoint holds it, so a resumed run goes on with the same updates).
 */
export interface StepOptimizer {
  /** Steps taken. */
  readonly iterations: number;
  /** What the next steps update with: a schedule changes it by epoch. */
  setLearningRate(learningRate: number): void;
  /** Updates the variables from `grads` (in the variables' order), which stay the caller's. */
  apply(grads: readonly tf.Tensor[]): void;
  /**
   * Copies of its state, the caller's to dispose: `stateSlots` tensors per variable, slot after
   * slot, each slot in the variables' order; none before the first step.
   */
  state(): Promise<tf.Tensor[]>;
  /** Goes on from another run's state (as `state` gives it, which stays the caller's) after `iterations` steps. */
  setState(iterations: number, tensors: readonly tf.Tensor[]): Promise<void>;
  dispose(): void;
}

/** Tensors of state per variable: SGD's momentum buffer; Adam's first and second moments. */
export function stateSlots(optimizer: OptimizerName): number {
  return optimizer === 'sgd' ? 1 : 2;
}

/** The job's optimizer over `variables`. */
export function createOptimizer(variables: readonly tf.Variable[], settings: OptimizerSettings): StepOptimizer {
  const { learningRate, weightDecay } = settings;
  switch (settings.optimizer) {
    case 'sgd':
      return new MomentumSgd(variables, learningRate, settings.momentum, weightDecay);
    case 'adam':
      return new Adam(variables, learningRate, { weightDecay, decoupled: false });
    case 'adamw':
      return new Adam(variables, learningRate, { weightDecay, decoupled: true });
  }
}
