import type * as tfl from '@tensorflow/tfjs-layers';
import type { JobSettings } from '../contract/job-request.ts';
import type { ModelName } from '../contract/names.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import type { ImageInputArgs } from './image-input.ts';

/**
 * What is known of a model without building it, so without TensorFlow.js: what GET /models
 * answers. Each model's architecture file states these beside its layer sizes.
 */
export interface ModelFacts {
  readonly name: ModelName;
  readonly description: string;
  /** L2 weight decay a job gets when it names none (the notebook used 1e-4 for AlexNet only). */
  readonly defaultWeightDecay: number;
  /** The rest of the model's recipe, for each setting a job doesn't give: the notebook's for LeNet-5 and AlexNet. */
  readonly recipe: Pick<JobSettings, 'learningRate' | 'batchSize' | 'learningRateSchedule'>;
  /** Trainable parameters of the network for this input and class count, counted from its layer sizes. */
  parameterCount(input: ImageShape, classes: number): number;
}

/** How a job's network differs from the plain build: what a pretrained base and trainLayers head need. */
interface NetworkOptions {
  /** An ImageInput layer first (resize, grey to colour, rescale), for a base or an inputSize. */
  readonly imageInput?: ImageInputArgs;
  /** End after this layer with global average pooling and the classifier: a head on a base's features. */
  readonly cutAfter?: string;
}

/** What each model file exports: its facts, and the network for any input shape. */
export interface ModelDefinition extends ModelFacts {
  /** The network, ending in logits (no softmax), with weights initialised from `seed`. */
  build(input: ImageShape, classes: number, seed: number, options?: NetworkOptions): tfl.LayersModel;
  /** Index in the build's layers where trainLayers `top` starts training. */
  topStart(model: tfl.LayersModel): number;
}

/** trainLayers `top` of a network that flattens its features into dense layers: the dense layers. */
export function afterFlatten(model: tfl.LayersModel): number {
  return model.layers.findIndex((layer) => layer.getClassName() === 'Flatten') + 1;
}
