/**
 * DepthwiseConv2dNativeBackpropFilter, which training a network with depthwise convolutions
 * (MobileNet) needs and `@tensorflow/tfjs-backend-wasm` 4.22 does not ship: the SIMD kernel of
 * simd/convolutions.c on the heap.
 */
import {
  DepthwiseConv2dNativeBackpropFilter,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type DepthwiseConv2dNativeBackpropFilterInputs,
  type KernelConfig,
  type KernelFunc,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { depthwiseGradient } from '../depthwise-gradient.ts';
import { WASM_BACKEND } from '../kernel-calls.ts';

const depthwiseConv2dNativeBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as DepthwiseConv2dNativeBackpropFilterInputs;
  const gradientAttrs = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  if (x === undefined || dy === undefined) {
    throw new Error(`${DepthwiseConv2dNativeBackpropFilter} needs inputs x and dy`);
  }
  const { filterShape } = gradientAttrs;
  return depthwiseGradient(
    DepthwiseConv2dNativeBackpropFilter,
    backend as BackendWasm,
    x.shape as [number, number, number, number],
    filterShape,
    gradientAttrs,
    { first: x, second: dy, dy },
    filterShape,
    (kernels) => kernels.depthwise_conv2d_backprop_filter,
  );
};

export const depthwiseConv2dNativeBackpropFilterConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropFilter,
  backendName: WASM_BACKEND,
  kernelFunc: depthwiseConv2dNativeBackpropFilter,
};
