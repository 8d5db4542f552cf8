import * as tfl from '@tensorflow/tfjs-layers';
import { lenet5Facts, lenet5Layers } from './lenet5-architecture.ts';
import { afterFlatten, type ModelDefinition } from './model.ts';
import { initialiseLikePyTorch } from './pytorch-init.ts';

/** LeNet-5 as in the course notebook, built from the layer sizes in lenet5-architecture.ts. */
export const lenet5: ModelDefinition = {
  ...lenet5Facts,
  build({ height, width, channels }, classes, seed) {
    const { convolutions, pool, hidden } = lenet5Layers;
    const model = tfl.sequential({
      name: 'lenet5',
      layers: [
        ...convolutions.flatMap(({ filters, kernelSize }, index) => [
          tfl.layers.conv2d({
            ...(index === 0 ? { inputShape: [height, width, channels] } : {}),
            filters,
            kernelSize,
            activation: 'relu',
          }),
          tfl.layers.maxPooling2d({ poolSize: pool, strides: pool }),
        ]),
        tfl.layers.flatten(),
        ...hidden.map((units) => tfl.layers.dense({ units, activation: 'relu' })),
        tfl.layers.dense({ units: classes }),
      ],
    });
    initialiseLikePyTorch(model, seed);
    return model;
  },
  topStart: afterFlatten,
};
