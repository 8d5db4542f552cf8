import type { DatasetSource } from '../datasets/dataset.ts';
import type { ModelFacts } from './model.ts';

// Plain arithmetic, without TensorFlow.js: the architecture files count their parameters with these,
// and a test checks every count against the built network's countParams().

/** Weights and biases of a square-kernel 2-D convolution. */
export function convolutionParameters(inputChannels: number, filters: number, kernelSize: number): number {
  return (kernelSize * kernelSize * inputChannels + 1) * filters;
}

/** Weights and biases of a dense layer. */
export function denseParameters(inputs: number, units: number): number {
  return (inputs + 1) * units;
}

/** The side of a window operation's output without padding ('valid'): a convolution's or a pool's. */
export function validOutputSize(size: number, window: number, stride = 1): number {
  return Math.floor((size - window) / stride) + 1;
}

/** Trainable parameters of `model` trained on `dataset`. */
export function parameterCount(
  model: ModelFacts,
  dataset: Pick<DatasetSource, 'name' | 'shape' | 'classNames'>,
): number {
  return model.parameterCount(dataset.shape, dataset.classNames.length);
}
