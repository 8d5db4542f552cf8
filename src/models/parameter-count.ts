import type { DatasetSource } from '../datasets/dataset.ts';
import type { ModelDefinition } from './model.ts';

const counted = new Map<string, number>();

/** Trainable parameters of `model` built for `dataset`; built once per pair, then remembered. */
export function parameterCount(model: ModelDefinition, dataset: Pick<DatasetSource, 'name' | 'shape' | 'classNames'>): number {
  const key = `${model.name}/${dataset.name}`;
  let count = counted.get(key);
  if (count === undefined) {
    const network = model.build(dataset.shape, dataset.classNames.length, 0);
    count = network.countParams();
    network.dispose();
    counted.set(key, count);
  }
  return count;
}
