/**
 * Conv2D override: the convolution of simd/convolutions.c where it beats XNNPACK's, which packs
 * the filter on every call (training gives it new weights every step) and suits few channels badly.
 * Also what Conv2DBackpropInput runs (it recasts the input gradient as a forward convolution).
 */
import {
  backend_util,
  Conv2D,
  type Conv2DAttrs,
  type Conv2DInputs,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels, heapOffset, type KernelOverride } from '../kernel-calls.ts';

/**
 * XNNPACK's output tiles are 8 channels wide and it packs the filter on every call; with up to 16
 * output channels this kernel measured faster (LeNet-5's first convolution, 6 channels: 1.3 against
 * 2.1 ms at batch 64, and the input gradient of its second), with more it measured up to 40% slower.
 */
export const FEW_OUTPUT_CHANNELS = 16;

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
    if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || info.outChannels > FEW_OUTPUT_CHANNELS) return builtIn(args);
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const paddedOut = (outChannels + 3) & ~3;
    const rows = filterHeight * filterWidth * inChannels;
    const y = backend.makeOutput(info.outShape, 'float32');
    const packed = backend.makeOutput([rows * paddedOut], 'float32');
    try {
      const at = (t: typeof y) => heapOffset(backend, t, Conv2D);
      kernels.pack_filter(at(filter), at(packed), rows, outChannels, paddedOut);
      kernels.conv2d(at(x), at(packed), at(y), batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels,
        filterHeight, filterWidth, strideHeight, strideWidth, info.padInfo.top, info.padInfo.left);
    } finally {
      backend.disposeData(packed.dataId);
    }
    return y;
  },
};
