import type * as tfl from '@tensorflow/tfjs-layers';
import type { ModelName } from '../contract/names.ts';
import type { ImageShape } from '../datasets/dataset.ts';

/** What each model file exports: the network for any input shape, and its training defaults. */
export interface ModelDefinition {
  readonly name: ModelName;
  readonly description: string;
  /** L2 weight decay a job gets when it names none (the notebook used 1e-4 for AlexNet only). */
  readonly defaultWeightDecay: number;
  /** The network, ending in logits (no softmax), with weights initialised from `seed`. */
  build(input: ImageShape, classes: number, seed: number): tfl.LayersModel;
}
