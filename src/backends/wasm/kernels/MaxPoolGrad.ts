/**
 * MaxPoolGrad override, with its JavaScript passes: the built-in kernel of
 * `@tensorflow/tfjs-backend-wasm` 4.22 routes ties differently from cpu and is a slow generic loop.
 */
import {
  backend_util,
  MaxPoolGrad,
  util,
  type MaxPoolGradAttrs,
  type MaxPoolGradInputs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffset, type KernelOverride } from '../kernel-calls.ts';
import { maxPool2x2GradOnBackend, type MaxPool2x2GradFn } from '../max-pool-grad-module.ts';

/**
 * MaxPoolGrad: routes each dy value to the first maximum of its window (row-major), exactly as the
 * cpu backend, TensorFlow and PyTorch do. The built-in wasm kernel takes the last maximum instead,
 * drops the gradient of any window whose maximum is below FLT_MIN (all ≤ 0, e.g. all zeros after a
 * ReLU: harmless there, as ReLU's gradient is 0 at 0, but wrong for negative inputs), and is a slow
 * generic 3-D pooling loop. The common 2x2 pool at stride 2 (LeNet's, AlexNet's) runs as a small
 * WebAssembly SIMD module on the backend's own memory (../max-pool-grad-module.ts); every other pool,
 * and that one wherever the module can't reach the memory, is one pass in JavaScript over the wasm
 * heap, 2-4x faster than the built-in kernel on those pools. Composing wasm kernels is no
 * alternative: keeping exactly one maximum per 2x2 window (rank-6 transposes, Equal, Cumsum,
 * LogicalAnd, Multiply) measured 5-6x slower than the built-in kernel.
 */
export const maxPoolGradOverride: KernelOverride = {
  kernelName: MaxPoolGrad,
  wrap: (builtIn) => (args) => {
    const { dy, input } = args.inputs as MaxPoolGradInputs;
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolGradAttrs;
    if (dy === undefined || input === undefined || dy.dtype !== 'float32' || input.dtype !== 'float32')
      return builtIn(args);
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    if (!util.arraysEqual(dy.shape, info.outShape)) return builtIn(args);
    const backend = args.backend as BackendWasm;
    const dx = backend.makeOutput(input.shape, 'float32');
    const pass = isInside2x2Stride2(info) ? maxPool2x2GradOnBackend(backend) : undefined;
    if (pass !== undefined) {
      runMaxPool2x2Grad(pass, backend, dx, input, dy, info);
      return dx;
    }
    // Views only after allocating: an allocation can grow the heap, which detaches older views.
    maxPoolGradInto(
      backend.typedArrayFromHeap(dx) as Float32Array,
      backend.typedArrayFromHeap(input) as Float32Array,
      backend.typedArrayFromHeap(dy) as Float32Array,
      info,
    );
    return dx;
  },
};

/** 2x2 windows at stride 2 that all lie inside the input ('valid', or 'same' on even sizes). */
function isInside2x2Stride2(info: backend_util.Conv2DInfo): boolean {
  const { filterHeight, filterWidth, strideHeight, strideWidth, inHeight, inWidth, outHeight, outWidth } = info;
  const { top, left } = info.padInfo;
  const inside = top === 0 && left === 0 && 2 * outHeight <= inHeight && 2 * outWidth <= inWidth;
  return filterHeight === 2 && filterWidth === 2 && strideHeight === 2 && strideWidth === 2 && inside;
}

/**
 * The 2x2 stride-2 pass in WebAssembly, directly on the backend's heap (../max-pool-grad-module.ts), with
 * the JavaScript pass's semantics. It takes byte offsets, not views, so a heap that grew since (even
 * in makeOutput for dx) needs nothing. Measured on LeNet's pools at batch 64: [64,24,24,6] 0.080 ms
 * against the JavaScript pass's 1.33 ms, [64,8,8,16] 0.017 against 0.33 ms.
 */
