import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { TrainLayers } from '../contract/job-request.ts';

/**
 * Starts `model` from the weights of `source`, another build of the same architecture for the
 * same input: layer by layer, in order. The last layer is copied only when the class counts agree;
 * otherwise it keeps its fresh initialisation, as a new head. Answers whether the head is new.
 */
export function initialiseFrom(model: tfl.LayersModel, source: tfl.LayersModel): { readonly newHead: boolean } {
  const layers = model.layers;
  const sourceLayers = source.layers;
  if (layers.length !== sourceLayers.length) {
    throw new Error(
      `the model to start from has ${sourceLayers.length} layers, this one ${layers.length}: not the same architecture`,
    );
  }
  let newHead = false;
  layers.forEach((layer, index) => {
    const from = (sourceLayers[index] as tfl.layers.Layer).getWeights();
    const to = layer.getWeights();
    const fits =
      from.length === to.length && from.every((weight, i) => weight.shape.join() === (to[i] as tf.Tensor).shape.join());
    if (fits) {
      layer.setWeights(from);
    } else if (index === layers.length - 1) {
      newHead = true;
    } else {
      throw new Error(
        `layer ${index + 1} (${layer.name}) of the model to start from has other shapes: not the same architecture and input`,
      );
    }
  });
  return { newHead };
}

/**
 * Freezes the layers `trainLayers` leaves as they are: `dense`, all but the dense layers; `head`,
 * all but the last (the classifier); `top`, those before the network's top stage (topStart). A
 * frozen BatchNorm layer normalises with its moving statistics and leaves them alone, as Keras does
 * (tfjs-layers would use and update the batch's statistics in training whatever `trainable` says).
 */
export function setTrainableLayers(model: tfl.LayersModel, trainLayers: TrainLayers, topStart: number): void {
  if (trainLayers === 'all') return;
  const last = model.layers.length - 1;
  model.layers.forEach((layer, index) => {
    layer.trainable =
      trainLayers === 'dense'
        ? layer.getClassName() === 'Dense'
        : trainLayers === 'head'
          ? index === last
          : index >= topStart;
    if (!layer.trainable && layer.getClassName() === 'BatchNormalization') inInferenceMode(layer);
  });
}

function inInferenceMode(layer: tfl.layers.Layer): void {
  const call = layer.call.bind(layer);
  layer.call = (inputs, kwargs) => call(inputs, { ...kwargs, training: false });
}

/** The values of the weights that don't train, in the model's weights order: what a replica thread's copy must start from too. */
export function frozenWeightValues(model: tfl.LayersModel): Float32Array[] {
  return model.weights.filter((weight) => !weight.trainable).map((weight) => weight.read().dataSync() as Float32Array);
}

/** Sets the weights that don't train from frozenWeightValues of another copy of the model. */
export function setFrozenWeights(model: tfl.LayersModel, values: readonly Float32Array[]): void {
  const frozen = model.weights.filter((weight) => !weight.trainable);
  if (frozen.length !== values.length)
    throw new Error(`${values.length} frozen weight values for ${frozen.length} frozen weights`);
  frozen.forEach((weight, index) => {
    const value = tf.tensor(values[index] as Float32Array, weight.read().shape, 'float32');
    weight.write(value);
    value.dispose();
  });
}
