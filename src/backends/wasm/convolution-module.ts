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
  /** dx of a convolution from dy and the [kH, kW, inC, outC] filter, summed tap by tap: for few input channels at stride 2 and more. */
  conv2d_backprop_input_direct(
    dy: number,
    w: number,
    dx: number,
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
  /** The forward depthwise convolution, y from x and the filter. */
  depthwise_conv2d: DepthwiseGradientKernel;
  /** dx of a depthwise convolution from dy and the filter. */
  depthwise_conv2d_backprop_input: DepthwiseGradientKernel;
  /** Its dw from x and dy. */
  depthwise_conv2d_backprop_filter: DepthwiseGradientKernel;
  /** c = a · b, row-major [m, k] · [k, n]; scratch holds 256 × 16 floats. */
  matmul(a: number, b: number, c: number, scratch: number, m: number, k: number, n: number): void;
  add_bias(x: number, bias: number, y: number, rows: number, channels: number): void;
  sum_rows(x: number, out: number, rows: number, channels: number): void;
  /**
   * FusedBatchNorm over `rows` rows of `columns` values; each parameter's stride is 1 (a value per
   * column) or 0 (one for all), a missing scale or offset is offset 0; `factors` holds 3 × columns floats.
   */
  batch_norm(
    x: number,
    mean: number,
    variance: number,
    scale: number,
    offset: number,
    factors: number,
    y: number,
    rows: number,
    columns: number,
    epsilon: number,
    meanStride: number,
    varianceStride: number,
    scaleStride: number,
    offsetStride: number,
  ): void;
  /** out[o, c] = mean over r of x[o, r, c]; `partial` holds `channels` floats. */
  mean_rows(x: number, out: number, partial: number, outer: number, rows: number, channels: number): void;
  /** out[i] = x[i] ≥ value, as bool bytes, for `count` floats. */
  greater_equal_value: ValueComparison;
  /** out[i] = x[i] ≤ value, as bool bytes, for `count` floats. */
  less_equal_value: ValueComparison;
  /** out[i] = a[i] && b[i] for `count` bool bytes. */
  logical_and(a: number, b: number, out: number, count: number): void;
  /** out[i] = condition[i] ? t[i] : e[i] for `count` values of 4 bytes. */
  select_values(condition: number, t: number, e: number, out: number, count: number): void;
}

/** A float32 tensor compared with one value, into bool bytes. */
export type ValueComparison = (x: number, value: number, out: number, count: number) => void;

const exportNames = [
  'pack_filter',
  'conv2d',
  'filter_gradient_pixel_floats',
  'conv2d_backprop_filter',
  'conv2d_backprop_filter_direct',
  'conv2d_backprop_input_direct',
  'depthwise_conv2d',
  'depthwise_conv2d_backprop_input',
  'depthwise_conv2d_backprop_filter',
  'matmul',
  'add_bias',
  'sum_rows',
  'batch_norm',
  'mean_rows',
  'greater_equal_value',
  'less_equal_value',
  'logical_and',
  'select_values',
] as const;

const convolutionModule = heapModule<ConvolutionKernels>(
  () => readFileSync(new URL('./simd/convolutions.wasm', import.meta.url)),
  // A plain object of the named functions (an instance's exports are frozen), so that a test can
  // watch which kernel a case runs.
  (exports) =>
    exportNames.every((name) => typeof exports[name] === 'function')
      ? (Object.fromEntries(exportNames.map((name) => [name, exports[name]])) as unknown as ConvolutionKernels)
      : undefined,
);

/** The kernels on this backend's memory, or undefined where they can't run here. */
export function convolutionKernels(backend: BackendWasm): ConvolutionKernels | undefined {
  return convolutionModule.onBackend(backend);
}
