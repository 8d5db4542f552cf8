/**
 * ReLU's gradient, leaner than tfjs-core's mul(dy, cast(step(x), 'float32')): step already gives
 * float32 for float32 x, and the wasm Cast copies the tensor anyway. Same values, one kernel call fewer.
 */
import * as tf from '@tensorflow/tfjs-core';

export const reluGradient: tf.GradConfig = {
  kernelName: tf.Relu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    if (x === undefined || Array.isArray(dy)) throw new Error("Relu's gradient lacks its input");
    return { x: () => tf.mul(dy, x.dtype === 'float32' ? tf.step(x) : tf.cast(tf.step(x), 'float32')) };
  },
};
