import type { ModelFacts } from './model.ts';
import { convolutionParameters, denseParameters } from './parameter-count.ts';

/**
 * The course notebook's AlexNet for small images, the one place its layer sizes are written:
 * alexnet.ts builds the network from them, and its facts here count its parameters from them.
 */
export const alexnetLayers = {
  /** In order: a ReLU convolution of that many filters (`kernelSize`, 'same' padding), or a max-pool. */
  features: [64, 'max-pool', 192, 'max-pool', 384, 256, 256, 'max-pool'],
  kernelSize: 3,
  pool: 2,
  /** Adaptive average pooling to this many rows and columns, whatever the input size (4x4 on CIFAR-10, 3x3 on MNIST). */
  pooledSize: 6,
  /** Each a dropout of `dropout`, then a ReLU dense layer, before the dense layer of one logit per class. */
  hidden: [4096, 4096],
  dropout: 0.5,
} as const;

/**
 * 56,826,698 parameters on CIFAR-10, 56,825,546 on MNIST: only the first convolution differs, since
 * the adaptive pooling gives the dense layers 6·6·256 = 9,216 features from any input.
 */
export const alexnetFacts: ModelFacts = {
  name: 'alexnet',
  description:
    'AlexNet (CIFAR variant): conv 64, 192, 384, 256, 256 @3x3 with 3 max-pools, adaptive avg-pool 6x6, dropout, dense 4096, dropout, dense 4096, classes',
  defaultWeightDecay: 1e-4,
  recipe: { learningRate: 0.01, batchSize: 64, learningRateSchedule: null },
  parameterCount({ channels }, classes) {
    const { features, kernelSize, pooledSize, hidden } = alexnetLayers;
    let count = 0;
    let depth = channels;
    for (const layer of features) {
      if (layer === 'max-pool') continue;
      count += convolutionParameters(depth, layer, kernelSize);
      depth = layer;
    }
    let inputs = pooledSize * pooledSize * depth;
    for (const units of [...hidden, classes]) {
      count += denseParameters(inputs, units);
      inputs = units;
    }
    return count;
  },
};
