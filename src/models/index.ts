import type { ModelName } from '../contract/names.ts';
import { alexnet } from './alexnet.ts';
import { lenet5 } from './lenet5.ts';
import { mobilenetv2 } from './mobilenetv2.ts';
import type { ModelDefinition } from './model.ts';
import { resnet20 } from './resnet20.ts';

export const models: Readonly<Record<ModelName, ModelDefinition>> = { lenet5, alexnet, resnet20, mobilenetv2 };
export type { ModelDefinition } from './model.ts';
