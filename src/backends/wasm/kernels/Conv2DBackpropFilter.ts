/**
 * Conv2DBackpropFilter, which training needs and `@tensorflow/tfjs-backend-wasm` 4.22 does not
 * ship: the SIMD kernels of simd/convolutions.c, or where they can't run here or dy is larger
 * than the attrs say, a composition of the wasm backend's registered kernels; never JS loops.
 */
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Slice,
  Transpose,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, runWasmKernel, WASM_BACKEND, withScratch, withTemporaries } from '../kernel-calls.ts';

/**
 * The SIMD kernels of simd/convolutions.c measured faster than the composition below at every
 * layer of LeNet-5 and AlexNet but LeNet-5's second, a little slower there (figures:
 * docs/architecture.md#why-our-own-kernels). Below this many image values per filter row
 * (kW·inC), the kernel that reads x and dy in place beats the one that packs them first.
 */
const FEW_FILTER_ROW_VALUES = 8;

/** The packing kernel's working space (192 KiB): its panels stay in L2 while the product reads them. */
const SCRATCH_FLOATS = 48 * 1024;

/**
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·s+kh−padTop, ow·s+kw−padLeft, ci] · dy[b,oh,ow,co]
 * is itself a convolution: the batch axis becomes the channel being reduced, dy becomes the
 * filter, and the forward stride becomes the filter's dilation. Running it as a forward Conv2D
 * puts it on the registered convolution (ours where the module loads, else XNNPACK's) instead of a
 * scalar loop.
 */
const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as Conv2DBackpropFilterInputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const wasm = backend as KernelBackend;
  if (x === undefined || dy === undefined) {
    throw new Error(`${Conv2DBackpropFilter} needs inputs x and dy`);
  }
  if (dataFormat !== 'NHWC') {
    throw new Error(
      `${Conv2DBackpropFilter} on backend '${WASM_BACKEND}' supports dataFormat 'NHWC' only, got '${dataFormat}'`,
    );
  }

  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { filterHeight, filterWidth, strideHeight, strideWidth, inHeight, inWidth } = info;
  const { outHeight, outWidth, inChannels, outChannels } = info;
  const { top, left } = info.padInfo;
  // With dimRoundingMode 'ceil' the last output rows can reach past the padded input; extra
  // zero padding makes the correlation cover every kernel tap, as those taps read zeros forward.
  const bottom = Math.max(info.padInfo.bottom, (outHeight - 1) * strideHeight + filterHeight - inHeight - top);
  const right = Math.max(info.padInfo.right, (outWidth - 1) * strideWidth + filterWidth - inWidth - left);

  const [batch = 0, dyHeight = 0, dyWidth = 0, dyChannels = 0] = dy.shape;
  if (batch !== info.batchSize || dyChannels !== outChannels || dyHeight < outHeight || dyWidth < outWidth) {
    throw new Error(`${Conv2DBackpropFilter}: dy [${dy.shape}] does not fit conv output [${info.outShape}]`);
  }

  const exact = dyHeight === outHeight && dyWidth === outWidth;
  const kernels = convolutionKernels(wasm as BackendWasm);
  if (kernels !== undefined && exact && x.dtype === 'float32') {
    const simd = wasm as BackendWasm;
    const dw = simd.makeOutput(filterShape, 'float32');
    const at = (t: TensorInfo) => heapOffset(simd, t, Conv2DBackpropFilter);
    const shapes = [
      batch,
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
    ] as const;
    if (inChannels * filterWidth < FEW_FILTER_ROW_VALUES) {
      kernels.conv2d_backprop_filter_direct(at(x), at(dy), at(dw), ...shapes);
      return dw;
    }
    // Panels for as many pixels as fit in SCRATCH_FLOATS, and for one at least.
    const pixelFloats = kernels.filter_gradient_pixel_floats(inChannels, filterWidth, outChannels);
    const scratchFloats = Math.max(pixelFloats, Math.min(SCRATCH_FLOATS, batch * outHeight * outWidth * pixelFloats));
    withScratch(simd, scratchFloats, (scratch) =>
      kernels.conv2d_backprop_filter(at(x), at(dy), at(dw), scratch, scratchFloats, ...shapes),
    );
    return dw;
  }

  return withTemporaries(wasm, (run) => {
    // tfjs-core's conv2d gradient drops dimRoundingMode, so with 'ceil' dy can be a row/column
    // larger than these attrs say; the cpu kernel then reads only the top-left part, as here.
    const dyUsed = exact ? dy : run(Slice, { x: dy }, { begin: [0, 0, 0, 0], size: info.outShape });
    const xT = run(Transpose, { x }, { perm: [3, 1, 2, 0] }); // [ci,H,W,b]
    const dyT = run(Transpose, { x: dyUsed }, { perm: [1, 2, 0, 3] }); // [oh,ow,b,co]
    const corr = run(
      Conv2D,
      { x: xT, filter: dyT },
      {
        strides: 1,
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: [strideHeight, strideWidth],
      },
    ); // [ci, ≥kh, ≥kw, co]
    // Leftover rows/columns (stride not dividing the padded extent) are taps past the kernel.
    const taps =
      corr.shape[1] === filterHeight && corr.shape[2] === filterWidth
        ? corr
        : run(
            Slice,
            { x: corr },
            {
              begin: [0, 0, 0, 0],
              size: [inChannels, filterHeight, filterWidth, outChannels],
            },
          );
    // The result is handed to the engine, so it is no temporary.
    return runWasmKernel(Transpose, wasm, { x: taps }, { perm: [1, 2, 0, 3] }); // [kh,kw,ci,co]
  });
};

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: WASM_BACKEND,
  kernelFunc: conv2DBackpropFilter,
};
