/**
 * The layer kernels of simd/convolutions.c (built into simd/convolutions.wasm by
 * simd/build.sh), instantiated on the wasm backend's own linear memory: they read and write
 * tensors where the backend keeps them, by byte offset, with no copies.
 */
import { readFileSync } from 'node:fs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapModule } from './heap-module.ts';

/**
 * Either gradient of a depthwise convolution with channel multiplier `multiplier` (outC = inC ·
 * multiplier): its two operands, its output, then the shapes.
 */
export type DepthwiseGradientKernel = (
  first: number,
  second: number,
  out: number,
  batch: number,
  inH: number,
  inW: number,
  inC: number,
  outH: number,
  outW: number,
  multiplier: number,
  kH: number,
  kW: number,
  sH: number,
  sW: number,
  padTop: number,
  padLeft: number,
) => void;

/** Shapes and offsets as convolutions.c takes them; every pointer is a byte offset in the backend's memory. */
export interface ConvolutionKernels {
  /** The filter as conv2d reads it: rows × ⌈outC / 8⌉ · 8 floats at `packed`. */
  pack_filter(w: number, packed: number, rows: number, outC: number): void;
  conv2d(
    x: number,
    packed: number,
    y: number,
    batch: number,
    inH: number,
    inW: number,
    inC: number,
    outH: number,
    outW: number,
    outC: number,
    kH: number,
    kW: number,
    sH: number,
    sW: number,
    padTop: number,
    padLeft: number,
  ): void;
  /** The floats of conv2d_backprop_filter's scratch that one output pixel's panels take. */
  filter_gradient_pixel_floats(inC: number, kW: number, outC: number): number;
  conv2d_backprop_filter(
    x: number,
    dy: number,
    dw: number,
    scratch: number,
    scratchFloats: number,
    batch: number,
    inH: number,
    inW: number,
    inC: number,
    outH: number,
    outW: number,
    outC: number,
    kH: number,
    kW: number,
    sH: number,
    sW: number,
    padTop: number,
    padLeft: number,
  ): void;
  /** conv2d_backprop_filter without its packing and scratch: faster where kW·inC < 8. */
  conv2d_backprop_filter_direct(
    x: number,
    dy: number,
    dw: number,
    batch: number,
    inH: number,
    inW: number,
    inC: number,
    outH: number,
    outW: number,
    outC: number,
    kH: number,
    kW: number,
    sH: number,
    sW: number,
    padTop: number,
    padLeft: number,
  ): void;
  /** dx of a depthwise convolution from dy and the filter. */
  depthwise_conv2d_backprop_input: DepthwiseGradientKernel;
  /** Its dw from x and dy. */
  depthwise_conv2d_backprop_filter: DepthwiseGradientKernel;
  /** c = a · b, row-major [m, k] · [k, n]; scratch holds 256 × 16 floats. */
  matmul(a: number, b: number, c: number, scratch: number, m: number, k: number, n: number): void;
  add_bias(x: number, bias: number, y: number, rows: number, channels: number): void;
  sum_rows(x: number, out: number, rows: number, channels: number): void;
}

const exportNames = [
  'pack_filter',
  'conv2d',
  'filter_gradient_pixel_floats',
  'conv2d_backprop_filter',
  'conv2d_backprop_filter_direct',
  'depthwise_conv2d_backprop_input',
  'depthwise_conv2d_backprop_filter',
  'matmul',
  'add_bias',
  'sum_rows',
] as const;

const convolutionModule = heapModule<ConvolutionKernels>(
  () => readFileSync(new URL('./simd/convolutions.wasm', import.meta.url)),
  (exports) =>
    exportNames.every((name) => typeof exports[name] === 'function')
      ? (exports as unknown as ConvolutionKernels)
      : undefined,
);

/** The kernels on this backend's memory, or undefined where they can't run here. */
export function convolutionKernels(backend: BackendWasm): ConvolutionKernels | undefined {
  return convolutionModule.onBackend(backend);
}
