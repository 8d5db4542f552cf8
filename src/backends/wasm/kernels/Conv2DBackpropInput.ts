/**
 * Conv2DBackpropInput override: the built-in kernel is a scalar C++ loop in
 * `@tensorflow/tfjs-backend-wasm` 4.22. This replacement recasts the gradient as a forward
 * convolution where that measured faster, and sums it tap by tap in SIMD
 * (conv2d_backprop_input_direct of simd/convolutions.c, several times the built-in's speed:
 * docs/architecture.md#why-our-own-kernels) where it doesn't; only a dy larger than the attrs say
 * (below), and hosts where the SIMD module can't load, go to the built-in kernel.
 */
import {
  backend_util,
  Conv2D,
  Conv2DBackpropInput,
  PadV2,
  Reshape,
  Reverse,
  Transpose,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, runWasmKernel, withTemporaries, type KernelOverride } from '../kernel-calls.ts';

/**
 * Conv2DBackpropInput: dx is a forward convolution of dy, with zeros inserted between dy's pixels
 * when the stride is above 1, padded to 'full' less the forward padding, with the filter rotated
 * 180° and its in/out channels swapped:
 *   dx[b,h,w,ci] = Σ_{i,j,co} dy[b, (h+top−i)/s, (w+left−j)/s, co] · W[i,j,ci,co]
 * (terms with a non-integer index are zero). On XNNPACK that beats the built-in scalar loop 4-10x at
 * stride 1. Zero insertion multiplies the work by the stride's area, which XNNPACK still wins at
 * stride 2 given enough channels (2.2-2.5x measured with 16-64 input channels) but loses with 3
 * channels (0.8x), at stride 3 (1.3x, too close to bother) and badly at stride 4 (0.2x); those are
 * summed directly instead.
 */
function recastPays(strideHeight: number, strideWidth: number, inChannels: number): boolean {
  if (strideHeight === 1 && strideWidth === 1) return true;
  return strideHeight <= 2 && strideWidth <= 2 && inChannels >= 8;
}

/**
 * Along one axis: where each dy pixel's stride − 1 zeros go (before, after), and the convolution's
 * padding (before, after) that remains. Undefined if neither end has room for the surplus zeros.
 */
function spreadPadding(
  stride: number,
  before: number,
  after: number,
): { zeros: [number, number]; pad: [number, number] } | undefined {
  const surplus = stride - 1;
  if (after >= surplus) return { zeros: [0, surplus], pad: [before, after - surplus] };
  if (before >= surplus) return { zeros: [surplus, 0], pad: [before - surplus, after] };
  return undefined;
}

export const conv2DBackpropInputOverride: KernelOverride = {
  kernelName: Conv2DBackpropInput,
  wrap: (builtIn) => (args) => {
    const { dy, filter } = args.inputs as Conv2DBackpropInputInputs;
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as Conv2DBackpropInputAttrs;
    if (dy === undefined || filter === undefined || dataFormat !== 'NHWC') return builtIn(args);
    if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return builtIn(args);
    const info = backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as [number, number, number, number],
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { filterHeight, filterWidth, strideHeight, strideWidth, inHeight, inWidth, outHeight, outWidth } = info;
    // tfjs-core's conv2d gradient drops dimRoundingMode, so dy can be larger than the attrs say;
    // the built-in kernel then reads only part of it.
    if (dy.shape[0] !== info.batchSize || dy.shape[1] !== outHeight || dy.shape[2] !== outWidth) return builtIn(args);
    // Where the recast doesn't pay or can't be made, the direct SIMD kernel, else the built-in.
    const backend = args.backend as BackendWasm;
    const kernels = convolutionKernels(backend);
    const direct = (): TensorInfo => {
      if (kernels === undefined) return builtIn(args) as TensorInfo;
      const dx = backend.makeOutput(inputShape, 'float32');
      const at = (t: TensorInfo) => heapOffset(backend, t, Conv2DBackpropInput);
      kernels.conv2d_backprop_input_direct(
        at(dy),
        at(filter),
        at(dx),
        info.batchSize,
        inHeight,
        inWidth,
        info.inChannels,
        outHeight,
        outWidth,
        info.outChannels,
        filterHeight,
        filterWidth,
        strideHeight,
        strideWidth,
        info.padInfo.top,
        info.padInfo.left,
      );
      return dx;
    };
    if (!recastPays(strideHeight, strideWidth, info.inChannels)) return direct();
    // Padding that makes the forward convolution of dy, dilated by the stride, exactly dx-sized.
    const top = filterHeight - 1 - info.padInfo.top;
    const left = filterWidth - 1 - info.padInfo.left;
    const bottom = inHeight + filterHeight - 1 - top - ((outHeight - 1) * strideHeight + 1);
    const right = inWidth + filterWidth - 1 - left - ((outWidth - 1) * strideWidth + 1);
    // Negative padding (a forward pad wider than the filter, or 'ceil' rounding) can't be recast.
    if (top < 0 || left < 0 || bottom < 0 || right < 0) return direct();
    // Zero insertion pads each dy pixel with stride − 1 zeros on one side, so the dilated dy has
    // stride − 1 surplus zero rows (columns) at that end, which that end's padding must absorb.
    const rows = spreadPadding(strideHeight, top, bottom);
    const columns = spreadPadding(strideWidth, left, right);
    if (rows === undefined || columns === undefined) return direct();

    return withTemporaries(backend, (run) => {
      // A 1x1 filter is its own rotation, and the built-in Reverse copies one value at a time, far
      // slower than the Transpose (docs/performance.md, MobileNetV2).
      const flipped = filterHeight === 1 && filterWidth === 1 ? filter : run(Reverse, { x: filter }, { dims: [0, 1] });
      const rotated = run(Transpose, { x: flipped }, { perm: [0, 1, 3, 2] }); // [kh,kw,co,ci]
      let input = dy;
      if (strideHeight > 1 || strideWidth > 1) {
        const [batch = 0, , , channels = 0] = dy.shape;
        const spread = run(Reshape, { x: dy }, { shape: [batch, outHeight, 1, outWidth, 1, channels] });
        const padded = run(
          PadV2,
          { x: spread },
          {
            paddings: [[0, 0], [0, 0], rows.zeros, [0, 0], columns.zeros, [0, 0]],
            constantValue: 0,
          },
        );
        input = run(
          Reshape,
          { x: padded },
          { shape: [batch, outHeight * strideHeight, outWidth * strideWidth, channels] },
        );
      }
      return runWasmKernel(
        Conv2D,
        backend,
        { x: input, filter: rotated },
        {
          strides: 1,
          pad: [[0, 0], rows.pad, columns.pad, [0, 0]],
          dataFormat: 'NHWC',
          dilations: 1,
        },
      );
    });
  },
};
