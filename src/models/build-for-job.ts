import type * as tfl from '@tensorflow/tfjs-layers';
import type { JobSettings } from '../contract/job-request.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { builtInBaseOf, type BaseFacts } from '../bases/built-in.ts';
import { setTrainableLayers } from './fine-tune.ts';
import type { ImageInputArgs } from './image-input.ts';
import { models } from './index.ts';

type NetworkSettings = Pick<JobSettings, 'model' | 'initFrom' | 'inputSize' | 'trainLayers' | 'seed'>;

/** From the service's [-1, 1] to the base's range, and to its size and channels. */
function imageInputFor(settings: NetworkSettings, base: BaseFacts | null): Omit<ImageInputArgs, 'name'> | undefined {
  if (base === null && settings.inputSize === null) return undefined;
  const [low, high] = base?.inputRange ?? [-1, 1];
  return {
    size: settings.inputSize === null ? null : [settings.inputSize, settings.inputSize],
    channels: base?.channels ?? null,
    scale: (high - low) / 2,
    offset: low + (high - low) / 2,
  };
}

/**
 * The network a job trains, as its settings shape it (an ImageInput layer for a base or an
 * inputSize; `head` on a built-in base ends at the base's last layer), with the layers it doesn't
 * train frozen. The same in the worker and in every replica thread; the base's weights are set by
 * the worker only (replicas start from the worker's weights).
 */
export function networkFor(settings: NetworkSettings, shape: ImageShape, classes: number): tfl.LayersModel {
  const definition = models[settings.model];
  const base = builtInBaseOf(settings);
  const imageInput = imageInputFor(settings, base);
  const model = definition.build(shape, classes, settings.seed, {
    ...(imageInput ? { imageInput } : {}),
    ...(base !== null && settings.trainLayers === 'head' ? { cutAfter: base.lastLayer } : {}),
  });
  setTrainableLayers(model, settings.trainLayers, definition.topStart(model));
  return model;
}

/**
 * The network's parameters as GET /models counts them: every weight but BatchNorm's moving
 * statistics (which countParams() includes), frozen ones too.
 */
export function networkParameters(model: tfl.LayersModel): number {
  return model.weights
    .filter((weight) => !/moving_(mean|variance)$/.test(weight.originalName))
    .reduce((sum, weight) => sum + weight.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}
