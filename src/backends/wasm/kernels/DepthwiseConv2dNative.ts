/**
 * DepthwiseConv2dNative override: depthwise_conv2d of simd/convolutions.c, 16 channels of an output
 * pixel at a time summed over the taps inside the image, which measured faster than XNNPACK's on
 * every MobileNetV2 layer (figures: docs/performance.md). NHWC float32 at channel multiplier 1,
 * any stride and padding; other multipliers (where the kernel's scalar loop measured slower than
 * XNNPACK's), dilations above 1, other dtypes and formats go to the built-in kernel.
 */
import {
  backend_util,
  DepthwiseConv2dNative,
  type DepthwiseConv2dNativeAttrs,
  type DepthwiseConv2dNativeInputs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { depthwiseGeometry } from '../depthwise-gradient.ts';
import { heapOffset, type KernelOverride } from '../kernel-calls.ts';

type Shape4D = [number, number, number, number];

export const depthwiseConv2dNativeOverride: KernelOverride = {
  kernelName: DepthwiseConv2dNative,
  wrap: (builtIn) => (args) => {
    const { x, filter } = args.inputs as DepthwiseConv2dNativeInputs;
    const { strides, pad, dataFormat, dilations, dimRoundingMode } =
      args.attrs as unknown as DepthwiseConv2dNativeAttrs;
    const backend = args.backend as BackendWasm;
    if (x === undefined || filter === undefined || dataFormat === 'NCHW') return builtIn(args);
    if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4) return builtIn(args);
    const dilation = typeof dilations === 'number' ? [dilations, dilations] : (dilations ?? [1, 1]);
    if (dilation.some((d) => d !== 1)) return builtIn(args);
    const kernels = convolutionKernels(backend);
    if (kernels === undefined) return builtIn(args);
    const filterShape = filter.shape as Shape4D;
    if (filterShape[3] !== 1) return builtIn(args);
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4D,
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
      true,
    );
    const y = backend.makeOutput(info.outShape, 'float32');
    const at = (t: TensorInfo) => heapOffset(backend, t, DepthwiseConv2dNative);
    kernels.depthwise_conv2d(at(x), at(filter), at(y), ...depthwiseGeometry(info, filterShape[3]));
    return y;
  },
};
