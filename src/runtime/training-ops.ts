/**
 * Leaner versions of the two pieces of the training step that TF.js builds from many small ops:
 * the softmax cross-entropy loss and ReLU's gradient. A LeNet-5 step runs about 170 kernels, most
 * of them tiny, and each costs the engine's bookkeeping whatever its size.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WASM_BACKEND } from '../backends/wasm/kernel-calls.ts';

/** Mean over the batch of −log softmax(logits)[label]: logits [batch, classes], labels int32 [batch]. */
export const SparseSoftmaxCrossEntropyMean = 'SparseSoftmaxCrossEntropyMean';
/** Its gradient with respect to the logits: (softmax(logits) − onehot(labels)) · dy / batch. */
export const SparseSoftmaxCrossEntropyMeanGrad = 'SparseSoftmaxCrossEntropyMeanGrad';

/**
 * Row by row over [rows, cols] logits: the row's maximum and log Σ exp(logit − maximum), in double
 * precision (the classes are few: a LeNet-5 batch is 640 values, so JavaScript is quick enough).
 */
function forEachRow(logits: Float32Array, rows: number, cols: number, each: (row: number, max: number, logSum: number) => void): void {
  for (let r = 0; r < rows; r++) {
    const at = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, logits[at + j] as number);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp((logits[at + j] as number) - max);
    each(r, max, Math.log(sum));
  }
}

function checkedShapes(logits: tf.TensorInfo, labels: tf.TensorInfo): [number, number] {
  const [rows, cols] = logits.shape;
  if (logits.shape.length !== 2 || rows === undefined || cols === undefined || labels.shape.length !== 1 || labels.shape[0] !== rows) {
    throw new Error(`${SparseSoftmaxCrossEntropyMean} needs logits [batch, classes] and labels [batch], got [${logits.shape}] and [${labels.shape}]`);
  }
  if (logits.dtype !== 'float32' || labels.dtype !== 'int32') throw new Error(`${SparseSoftmaxCrossEntropyMean} needs float32 logits and int32 labels`);
  return [rows, cols];
}

const lossKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const { logits, labels } = inputs as { logits: tf.TensorInfo; labels: tf.TensorInfo };
  const [rows, cols] = checkedShapes(logits, labels);
  const wasm = backend as BackendWasm;
  const out = wasm.makeOutput([], 'float32');
  const x = wasm.typedArrayFromHeap(logits) as Float32Array;
  const y = wasm.typedArrayFromHeap(labels) as Int32Array;
  let total = 0;
  // A label outside [0, classes) reads undefined: NaN, which the trainer reports as divergence.
  forEachRow(x, rows, cols, (r, max, logSum) => {
    total += max + logSum - (x[r * cols + (y[r] as number)] as number);
  });
  (wasm.typedArrayFromHeap(out) as Float32Array)[0] = total / rows;
  return out;
};

const lossGradKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const { dy, logits, labels } = inputs as { dy: tf.TensorInfo; logits: tf.TensorInfo; labels: tf.TensorInfo };
  const [rows, cols] = checkedShapes(logits, labels);
  const wasm = backend as BackendWasm;
  const out = wasm.makeOutput(logits.shape, 'float32');
  // Views only after allocating: an allocation can grow the heap, which detaches older views.
  const x = wasm.typedArrayFromHeap(logits) as Float32Array;
  const y = wasm.typedArrayFromHeap(labels) as Int32Array;
  const dx = wasm.typedArrayFromHeap(out) as Float32Array;
  const scale = ((wasm.typedArrayFromHeap(dy) as Float32Array)[0] as number) / rows;
  forEachRow(x, rows, cols, (r, max, logSum) => {
    const at = r * cols;
    const label = y[r] as number;
    for (let j = 0; j < cols; j++) dx[at + j] = (Math.exp((x[at + j] as number) - max - logSum) - (j === label ? 1 : 0)) * scale;
  });
  return out;
};

/** Registers the loss kernels for the wasm backend and the lean gradients; safe to call again. */
export function registerTrainingOps(): void {
  if (tf.getKernel(SparseSoftmaxCrossEntropyMean, WASM_BACKEND) === undefined) {
    tf.registerKernel({ kernelName: SparseSoftmaxCrossEntropyMean, backendName: WASM_BACKEND, kernelFunc: lossKernel });
    tf.registerKernel({ kernelName: SparseSoftmaxCrossEntropyMeanGrad, backendName: WASM_BACKEND, kernelFunc: lossGradKernel });
  }
  tf.registerGradient({
    kernelName: SparseSoftmaxCrossEntropyMean,
    inputsToSave: ['logits', 'labels'],
    gradFunc: (dy, saved) => {
      const [logits, labels] = saved;
      if (logits === undefined || labels === undefined || Array.isArray(dy)) throw new Error(`${SparseSoftmaxCrossEntropyMean}'s gradient lacks its inputs`);
      // No gradient for the labels: they are data, never on a path from the variables.
      return { logits: () => tf.engine().runKernel(SparseSoftmaxCrossEntropyMeanGrad, { dy, logits, labels }, {}) as tf.Tensor };
    },
  });
  // tfjs-core's ReLU gradient is mul(dy, cast(step(x), 'float32')): step already gives float32 for
  // float32 x, and the wasm Cast copies the tensor anyway. Same values, one kernel call fewer.
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      if (x === undefined || Array.isArray(dy)) throw new Error("Relu's gradient lacks its input");
      return { x: () => tf.mul(dy, x.dtype === 'float32' ? tf.step(x) : tf.cast(tf.step(x), 'float32')) };
    },
  });
}

/**
 * The mean softmax cross-entropy of `logits` [batch, classes] against class indices, as
 * tf.losses.softmaxCrossEntropy with one-hot labels computes it (to float rounding). On the wasm
 * backend it is one kernel forward and one backward (the TF.js op runs about 40 small kernels in
 * all: one-hot, log-sum-exp, the mean, and their gradients); elsewhere it is that op.
 */
export function meanSoftmaxCrossEntropy(logits: tf.Tensor, labels: Int32Array, classes: number): tf.Scalar {
  if (tf.getKernel(SparseSoftmaxCrossEntropyMean, tf.getBackend()) !== undefined) {
    // The label tensor goes with the caller's tidy (variableGrads runs its function in one).
    return tf.engine().runKernel(SparseSoftmaxCrossEntropyMean, { logits, labels: tf.tensor1d(labels, 'int32') }, {}) as tf.Scalar;
  }
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), logits) as tf.Scalar);
}
