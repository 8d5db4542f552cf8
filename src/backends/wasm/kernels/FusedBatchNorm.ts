/**
 * FusedBatchNorm override: batch_norm of simd/convolutions.c. The built-in kernel takes a square
 * root and a division for every value of x; ours computes scale / √(variance + ε) once per
 * channel and then makes one pass of vector subtract, multiply and add (figures:
 * docs/performance.md). Its parameters repeat along x with their own length (the cpu and wasm
 * kernels' rule), so ours takes every form where each parameter has one value or the same number
 * L of values, and x is whole rows of L; other forms, other dtypes and empty tensors go to the
 * built-in kernel.
 */
import { FusedBatchNorm, util, type FusedBatchNormAttrs, type FusedBatchNormInputs } from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, withScratch, type KernelOverride } from '../kernel-calls.ts';

export const fusedBatchNormOverride: KernelOverride = {
  kernelName: FusedBatchNorm,
  wrap: (builtIn) => (args) => {
    const { x, mean, variance, scale, offset } = args.inputs as FusedBatchNormInputs;
    const { varianceEpsilon } = args.attrs as unknown as FusedBatchNormAttrs;
    const backend = args.backend as BackendWasm;
    if (x === undefined || mean === undefined || variance === undefined) return builtIn(args);
    const parameters = [mean, variance, scale, offset].filter((t): t is TensorInfo => t !== undefined && t !== null);
    if (x.dtype !== 'float32' || parameters.some((t) => t.dtype !== 'float32')) return builtIn(args);
    const size = util.sizeFromShape(x.shape);
    const lengths = parameters.map((t) => util.sizeFromShape(t.shape));
    const columns = Math.max(...lengths);
    if (size === 0 || lengths.some((length) => length !== 1 && length !== columns) || size % columns !== 0)
      return builtIn(args);
    const kernels = convolutionKernels(backend);
    if (kernels === undefined) return builtIn(args);
    const y = backend.makeOutput(x.shape, 'float32');
    const at = (t: TensorInfo) => heapOffset(backend, t, FusedBatchNorm);
    // A missing scale or offset is a null pointer to the kernel: no tensor lives at offset 0.
    const optional = (t: TensorInfo | undefined | null) => (t ? at(t) : 0);
    const stride = (t: TensorInfo | undefined | null) => (t && util.sizeFromShape(t.shape) === columns ? 1 : 0);
    withScratch(backend, 3 * columns, (factors) =>
      kernels.batch_norm(
        at(x),
        at(mean),
        at(variance),
        optional(scale),
        optional(offset),
        factors,
        at(y),
        size / columns,
        columns,
        // tfjs-core's op fills in 0.001; a direct kernel call may leave it out.
        varianceEpsilon ?? 0.001,
        stride(mean),
        stride(variance),
        stride(scale),
        stride(offset),
      ),
    );
    return y;
  },
};
