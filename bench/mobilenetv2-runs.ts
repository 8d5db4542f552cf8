/**
 * What the MobileNetV2 bench (mobilenetv2.ts) and its runs in child processes (mobilenetv2-once.ts)
 * share: the request and result of a run, the batch, the images scaled to a size, the settings.
 */
import type { BackendChoice } from '../src/config.ts';
import type { JobSettings } from '../src/contract/job-request.ts';
import type { ImageShape, ImageSplit } from '../src/datasets/dataset.ts';
import { mobilenetv2 } from '../src/models/mobilenetv2.ts';

export interface MobileNetV2RunRequest {
  readonly mode: 'train' | 'infer';
  readonly size: number;
  readonly replicas: number;
  /** Timed steps (training) or batches (inference), after one untimed. */
  readonly batches: number;
  readonly backend: BackendChoice;
}

export interface MobileNetV2RunResult {
  readonly backend: string;
  readonly replicas: number;
  readonly imagesPerSecond: number;
  readonly msPerBatch: number;
  readonly peakMemoryMiB: number;
}

export const mobilenetv2BatchSize = 32;

/** The first `count` images of `split`, each scaled from `from` to size × size by nearest neighbour. */
export function scaled(split: ImageSplit, from: ImageShape, size: number, count: number): ImageSplit {
  const { height, width, channels } = from;
  const images = new Uint8Array(count * size * size * channels);
  for (let n = 0; n < count; n++) {
    for (let y = 0; y < size; y++) {
      const sourceRow = Math.floor((y * height) / size);
      for (let x = 0; x < size; x++) {
        const source = ((n * height + sourceRow) * width + Math.floor((x * width) / size)) * channels;
        images.set(split.images.subarray(source, source + channels), ((n * size + y) * size + x) * channels);
      }
    }
  }
  return { images, labels: split.labels.slice(0, count), count };
}

/** A training run's settings: SGD with momentum, the model's weight decay, no augmentation, a log line every step. */
export function mobilenetv2Settings(trainLimit: number): JobSettings {
  return {
    model: 'mobilenetv2',
    dataset: 'cifar10',
    epochs: 1,
    batchSize: mobilenetv2BatchSize,
    optimizer: 'sgd',
    learningRate: 0.01,
    momentum: 0.9,
    weightDecay: mobilenetv2.defaultWeightDecay,
    augment: false,
    seed: 0,
    trainLimit,
    testLimit: 1,
    logEvery: 1,
    timeoutSeconds: Number.POSITIVE_INFINITY,
    initFrom: null,
    trainLayers: 'all',
    inputSize: null,
    autoChoice: null,
    labelSmoothing: 0,
    validationSplit: null,
    earlyStopping: null,
    learningRateSchedule: null,
  };
}
