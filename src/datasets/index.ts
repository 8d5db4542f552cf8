import type { DatasetName } from '../contract/names.ts';
import type { DatasetSource } from './dataset.ts';
import { cifar10 } from './cifar10.ts';
import { mnist } from './mnist.ts';

export const datasets: Readonly<Record<DatasetName, DatasetSource>> = { mnist, cifar10 };
