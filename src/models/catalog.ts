import type { ModelName } from '../contract/names.ts';
import { alexnetFacts } from './alexnet-architecture.ts';
import { lenet5Facts } from './lenet5-architecture.ts';
import { mobilenetv2Facts } from './mobilenetv2-architecture.ts';
import type { ModelFacts } from './model.ts';
import { resnet20Facts } from './resnet20-architecture.ts';

/** Every model's facts, without TensorFlow.js: for the API's catalog. index.ts has the buildable models. */
export const modelFacts: Readonly<Record<ModelName, ModelFacts>> = {
  lenet5: lenet5Facts,
  alexnet: alexnetFacts,
  resnet20: resnet20Facts,
  mobilenetv2: mobilenetv2Facts,
};
