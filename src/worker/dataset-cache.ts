import type { DatasetName } from '../contract/names.ts';
import type { Dataset, DatasetLoadOptions } from '../datasets/dataset.ts';
import { datasets } from '../datasets/index.ts';

/**
 * Loaded data sets, kept for the worker's lifetime: reading and checking MNIST takes a second or
 * more, and every job after the first reuses it. Concurrent first loads share one promise.
 */
export class DatasetCache {
  private readonly loaded = new Map<DatasetName, Promise<Dataset>>();

  constructor(private readonly options: Readonly<Record<DatasetName, DatasetLoadOptions>>) {}

  get(name: DatasetName): Promise<Dataset> {
    let dataset = this.loaded.get(name);
    if (!dataset) {
      dataset = datasets[name].load(this.options[name]);
      dataset.catch(() => this.loaded.delete(name));
      this.loaded.set(name, dataset);
    }
    return dataset;
  }
}
