/**
 * Sum override for a bias gradient: a float32 tensor summed over every axis but the last. The
 * built-in kernel first transposes the reduced axes to the end, a copy of the whole tensor;
 * sum_rows of simd/convolutions.c sums the rows in place, in row order. Every other sum goes to
 * the built-in kernel.
 */
import { Sum, util, type SumAttrs, type SumInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, type KernelOverride } from '../kernel-calls.ts';

export const sumOverride: KernelOverride = {
  kernelName: Sum,
  wrap: (builtIn) => (args) => {
    const { x } = args.inputs as SumInputs;
    const { axis, keepDims } = args.attrs as unknown as SumAttrs;
    const backend = args.backend as BackendWasm;
    if (x === undefined || x.dtype !== 'float32' || x.shape.length < 2) return builtIn(args);
    const rank = x.shape.length;
    const axes = util.parseAxisParam(axis, x.shape);
    const leading = new Set(axes);
    if (leading.size !== rank - 1 || leading.has(rank - 1)) return builtIn(args);
    const kernels = convolutionKernels(backend);
    const channels = x.shape[rank - 1] ?? 0;
    if (kernels === undefined || channels === 0) return builtIn(args);
    const out = backend.makeOutput(keepDims ? [...Array<number>(rank - 1).fill(1), channels] : [channels], 'float32');
    kernels.sum_rows(
      heapOffset(backend, x, Sum),
      heapOffset(backend, out, Sum),
      util.sizeFromShape(x.shape) / channels,
      channels,
    );
    return out;
  },
};
