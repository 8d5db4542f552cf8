/**
 * The gradient of the training loss op (src/backends/training-ops.ts): the op's Grad kernel. Only
 * reached on a backend that has the op's kernel; elsewhere the op is TF.js's, with its own gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SparseSoftmaxCrossEntropyMean, SparseSoftmaxCrossEntropyMeanGrad } from '../training-ops.ts';

export const sparseSoftmaxCrossEntropyMeanGradient: tf.GradConfig = {
  kernelName: SparseSoftmaxCrossEntropyMean,
  inputsToSave: ['logits', 'labels'],
  gradFunc: (dy, saved) => {
    const [logits, labels] = saved;
    if (logits === undefined || labels === undefined || Array.isArray(dy))
      throw new Error(`${SparseSoftmaxCrossEntropyMean}'s gradient lacks its inputs`);
    // No gradient for the labels: they are data, never on a path from the variables.
    return {
      logits: () => tf.engine().runKernel(SparseSoftmaxCrossEntropyMeanGrad, { dy, logits, labels }, {}) as tf.Tensor,
    };
  },
};
