import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom } from '../random.ts';

/**
 * Re-initialises every kernel and bias as PyTorch's Conv2d and Linear do by default
 * (kaiming_uniform with a=√5, which is U(-1/√fanIn, 1/√fanIn) for weights and biases alike), so
 * that the notebook's learning rate and momentum behave here as they did there. The values come
 * from our own seeded generator in a plain loop: tf.randomUniform with a seed draws each value
 * through a slow JS generator, which took seconds for AlexNet's 57M weights.
 */
export function initialiseLikePyTorch(model: tfl.LayersModel, seed: number): void {
  const random = new SeededRandom(seed);
  for (const layer of model.layers) initialiseLayerLikePyTorch(layer, random);
}

/** One layer's kernel and bias as initialiseLikePyTorch draws them; a layer without weights is left alone. */
export function initialiseLayerLikePyTorch(layer: tfl.layers.Layer, random: SeededRandom): void {
  const [kernel, bias] = layer.getWeights();
  if (!kernel) return;
  const fanIn = kernel.shape.slice(0, -1).reduce((product, size) => product * size, 1);
  const bound = 1 / Math.sqrt(fanIn);
  const fresh = [kernel, bias]
    .filter((weight): weight is tf.Tensor => weight !== undefined)
    .map((weight) => {
      const values = new Float32Array(weight.size);
      for (let i = 0; i < values.length; i++) values[i] = (2 * random.next() - 1) * bound;
      return tf.tensor(values, weight.shape);
    });
  layer.setWeights(fresh);
  tf.dispose(fresh);
}
