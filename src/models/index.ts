import type { ModelName } from '../contract/names.ts';
import { alexnet } from './alexnet.ts';
import { lenet5 } from './lenet5.ts';
import type { ModelDefinition } from './model.ts';

export const models: Readonly<Record<ModelName, ModelDefinition>> = { lenet5, alexnet };
export type { ModelDefinition } from './model.ts';
