/**
 * Ops of the training step that a backend may run as one kernel of its own instead of TF.js's many
 * small ones: a LeNet-5 step runs about 170 kernels, most of them tiny, and each costs the engine's
 * bookkeeping whatever its size. The kernels are each backend's (wasm: wasm/kernels/), the
 * gradients everyone's (gradients/).
 */
import * as tf from '@tensorflow/tfjs-core';

/** Mean over the batch of −log softmax(logits)[label]: logits [batch, classes], labels int32 [batch]. */
export const SparseSoftmaxCrossEntropyMean = 'SparseSoftmaxCrossEntropyMean';
/** Its gradient with respect to the logits: (softmax(logits) − onehot(labels)) · dy / batch. */
export const SparseSoftmaxCrossEntropyMeanGrad = 'SparseSoftmaxCrossEntropyMeanGrad';

/**
 * The mean softmax cross-entropy of `logits` [batch, classes] against class indices, as
 * tf.losses.softmaxCrossEntropy with one-hot labels computes it (to float rounding). On the wasm
 * backend it is one kernel forward and one backward (the TF.js op runs about 40 small kernels in
 * all: one-hot, log-sum-exp, the mean, and their gradients); elsewhere it is that op.
 */
export function meanSoftmaxCrossEntropy(logits: tf.Tensor, labels: Int32Array, classes: number): tf.Scalar {
  if (tf.getKernel(SparseSoftmaxCrossEntropyMean, tf.getBackend()) !== undefined) {
    // The label tensor goes with the caller's tidy (variableGrads runs its function in one).
    return tf
      .engine()
      .runKernel(SparseSoftmaxCrossEntropyMean, { logits, labels: tf.tensor1d(labels, 'int32') }, {}) as tf.Scalar;
  }
  return tf.tidy(
    () => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), logits) as tf.Scalar,
  );
}
