/**
 * BatchMatMul override. In `@tensorflow/tfjs-backend-wasm` 4.22 the built-in kernel is a scalar C++
 * loop for transposed operands, and XNNPACK, which it runs for the others, repacks new weights on
 * every call; this replacement only handles the cases where it measured faster and passes every
 * other case to the built-in kernel.
 */
import {
  BatchMatMul,
  Transpose,
  util,
  type BatchMatMulAttrs,
  type BatchMatMulInputs,
  type KernelBackend,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels, type ConvolutionKernels } from '../convolution-module.ts';
import {
  callKernel,
  heapOffset,
  runWasmKernel,
  withScratch,
  withTemporaries,
  type KernelOverride,
} from '../kernel-calls.ts';

/** The permutation that swaps a tensor's last two axes. */
function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

/** The floats matmul of simd/convolutions.c packs one panel of the right-hand operand into. */
const PANEL_FLOATS = 256 * 16;

/**
 * A dense layer's forward product x·W, through matmul of simd/convolutions.c: XNNPACK packs all of
 * W into a copy on every call, and in training W is new on every call, which made that packing
 * most of the product's time (figures: docs/architecture.md#why-our-own-kernels). Only where W is
 * the larger operand (n ≥ m): matmul reads the left operand once per 16 columns.
 */
function denseProduct(
  kernels: ConvolutionKernels,
  backend: BackendWasm,
  a: TensorInfo,
  b: TensorInfo,
  m: number,
  k: number,
  n: number,
): TensorInfo {
  // Leading axes are all 1 here; the output has as many as the operand with more.
  const leading = Math.max(a.shape.length, b.shape.length) - 2;
  const c = backend.makeOutput([...Array<number>(leading).fill(1), m, n], 'float32');
  const at = (t: TensorInfo) => heapOffset(backend, t, BatchMatMul);
  withScratch(backend, PANEL_FLOATS, (panel) => kernels.matmul(at(a), at(b), at(c), panel, m, k, n));
  return c;
}

/**
 * BatchMatMul: the built-in kernel runs XNNPACK only with neither operand transposed and no batch;
 * any transpose falls to a scalar triple loop, and backpropagation through a dense layer asks for
 * exactly those: dX = dY·Wᵀ and dW = Xᵀ·dY. Materialising the transpose with the Transpose kernel
 * and calling the XNNPACK path is far faster. Which operand gets transposed is chosen by cost: for
 * dY·Wᵀ with a large W it is cheaper to compute (W·dYᵀ)ᵀ, transposing only the small tensors.
 */
export const batchMatMulOverride: KernelOverride = {
  kernelName: BatchMatMul,
  wrap: (builtIn) => (args) => {
    const { a, b } = args.inputs as BatchMatMulInputs;
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    if (a === undefined || b === undefined) return builtIn(args);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2)
      return builtIn(args);
    // XNNPACK's path and ours take one matrix pair; batched products stay with the built-in kernel.
    if (util.sizeFromShape(a.shape.slice(0, -2)) !== 1 || util.sizeFromShape(b.shape.slice(0, -2)) !== 1)
      return builtIn(args);
    const [aRows = 0, aCols = 0] = a.shape.slice(-2);
    const [bRows = 0, bCols = 0] = b.shape.slice(-2);
    const m = transposeA ? aCols : aRows;
    const k = transposeA ? aRows : aCols;
    const n = transposeB ? bRows : bCols;
    if ((transposeB ? bCols : bRows) !== k) return builtIn(args); // it reports the shape mismatch
    if (!transposeA && !transposeB) {
      const kernels = convolutionKernels(args.backend as BackendWasm);
      return kernels !== undefined && n >= m
        ? denseProduct(kernels, args.backend as BackendWasm, a, b, m, k, n)
        : builtIn(args);
    }
    const backend = args.backend as KernelBackend;
    const plain = { transposeA: false, transposeB: false };

    // Elements moved besides the product itself: transposes, plus XNNPACK packing its right-hand
    // operand (the "weights", k × columns) on every call, plus, swapped, transposing the result.
    const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
    const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + k * m + 2 * m * n;
    return withTemporaries(backend, (run) => {
      const transposed = (x: TensorInfo): TensorInfo => run(Transpose, { x }, { perm: swapLastTwo(x.shape.length) });
      if (direct <= swapped) {
        const left = transposeA ? transposed(a) : a; // [m, k]
        const right = transposeB ? transposed(b) : b; // [k, n]
        return callKernel(BatchMatMul, builtIn, backend, { a: left, b: right }, plain);
      }
      const left = transposeB ? b : transposed(b); // [n, k]
      const right = transposeA ? a : transposed(a); // [k, m]
      const product = callKernel(BatchMatMul, builtIn, backend, { a: left, b: right }, plain); // [n, m]
      try {
        return runWasmKernel(Transpose, backend, { x: product }, { perm: swapLastTwo(product.shape.length) });
      } finally {
        backend.disposeData(product.dataId);
      }
    });
  },
};
