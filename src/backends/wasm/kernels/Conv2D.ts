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

/** Pixels to a row where a 1x1 convolution's pixels are regrouped. */
const REGROUPED_WIDTH = 16;

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
    const { inChannels, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
    let { batchSize, inHeight, inWidth, outHeight, outWidth } = info;
    const { top, left, bottom, right } = info.padInfo;
    // A 1x1 convolution at stride 1 without padding is one matrix product over every pixel of the
    // batch, so it may run on the pixels regrouped as rows of 16: on images narrower than that, or
    // of a width the 4-pixel tiles don't divide, the tiles were cut short (MobileNetV2's smaller
    // maps; figures: docs/architecture.md#why-our-own-kernels). Each row's values stay in cache for
    // every panel of output channels, which one row of all the pixels would not.
    const pixels = batchSize * inHeight * inWidth;
    const oneByOne = filterHeight * filterWidth * strideHeight * strideWidth === 1 && top + left + bottom + right === 0;
    if (oneByOne && (inWidth < REGROUPED_WIDTH || inWidth % 4 !== 0) && pixels % REGROUPED_WIDTH === 0) {
      inWidth = outWidth = REGROUPED_WIDTH;
      inHeight = outHeight = pixels / REGROUPED_WIDTH;
      batchSize = 1;
    }
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
        top,
        left,
      );
    });
    return y;
  },
};
