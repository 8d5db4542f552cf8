/**
 * Copies between tensors and JavaScript arrays that a data-parallel step makes every batch, each
 * the size of the model (AlexNet: 228 MB), with as few copies as each backend allows: on a host
 * whose memory bandwidth is the limit, every extra pass over the model is time.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

function wasmBackend(): BackendWasm | null {
  return tf.getBackend() === 'wasm' ? (tf.backend() as BackendWasm) : null;
}

/** `tensor`'s float32 values into `target` from `offset`: on wasm straight from its heap, where `dataSync` would copy them first. */
export function copyValuesInto(tensor: tf.Tensor, target: Float32Array, offset: number): void {
  const wasm = wasmBackend();
  target.set((wasm ? wasm.typedArrayFromHeap(tensor) : tensor.dataSync()) as Float32Array, offset);
}

/**
 * Gives `variable` the values `values` (as many), which stay the caller's. Always as a new tensor,
 * never by writing into the variable's heap: the wasm backend's XNNPACK operators keep packed
 * copies of weights keyed by tensor, which would go on computing with the old values.
 */
export function assignValues(variable: tf.Variable, values: Float32Array): void {
  // The wasm backend copies a new tensor's values into its heap; the cpu backend keeps the array
  // itself, which must then not be a view of memory the replicas go on writing.
  const copied = wasmBackend() !== null;
  tf.tidy(() => variable.assign(tf.tensor(copied ? values : values.slice(), variable.shape, 'float32')));
}
