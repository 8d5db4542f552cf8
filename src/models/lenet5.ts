import * as tfl from '@tensorflow/tfjs-layers';
import type { ModelDefinition } from './model.ts';
import { initialiseLikePyTorch } from './pytorch-init.ts';

/** LeNet-5 as in the course notebook: 44,426 parameters on MNIST, 62,006 on CIFAR-10. */
export const lenet5: ModelDefinition = {
  name: 'lenet5',
  description: 'LeNet-5: conv 6@5x5, max-pool, conv 16@5x5, max-pool, dense 120, 84, classes',
  defaultWeightDecay: 0,
  build({ height, width, channels }, classes, seed) {
    const model = tfl.sequential({
      name: 'lenet5',
      layers: [
        tfl.layers.conv2d({ inputShape: [height, width, channels], filters: 6, kernelSize: 5, activation: 'relu' }),
        tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
        tfl.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'relu' }),
        tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 120, activation: 'relu' }),
        tfl.layers.dense({ units: 84, activation: 'relu' }),
        tfl.layers.dense({ units: classes }),
      ],
    });
    initialiseLikePyTorch(model, seed);
    return model;
  },
};
