import type { Config } from '../config.ts';
import type { DatasetName } from '../contract/names.ts';
import type { DatasetLoadOptions } from './dataset.ts';

/** Each data set's load options from the service's settings. */
export function datasetOptions(
  config: Config,
  onStatus: (line: string) => void,
): Record<DatasetName, DatasetLoadOptions> {
  return {
    mnist: { dataDir: config.DATA_DIR, mirrorUrl: config.MNIST_MIRROR, onStatus },
    cifar10: {
      dataDir: config.DATA_DIR,
      mirrorUrl: config.CIFAR10_URL,
      onStatus,
      ...(config.CIFAR10_PATH ? { userPath: config.CIFAR10_PATH } : {}),
    },
  };
}
