import { isBuiltInDataset, type DatasetName } from '../contract/names.ts';
import type { Dataset, DatasetLoadOptions } from '../datasets/dataset.ts';
import { datasets } from '../datasets/index.ts';
import { loadUploadedDataset } from '../datasets/uploaded/stored.ts';

/**
 * The data sets jobs train on. Built-in ones are kept for the worker's lifetime: reading and
 * checking MNIST takes a second or more, and every job after the first reuses it (concurrent first
 * loads share one promise). An uploaded one is read from DATASETS_DIR for each job: it may be
 * deleted between jobs, and a worker must not hold every client's data in memory.
 */
export class DatasetCache {
  private readonly loaded = new Map<DatasetName, Promise<Dataset>>();

  constructor(
    private readonly options: Readonly<Record<DatasetName, DatasetLoadOptions>>,
    private readonly uploadedRoot: string,
  ) {}

  /** A built-in data set by name, or an uploaded one by id. */
  get(name: string): Promise<Dataset> {
    if (!isBuiltInDataset(name)) return loadUploadedDataset(this.uploadedRoot, name);
    let dataset = this.loaded.get(name);
    if (!dataset) {
      dataset = datasets[name].load(this.options[name]);
      dataset.catch(() => this.loaded.delete(name));
      this.loaded.set(name, dataset);
    }
    return dataset;
  }
}