function runMaxPool2x2Grad(
  pass: MaxPool2x2GradFn,
  backend: BackendWasm,
  dx: TensorInfo,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const offset = (t: TensorInfo): number => heapOffset(backend, t, 'MaxPoolGrad');
  const [xAt, dyAt, dxAt] = [offset(x), offset(dy), offset(dx)];
  // An odd height or width leaves a last row or column that no window reads: its gradient is 0.
  if (inHeight !== 2 * outHeight || inWidth !== 2 * outWidth) (backend.typedArrayFromHeap(dx) as Float32Array).fill(0);
  const pixelBytes = 4 * channels;
  const rowBytes = inWidth * pixelBytes;
  if (inHeight === 2 * outHeight) {
    pass(xAt, dyAt, dxAt, batchSize * outHeight, outWidth, pixelBytes, rowBytes, 2 * rowBytes);
    return;
  }
  // Odd height: window rows don't run on evenly across images, so one call per image.
  const imageBytes = inHeight * rowBytes;
  const dyImageBytes = outHeight * outWidth * pixelBytes;
  for (let b = 0; b < batchSize; b++) {
    pass(
      xAt + b * imageBytes,
      dyAt + b * dyImageBytes,
      dxAt + b * imageBytes,
      outHeight,
      outWidth,
      pixelBytes,
      rowBytes,
      2 * rowBytes,
    );
  }
}

function maxPoolGradInto(dx: Float32Array, x: Float32Array, dy: Float32Array, info: backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth } = info;
  const { top, left } = info.padInfo;
  if (isInside2x2Stride2(info)) {
    maxPool2x2GradInto(dx, x, dy, info);
    return;
  }
  dx.fill(0);
  let dyAt = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - top;
      const hFrom = Math.max(0, h0);
      const hTo = Math.min(inHeight, h0 + filterHeight);
      for (let ow = 0; ow < outWidth; ow++) {
        const w0 = ow * strideWidth - left;
        const wFrom = Math.max(0, w0);
        const wTo = Math.min(inWidth, w0 + filterWidth);
        for (let c = 0; c < channels; c++, dyAt++) {
          let best = -Infinity;
          let where = -1;
          for (let h = hFrom; h < hTo; h++) {
            let xAt = ((b * inHeight + h) * inWidth + wFrom) * channels + c;
            for (let w = wFrom; w < wTo; w++, xAt += channels) {
              const value = x[xAt] as number;
              // Strictly greater: ties keep the first; NaN and −∞ never win, as on cpu.
              if (value > best) {
                best = value;
                where = xAt;
              }
            }
          }
          if (where >= 0) dx[where] = (dx[where] as number) + (dy[dyAt] as number);
        }
      }
    }
  }
}

/**
 * The JavaScript fallback of the WebAssembly 2x2 pass (where the backend's memory can't be reached).
 * The common 2x2 pool with stride 2 and no padding (LeNet's and AlexNet's): windows don't overlap,
 * so each input value gets its window's dy or 0, written once, in one pass with the window unrolled.
 * Same routing as the general loop: the first maximum in row-major order, NaN and −∞ never win.
 * Measured on LeNet's first pool ([64,24,24,6]): 1.45 ms against the general loop's 2.06 ms; the
 * branches on the maximum's position dominate (a branch-free variant with Math.max and a select
 * table measured 1.87 ms, the wasm MaxPoolWithArgmax + ScatterNd 2.1 ms and it routes ties to the
 * last maximum).
 */
function maxPool2x2GradInto(dx: Float32Array, x: Float32Array, dy: Float32Array, info: backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  // An odd height or width leaves a last row or column that no window reads: its gradient is 0.
  if (inHeight !== 2 * outHeight || inWidth !== 2 * outWidth) dx.fill(0);
  const rowStride = inWidth * channels;
  let dyAt = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      let p00 = (b * inHeight + 2 * oh) * rowStride;
      for (let ow = 0; ow < outWidth; ow++, p00 += channels) {
        for (let c = 0; c < channels; c++, p00++, dyAt++) {
          const p01 = p00 + channels;
          const p10 = p00 + rowStride;
          const p11 = p10 + channels;
          const v00 = x[p00] as number;
          const v01 = x[p01] as number;
          const v10 = x[p10] as number;
          const v11 = x[p11] as number;
          let best = -Infinity;
          let where = -1;
          if (v00 > best) {
            best = v00;
            where = 0;
          }
          if (v01 > best) {
            best = v01;
            where = 1;
          }
          if (v10 > best) {
            best = v10;
            where = 2;
          }
          if (v11 > best) where = 3;
          const g = dy[dyAt] as number;
          dx[p00] = where === 0 ? g : 0;
          dx[p01] = where === 1 ? g : 0;
          dx[p10] = where === 2 ? g : 0;
          dx[p11] = where === 3 ? g : 0;
        }
      }
    }
  }
}
