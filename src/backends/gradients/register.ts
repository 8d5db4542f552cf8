/**
 * Gradient overrides. Unlike kernels, TF.js keeps one gradient per kernel name for all backends,
 * so these hold whichever backend runs: they are written in ops, not in any backend's kernels.
 */
import { registerGradient, type GradConfig } from '@tensorflow/tfjs-core';
import { reluGradient } from './Relu.ts';
import { sparseSoftmaxCrossEntropyMeanGradient } from './SparseSoftmaxCrossEntropyMean.ts';

const gradConfigs: readonly GradConfig[] = [sparseSoftmaxCrossEntropyMeanGradient, reluGradient];

/** Registers the training step's gradient overrides; safe to call again (each registration replaces the same gradient). */
export function registerTrainingGradients(): void {
  for (const config of gradConfigs) registerGradient(config);
}
