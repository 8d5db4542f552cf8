import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];
type Shape = tfl.Shape;

export interface AdaptiveAveragePooling2DArgs extends LayerArgs {
  /** Output [height, width]; a single number means a square output. */
  outputSize: number | readonly [number, number];
}

/**
 * PyTorch's window along one axis: output cell i of m, over an input of n cells, averages input
 * cells floor(i·n/m) up to ceil((i+1)·n/m), exclusive. Windows may overlap, and when n < m
 * input cells repeat (3 → 6 doubles each cell).
 */
function adaptiveWindow(i: number, n: number, m: number): { start: number; end: number } {
  // i·n/m is a quotient of small integers, so floor and ceil of the rounded double are exact.
  return { start: Math.floor((i * n) / m), end: Math.ceil(((i + 1) * n) / m) };
}

/** Pᵀ as an [n, m] matrix: column i averages the input cells of output cell i. */
function averagingMatrixTransposed(n: number, m: number): Float32Array {
  const values = new Float32Array(n * m);
  for (let i = 0; i < m; i++) {
    const { start, end } = adaptiveWindow(i, n, m);
    for (let j = start; j < end; j++) values[j * m + i] = 1 / (end - start);
  }
  return values;
}

function positiveInteger(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(`AdaptiveAveragePooling2D: ${what} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function exactlyOneTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (!Array.isArray(inputs)) return inputs;
  const [only] = inputs;
  if (inputs.length !== 1 || only === undefined) {
    throw new Error(`AdaptiveAveragePooling2D takes one input, got ${inputs.length}`);
  }
  return only;
}

/**
 * nn.AdaptiveAvgPool2d for NHWC input: any height × width becomes `outputSize`, each output cell
 * the mean of its window (see adaptiveWindow). The pooling is linear and separable, so it is two
 * plain 2-D matMuls with fixed averaging matrices Pᵀ_w [W, m_w] and Pᵀ_h [H, m_h]:
 *
 *   NHWC → [N,C,H,W] = [N·C·H, W] · Pᵀ_w → [N·C, H, m_w] → [N·C, m_w, H] = [N·C·m_w, H] · Pᵀ_h
 *        → [N, C, m_w, m_h] → [N, m_h, m_w, C]
 *
 * Every op has a wasm kernel and the gradient comes from autodiff (the matrices are constants, so
 * only the input's gradient is computed). Measured on wasm for AlexNet's [64,4,4,256] → 6x6,
 * forward + backward: 6 ms of kernel time, against 15 ms for the transpose-free variant with
 * broadcast batched matMuls ([1,m,n] · [N,n,k]), whose many tiny products are slow there; the
 * whole training step takes seconds. The matrices' values are computed once per input size and
 * kept as plain arrays; the small tensors are made per call inside the caller's tidy (negligible),
 * so the layer holds no tensors to dispose and survives backend switches.
 */
export class AdaptiveAveragePooling2D extends tfl.layers.Layer {
  static className = 'AdaptiveAveragePooling2D';

  readonly outputSize: readonly [number, number];
  private readonly matrices = new Map<string, Float32Array>();

  constructor(args: AdaptiveAveragePooling2DArgs) {
    super(args);
    const size = typeof args.outputSize === 'number' ? [args.outputSize, args.outputSize] : args.outputSize;
    if (!Array.isArray(size) || size.length !== 2) {
      throw new Error(
        `AdaptiveAveragePooling2D: outputSize must be [height, width], got ${JSON.stringify(args.outputSize)}`,
      );
    }
    this.outputSize = [positiveInteger(size[0], 'outputSize[0]'), positiveInteger(size[1], 'outputSize[1]')];
    this.inputSpec = [{ ndim: 4 }];
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    if (shape.length !== 4) {
      throw new Error(`AdaptiveAveragePooling2D expects [batch, height, width, channels], got [${shape.join(', ')}]`);
    }
    return [shape[0] ?? null, this.outputSize[0], this.outputSize[1], shape[3] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      this.invokeCallHook(inputs, kwargs);
      const x = exactlyOneTensor(inputs);
      if (x.rank !== 4)
        throw new Error(`AdaptiveAveragePooling2D expects a rank-4 NHWC input, got shape [${x.shape.join(', ')}]`);
      const [batch, height, width, channels] = x.shape as [number, number, number, number];
      const [outHeight, outWidth] = this.outputSize;
      if (outHeight === height && outWidth === width) return tf.clone(x);
      let y: tf.Tensor2D = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [batch * channels * height, width]);
      if (outWidth !== width) y = tf.matMul(y, this.matrix(width, outWidth)); // [N·C·H, m_w]
      y = tf.reshape(tf.transpose(tf.reshape(y, [batch * channels, height, outWidth]), [0, 2, 1]), [
        batch * channels * outWidth,
        height,
      ]);
      if (outHeight !== height) y = tf.matMul(y, this.matrix(height, outHeight)); // [N·C·m_w, m_h]
      return tf.transpose(tf.reshape(y, [batch, channels, outWidth, outHeight]), [0, 3, 2, 1]);
    });
  }

  /** Pᵀ [n, m] for an axis of n cells pooled to m; callers run inside a tidy. */
  private matrix(n: number, m: number): tf.Tensor2D {
    const key = `${n}>${m}`;
    let values = this.matrices.get(key);
    if (values === undefined) {
      values = averagingMatrixTransposed(n, m);
      this.matrices.set(key, values);
    }
    return tf.tensor2d(values, [n, m]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), outputSize: [...this.outputSize] };
  }
}

tf.serialization.registerClass(AdaptiveAveragePooling2D);

export function adaptiveAveragePooling2d(args: AdaptiveAveragePooling2DArgs): AdaptiveAveragePooling2D {
  return new AdaptiveAveragePooling2D(args);
}
