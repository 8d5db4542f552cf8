import type * as tfl from '@tensorflow/tfjs-layers';
import type { ImageShape } from '../datasets/dataset.ts';
import { BaseError } from './base-error.ts';
import { weightLayers } from './layer-keys.ts';
import { describeShapes, networkLayers, sameShapes } from './network-match.ts';
import type { BaseDescription } from './stored-base.ts';

export interface AppliedBase {
  /** The network's layers set from the base, by their keys (layer-keys.ts), in layer order. */
  readonly covered: readonly string[];
  /** True when the classifier kept its fresh initialisation: the base has none with the job's class count. */
  readonly newHead: boolean;
}

/**
 * Starts a freshly built network from a base (loadBase's model), layer by layer by name
 * (layer-keys.ts): every layer with weights but the last from the base's layer of the same name,
 * which must have the same weight shapes, and the last (the classifier) too when the base has it
 * with the same shapes (the same class count), else it keeps its fresh initialisation as a new
 * head. Throws BaseError naming the first layer that doesn't fit, before setting any.
 */
export function applyBase(network: tfl.LayersModel, base: tfl.LayersModel): AppliedBase {
  const layers = weightLayers(network);
  const held = new Map(weightLayers(base).map((layer) => [layer.key, layer]));
  const classifier = layers.at(-1);
  const pairs = layers.slice(0, -1).map((layer) => {
    const source = held.get(layer.key);
    if (!source)
      throw new BaseError(`the base has no layer ${layer.key} (${layer.className}) to start the network from`);
    if (!sameShapes(source.shapes, layer.shapes))
      throw new BaseError(
        `the base's layer ${layer.key} has weights ${describeShapes(source.shapes)}, the network's ${describeShapes(layer.shapes)}`,
      );
    return { layer, source };
  });
  const head = classifier && held.get(classifier.key);
  const newHead = !(classifier && head && sameShapes(head.shapes, classifier.shapes));
  if (!newHead) pairs.push({ layer: classifier, source: head });
  for (const { layer, source } of pairs) layer.layer.setWeights(source.layer.getWeights());
  return { covered: pairs.map(({ layer }) => layer.key), newHead };
}

/**
 * Why the base can't start its network built for `input` (a data set's images), or null when it
 * can: for the API to refuse a job at once rather than have it fail on a worker. The weight shapes
 * of most layers don't depend on the image size, but LeNet-5's first dense layer does, and every
 * network's first convolution depends on the channels.
 */
export function baseMismatch(description: BaseDescription, input: ImageShape): string | null {
  const layers = networkLayers(description.network, input);
  if (typeof layers === 'string') return `${description.network} ${layers}`;
  const held = new Map(description.coveredLayers.map((layer) => [layer.name, layer]));
  for (const layer of layers.body) {
    const source = held.get(layer.key);
    if (!source || !sameShapes(source.shapes, layer.shapes))
      return `for ${input.height}×${input.width}×${input.channels} images ${description.network}'s layer ${layer.key} has weights ${describeShapes(layer.shapes)}, the base's ${source ? describeShapes(source.shapes) : 'none'} (it was made for ${description.input.height}×${description.input.width}×${description.input.channels})`;
  }
  return null;
}
