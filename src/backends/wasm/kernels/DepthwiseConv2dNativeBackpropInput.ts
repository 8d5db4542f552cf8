/**
 * DepthwiseConv2dNativeBackpropInput, which training a network with depthwise convolutions
 * (MobileNet) needs and `@tensorflow/tfjs-backend-wasm` 4.22 does not ship: the SIMD kernel of
 * simd/convolutions.c on the heap.
 */
import {
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type DepthwiseConv2dNativeBackpropInputInputs,
  type KernelConfig,
  type KernelFunc,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { depthwiseGradient } from '../depthwise-gradient.ts';
import { WASM_BACKEND } from '../kernel-calls.ts';

const depthwiseConv2dNativeBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as DepthwiseConv2dNativeBackpropInputInputs;
  const gradientAttrs = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  if (dy === undefined || filter === undefined) {
    throw new Error(`${DepthwiseConv2dNativeBackpropInput} needs inputs dy and filter`);
  }
  const { inputShape } = gradientAttrs;
  return depthwiseGradient(
    DepthwiseConv2dNativeBackpropInput,
    backend as BackendWasm,
    inputShape,
    filter.shape as [number, number, number, number],
    gradientAttrs,
    { first: dy, second: filter, dy },
    inputShape,
    (kernels) => kernels.depthwise_conv2d_backprop_input,
  );
};

export const depthwiseConv2dNativeBackpropInputConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  backendName: WASM_BACKEND,
  kernelFunc: depthwiseConv2dNativeBackpropInput,
};
