/**
 * Conv2D override: the convolution of simd/convolutions.c. XNNPACK's packs the filter on every
 * call (training gives it new weights every step) and suits few channels badly; ours measured
 * faster on every layer of LeNet-5 and AlexNet but AlexNet's first, a little slower there, so
 * one path takes them all (figures: docs/architecture.md#why-our-own-kernels). Also what
 * Conv2DBackpropInput runs, as it recasts the input gradient as a forward convolution.
 */
import { backend_util, Conv2D, type Conv2DAttrs, type Conv2DInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, withScratch, type KernelOverride } from '../kernel-calls.ts';

export const conv2DOverride: KernelOverride = {
  kernelName: Conv2D,
  wrap: (builtIn) => (args) => {
    const { x, filter } = args.inputs as Conv2DInputs;
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = args.attrs as unknown as Conv2DAttrs;
    const backend = args.backend as BackendWasm;
    const kernels = convolutionKernels(backend);
    if (kernels === undefined || x === undefined || filter === undefined || dataFormat !== 'NHWC') return builtIn(args);
    if (x.dtype !== 'float32' || filter.dtype !== 'float32') return builtIn(args);
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      strides,
      dilations,
      pad,
      dimRoundingMode,
    );
    if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return builtIn(args);
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const rows = filterHeight * filterWidth * inChannels;
    const panels = Math.ceil(outChannels / 8);
    const y = backend.makeOutput(info.outShape, 'float32');
    const at = (t: typeof y) => heapOffset(backend, t, Conv2D);
    withScratch(backend, panels * rows * 8, (packed) => {
      kernels.pack_filter(at(filter), packed, rows, outChannels);
      kernels.conv2d(
        at(x),
        packed,
        at(y),
        batchSize,
        inHeight,
        inWidth,
        inChannels,
        outHeight,
        outWidth,
        outChannels,
        filterHeight,
        filterWidth,
        strideHeight,
        strideWidth,
        info.padInfo.top,
        info.padInfo.left,
      );
    });
    return y;
  },
};
