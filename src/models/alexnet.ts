import * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom } from '../random.ts';
import { adaptiveAveragePooling2d } from './adaptive-average-pooling.ts';
import type { ModelDefinition } from './model.ts';
import { initialiseLikePyTorch } from './pytorch-init.ts';
import { seededDropout } from './seeded-dropout.ts';

/** XORed into the job seed's first draw, so the dropout masks don't share initialisation's stream. */
const DROPOUT_SALT = 0x44524f50;

/**
 * The course notebook's AlexNet for small images: five 3x3 convolutions (64, 192, 384, 256, 256)
 * with three 2x2 max-pools, adaptive average pooling to 6x6 whatever the input size (4x4 on
 * CIFAR-10, 3x3 on MNIST), then dropout, dense 4096, dropout, dense 4096, dense classes.
 * 56,826,698 parameters on CIFAR-10, 56,825,546 on MNIST (only the first convolution differs).
 *
 * PyTorch flattens NCHW and this NHWC, so the first dense layer sees the 9,216 features in another
 * order: the same network up to a permutation of its weights, which doesn't matter from scratch.
 */
export const alexnet: ModelDefinition = {
  name: 'alexnet',
  description:
    'AlexNet (CIFAR variant): conv 64, 192, 384, 256, 256 @3x3 with 3 max-pools, adaptive avg-pool 6x6, dropout, dense 4096, dropout, dense 4096, classes',
  defaultWeightDecay: 1e-4,
  build({ height, width, channels }, classes, seed) {
    const salted = new SeededRandom(new SeededRandom(seed).seed() ^ DROPOUT_SALT);
    // initialiseLikePyTorch overwrites every kernel and bias, so tfjs's own Glorot draws (a second
    // 57M-value random draw in JS, seconds) are skipped.
    const initialisers = { kernelInitializer: 'zeros', biasInitializer: 'zeros' } as const;
    const conv = (filters: number, inputShape?: number[]) =>
      tfl.layers.conv2d({ ...(inputShape ? { inputShape } : {}), ...initialisers, filters, kernelSize: 3, padding: 'same', activation: 'relu' });
    const dense = (units: number, activation?: 'relu') => tfl.layers.dense({ ...initialisers, units, ...(activation ? { activation } : {}) });
    const maxPool = () => tfl.layers.maxPooling2d({ poolSize: 2, strides: 2 });
    const model = tfl.sequential({
      name: 'alexnet',
      layers: [
        conv(64, [height, width, channels]),
        maxPool(),
        conv(192),
        maxPool(),
        conv(384),
        conv(256),
        conv(256),
        maxPool(),
        adaptiveAveragePooling2d({ outputSize: [6, 6] }),
        tfl.layers.flatten(),
        seededDropout({ rate: 0.5, seed: salted.seed() }),
        dense(4096, 'relu'),
        seededDropout({ rate: 0.5, seed: salted.seed() }),
        dense(4096, 'relu'),
        dense(classes),
      ],
    });
    initialiseLikePyTorch(model, seed);
    return model;
  },
};
