/**
 * LogicalAnd override for two bool tensors of one shape, as tfjs-core's clipByValue gradient (every
 * ReLU6 of MobileNetV2) combines its two comparisons: logical_and of simd/convolutions.c, 16 bytes
 * a step, where the built-in kernel is slow (docs/performance.md). Broadcasting forms go to the
 * built-in kernel.
 */
import { LogicalAnd, util, type BinaryInputs, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, type KernelOverride } from '../kernel-calls.ts';

export const logicalAndOverride: KernelOverride = {
  kernelName: LogicalAnd,
  wrap: (builtIn) => (args) => {
    const { a, b } = args.inputs as BinaryInputs;
    const backend = args.backend as BackendWasm;
    if (a === undefined || b === undefined || a.dtype !== 'bool' || b.dtype !== 'bool') return builtIn(args);
    const count = util.sizeFromShape(a.shape);
    if (!util.arraysEqual(a.shape, b.shape) || count === 0) return builtIn(args);
    const kernels = convolutionKernels(backend);
    if (kernels === undefined) return builtIn(args);
    const out = backend.makeOutput(a.shape, 'bool');
    const at = (t: TensorInfo) => heapOffset(backend, t, LogicalAnd);
    kernels.logical_and(at(a), at(b), at(out), count);
    return out;
  },
};
