import type { ModelFacts } from './model.ts';
import { convolutionParameters, denseParameters, validOutputSize } from './parameter-count.ts';

/**
 * LeNet-5 as in the course notebook, the one place its layer sizes are written: lenet5.ts builds
 * the network from them, and its facts here count its parameters from them.
 */
export const lenet5Layers = {
  /** Each a ReLU convolution without padding, then a max-pool of `pool`×`pool`, stride `pool`. */
  convolutions: [
    { filters: 6, kernelSize: 5 },
    { filters: 16, kernelSize: 5 },
  ],
  pool: 2,
  /** ReLU dense layers after flattening, before the dense layer of one logit per class. */
  hidden: [120, 84],
} as const;

/** 44,426 parameters on MNIST, 62,006 on CIFAR-10. */
export const lenet5Facts: ModelFacts = {
  name: 'lenet5',
  description: 'LeNet-5: conv 6@5x5, max-pool, conv 16@5x5, max-pool, dense 120, 84, classes',
  defaultWeightDecay: 0,
  recipe: { learningRate: 0.01, batchSize: 64, learningRateSchedule: null },
  parameterCount({ height, width, channels }, classes) {
    const { convolutions, pool, hidden } = lenet5Layers;
    let count = 0;
    let [rows, columns, depth] = [height, width, channels];
    for (const { filters, kernelSize } of convolutions) {
      count += convolutionParameters(depth, filters, kernelSize);
      rows = validOutputSize(validOutputSize(rows, kernelSize), pool, pool);
      columns = validOutputSize(validOutputSize(columns, kernelSize), pool, pool);
      depth = filters;
    }
    let features = rows * columns * depth;
    for (const units of [...hidden, classes]) {
      count += denseParameters(features, units);
      features = units;
    }
    return count;
  },
};
