/**
 * Mean override for a float32 tensor averaged over consecutive axes that leave its last one: the
 * statistics of a BatchNorm in training (tf.moments over every axis but the channels) and global
 * average pooling (over the rows and columns). The built-in kernel first transposes the reduced
 * axes to the end, a copy of the whole tensor; mean_rows of simd/convolutions.c sums the rows in
 * place, in blocks. Every other mean goes to the built-in kernel.
 */
import { backend_util, Mean, util, type MeanAttrs, type MeanInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, withScratch, type KernelOverride } from '../kernel-calls.ts';

export const meanOverride: KernelOverride = {
  kernelName: Mean,
  wrap: (builtIn) => (args) => {
    const { x } = args.inputs as MeanInputs;
    const { axis, keepDims } = args.attrs as unknown as MeanAttrs;
    const backend = args.backend as BackendWasm;
    if (x === undefined || x.dtype !== 'float32' || util.sizeFromShape(x.shape) === 0) return builtIn(args);
    const rank = x.shape.length;
    const axes = [...new Set(util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
    const first = axes[0];
    const last = axes[axes.length - 1];
    // One run of axes, not the last: x is [outer, rows, inner] with the rows averaged.
    if (first === undefined || last === undefined || last >= rank - 1 || last - first !== axes.length - 1)
      return builtIn(args);
    const kernels = convolutionKernels(backend);
    if (kernels === undefined) return builtIn(args);
    const outer = util.sizeFromShape(x.shape.slice(0, first));
    const rows = util.sizeFromShape(x.shape.slice(first, last + 1));
    const inner = util.sizeFromShape(x.shape.slice(last + 1));
    const [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
    const out = backend.makeOutput(keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape, 'float32');
    withScratch(backend, inner, (partial) =>
      kernels.mean_rows(heapOffset(backend, x, Mean), heapOffset(backend, out, Mean), partial, outer, rows, inner),
    );
    return out;
  },
};
