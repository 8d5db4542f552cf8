/**
 * What the two depthwise convolution gradients on the wasm backend share: their geometry, checked
 * once, and the call into simd/convolutions.c that writes the gradient on the heap.
 */
import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels, type ConvolutionKernels, type DepthwiseGradientKernel } from './convolution-module.ts';
import { heapOffset, WASM_BACKEND } from './kernel-calls.ts';

type Shape4D = [number, number, number, number];

/** The attrs both gradient kernels take (tfjs-core's two attrs interfaces, less the shape each adds). */
interface DepthwiseGradientAttrs {
  readonly strides: [number, number] | number;
  readonly dilations: [number, number] | number;
  readonly pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  readonly dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * Runs `pick(kernels)` on the heap offsets of `first`, `second` and a new float32 output of
 * `outputShape`, for the depthwise convolution of an input of `inputShape` with a filter of
 * `filterShape` ([kh, kw, inC, multiplier]), whose output gradient is `dy`. NHWC, float32, any
 * strides, padding and channel multiplier; dilation 1 only, as tfjs-core's gradient itself
 * requires. Where the module can't run (no WebAssembly SIMD128, or the backend's memory is shared,
 * which tfjs-backend-wasm 4.22 never makes in Node) there is no built-in kernel to fall back to,
 * so it says so.
 */
export function depthwiseGradient(
  kernelName: string,
  backend: BackendWasm,
  inputShape: Shape4D,
  filterShape: Shape4D,
  attrs: DepthwiseGradientAttrs,
  inputs: { readonly first: TensorInfo; readonly second: TensorInfo; readonly dy: TensorInfo },
  outputShape: Shape4D,
  pick: (kernels: ConvolutionKernels) => DepthwiseGradientKernel,
): TensorInfo {
  const { strides, dilations, pad, dimRoundingMode } = attrs;
  const dilation = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (dilation.some((d) => d !== 1)) {
    throw new Error(`${kernelName} on backend '${WASM_BACKEND}' supports dilation 1 only, got [${dilation}]`);
  }
  for (const t of [inputs.first, inputs.second]) {
    if (t.dtype !== 'float32')
      throw new Error(`${kernelName} on backend '${WASM_BACKEND}' takes float32, got ${t.dtype}`);
  }
  const info = backend_util.computeConv2DInfo(inputShape, filterShape, strides, 1, pad, dimRoundingMode, true);
  if (info.outShape.some((extent, axis) => inputs.dy.shape[axis] !== extent)) {
    throw new Error(`${kernelName}: dy [${inputs.dy.shape}] does not fit the convolution's output [${info.outShape}]`);
  }
  const kernels = convolutionKernels(backend);
  if (kernels === undefined) {
    throw new Error(
      `${kernelName} on backend '${WASM_BACKEND}' needs the WebAssembly SIMD module of simd/convolutions.c, ` +
        'which cannot run here (no SIMD128, or the backend memory is shared)',
    );
  }
  const out = backend.makeOutput(outputShape, 'float32');
  const at = (t: TensorInfo) => heapOffset(backend, t, kernelName);
  pick(kernels)(at(inputs.first), at(inputs.second), at(out), ...depthwiseGeometry(info, filterShape[3]));
  return out;
}

/** The geometry every depthwise kernel of the SIMD module takes after its three heap offsets, in its order. */
export function depthwiseGeometry(
  info: backend_util.Conv2DInfo,
  multiplier: number,
): [number, number, number, number, number, number, number, number, number, number, number, number, number] {
  return [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    multiplier,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ];
}
