import * as tf from '@tensorflow/tfjs-core';
import { meanSoftmaxCrossEntropy } from '../backends/training-ops.ts';

/**
 * The training loss: the mean softmax cross-entropy of `logits` [batch, classes] against targets
 * smoothed as PyTorch's CrossEntropyLoss(label_smoothing=ε) smooths them, (1 − ε)·onehot + ε/K
 * for K classes. ε = 0 is the notebook's loss, the very same kernels (one each way on wasm).
 *
 * With t = (1 − ε)·onehot + ε/K, −Σₖ tₖ·log pₖ = (1 − ε)·CE(label) + ε·meanₖ(−log pₖ), and
 * meanₖ(−log pₖ) = logsumexp(z) − meanₖ(zₖ): so the smoothed loss keeps the one-kernel
 * cross-entropy and adds the uniform part, a handful of small kernels, instead of going back to
 * one-hot targets and TF.js's some 40 kernels. Only training uses it: evaluation's loss (test,
 * validation) stays plain cross-entropy, comparable between jobs whatever their smoothing.
 */
export function meanTrainingLoss(
  logits: tf.Tensor,
  labels: Int32Array,
  classes: number,
  labelSmoothing: number,
): tf.Scalar {
  const plain = meanSoftmaxCrossEntropy(logits, labels, classes);
  if (labelSmoothing === 0) return plain;
  return tf.tidy(() => {
    const uniform = tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.mean(logits, 1)));
    return tf.add(tf.mul(plain, 1 - labelSmoothing), tf.mul(uniform, labelSmoothing));
  });
}
