import * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom } from '../random.ts';
import { adaptiveAveragePooling2d } from './adaptive-average-pooling.ts';
import { alexnetFacts, alexnetLayers } from './alexnet-architecture.ts';
import { afterFlatten, type ModelDefinition } from './model.ts';
import { initialiseLikePyTorch } from './pytorch-init.ts';
import { seededDropout } from './seeded-dropout.ts';

/** XORed into the job seed's first draw, so the dropout masks don't share initialisation's stream. */
const DROPOUT_SALT = 0x44524f50;

/**
 * The course notebook's AlexNet for small images, built from the layer sizes in
 * alexnet-architecture.ts: 3x3 convolutions with max-pools, adaptive average pooling to 6x6, then
 * dropout and dense layers.
 *
 * PyTorch flattens NCHW and this NHWC, so the first dense layer sees the 9,216 features in another
 * order: the same network up to a permutation of its weights, which doesn't matter from scratch.
 */
export const alexnet: ModelDefinition = {
  ...alexnetFacts,
  build({ height, width, channels }, classes, seed) {
    const { features, kernelSize, pool, pooledSize, hidden, dropout } = alexnetLayers;
    const salted = new SeededRandom(new SeededRandom(seed).seed() ^ DROPOUT_SALT);
    // initialiseLikePyTorch overwrites every kernel and bias, so tfjs's own Glorot draws (a second
    // 57M-value random draw in JS, seconds) are skipped.
    const initialisers = { kernelInitializer: 'zeros', biasInitializer: 'zeros' } as const;
    const conv = (filters: number, inputShape?: number[]) =>
      tfl.layers.conv2d({
        ...(inputShape ? { inputShape } : {}),
        ...initialisers,
        filters,
        kernelSize,
        padding: 'same',
        activation: 'relu',
      });
    const dense = (units: number, activation?: 'relu') =>
      tfl.layers.dense({ ...initialisers, units, ...(activation ? { activation } : {}) });
    const maxPool = () => tfl.layers.maxPooling2d({ poolSize: pool, strides: pool });
    const model = tfl.sequential({
      name: 'alexnet',
      layers: [
        ...features.map((layer, index) =>
          layer === 'max-pool' ? maxPool() : conv(layer, index === 0 ? [height, width, channels] : undefined),
        ),
        adaptiveAveragePooling2d({ outputSize: [pooledSize, pooledSize] }),
        tfl.layers.flatten(),
        // The dropout seeds are drawn in layer order.
        ...hidden.flatMap((units) => [seededDropout({ rate: dropout, seed: salted.seed() }), dense(units, 'relu')]),
        dense(classes),
      ],
    });
    initialiseLikePyTorch(model, seed);
    return model;
  },
  topStart: afterFlatten,
};
