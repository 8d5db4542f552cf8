/**
 * Select override (tf.where) where the condition and both branches have one shape, as tfjs-core's
 * clipByValue gradient (every ReLU6 of MobileNetV2) picks dy or zero: select_values of
 * simd/convolutions.c, 4 values a step, where the built-in kernel is slow (docs/performance.md).
 * float32 and int32 branches (their bits are copied); a condition that picks whole rows, and other
 * dtypes, go to the built-in kernel.
 */
import { Select, util, type SelectInputs, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, type KernelOverride } from '../kernel-calls.ts';

export const selectOverride: KernelOverride = {
  kernelName: Select,
  wrap: (builtIn) => (args) => {
    const { condition, t, e } = args.inputs as SelectInputs;
    const backend = args.backend as BackendWasm;
    if (condition === undefined || t === undefined || e === undefined || condition.dtype !== 'bool')
      return builtIn(args);
    if (t.dtype !== e.dtype || (t.dtype !== 'float32' && t.dtype !== 'int32')) return builtIn(args);
    const count = util.sizeFromShape(t.shape);
    if (!util.arraysEqual(condition.shape, t.shape) || !util.arraysEqual(e.shape, t.shape) || count === 0)
      return builtIn(args);
    const kernels = convolutionKernels(backend);
    if (kernels === undefined) return builtIn(args);
    const out = backend.makeOutput(t.shape, t.dtype);
    const at = (tensor: TensorInfo) => heapOffset(backend, tensor, Select);
    kernels.select_values(at(condition), at(t), at(e), at(out), count);
    return out;
  },
};
