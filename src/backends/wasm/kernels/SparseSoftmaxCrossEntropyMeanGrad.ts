/** The training loss's gradient with respect to the logits as one wasm kernel (src/backends/training-ops.ts). */
import type { TensorInfo, KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { SparseSoftmaxCrossEntropyMeanGrad } from '../../training-ops.ts';
import { WASM_BACKEND } from '../kernel-calls.ts';
import { checkedShapes, forEachRow } from './SparseSoftmaxCrossEntropyMean.ts';

const lossGradKernel: KernelFunc = ({ inputs, backend }) => {
  const { dy, logits, labels } = inputs as { dy: TensorInfo; logits: TensorInfo; labels: TensorInfo };
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
    for (let j = 0; j < cols; j++)
      dx[at + j] = (Math.exp((x[at + j] as number) - max - logSum) - (j === label ? 1 : 0)) * scale;
  });
  return out;
};

export const sparseSoftmaxCrossEntropyMeanGradConfig: KernelConfig = {
  kernelName: SparseSoftmaxCrossEntropyMeanGrad,
  backendName: WASM_BACKEND,
  kernelFunc: lossGradKernel,
};
