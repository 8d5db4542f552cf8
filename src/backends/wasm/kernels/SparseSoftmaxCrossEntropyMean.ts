/**
 * The training loss as one wasm kernel (src/backends/training-ops.ts), where TF.js's
 * tf.losses.softmaxCrossEntropy runs one-hot plus some 20 small kernels forward.
 */
import type { TensorInfo, KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { SparseSoftmaxCrossEntropyMean } from '../../training-ops.ts';
import { WASM_BACKEND } from '../kernel-calls.ts';

/**
 * Row by row over [rows, cols] logits: the row's maximum and log Σ exp(logit − maximum), in double
 * precision (the classes are few: a LeNet-5 batch is 640 values, so JavaScript is quick enough).
 */
export function forEachRow(
  logits: Float32Array,
  rows: number,
  cols: number,
  each: (row: number, max: number, logSum: number) => void,
): void {
  for (let r = 0; r < rows; r++) {
    const at = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, logits[at + j] as number);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp((logits[at + j] as number) - max);
    each(r, max, Math.log(sum));
  }
}

export function checkedShapes(logits: TensorInfo, labels: TensorInfo): [number, number] {
  const [rows, cols] = logits.shape;
  if (
    logits.shape.length !== 2 ||
    rows === undefined ||
    cols === undefined ||
    labels.shape.length !== 1 ||
    labels.shape[0] !== rows
  ) {
    throw new Error(
      `${SparseSoftmaxCrossEntropyMean} needs logits [batch, classes] and labels [batch], got [${logits.shape}] and [${labels.shape}]`,
    );
  }
  if (logits.dtype !== 'float32' || labels.dtype !== 'int32')
    throw new Error(`${SparseSoftmaxCrossEntropyMean} needs float32 logits and int32 labels`);
  return [rows, cols];
}

const lossKernel: KernelFunc = ({ inputs, backend }) => {
  const { logits, labels } = inputs as { logits: TensorInfo; labels: TensorInfo };
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

export const sparseSoftmaxCrossEntropyMeanConfig: KernelConfig = {
  kernelName: SparseSoftmaxCrossEntropyMean,
  backendName: WASM_BACKEND,
  kernelFunc: lossKernel,
};
