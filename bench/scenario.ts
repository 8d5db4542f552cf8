/** What the bench trains, and with which settings: shared by `npm run bench`, its profile, and the run it measures in a child process. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { JobSettings } from '../src/contract/job-request.ts';
import type { DatasetName, ModelName } from '../src/contract/names.ts';
import type { Dataset } from '../src/datasets/dataset.ts';
import { datasets } from '../src/datasets/index.ts';
import { models } from '../src/models/index.ts';

export interface Scenario {
  readonly model: ModelName;
  readonly dataset: DatasetName;
  readonly epochs: number;
  /** Time this many training steps only (no evaluation), as the reference's --steps does. */
  readonly steps: number | null;
  readonly trainLimit: number | null;
  readonly testLimit: number | null;
}

export const batchSize = 64;

const sharedCifar = path.resolve(import.meta.dirname, '../../shared/datasets/cifar10');
const dataDir = process.env.DATA_DIR ?? './data';
export const cifarPath = process.env.CIFAR10_PATH ?? (existsSync(sharedCifar) ? sharedCifar : undefined);

const loaded = new Map<DatasetName, Dataset>();
export async function loadDataset(name: DatasetName): Promise<Dataset> {
  const found =
    loaded.get(name) ??
    (await datasets[name].load({ dataDir, ...(name === 'cifar10' && cifarPath ? { userPath: cifarPath } : {}) }));
  loaded.set(name, found);
  return found;
}

/** Training images a scenario goes through per epoch. */
export function trainImagesOf(scenario: Scenario, dataset: Dataset): number {
  return scenario.steps
    ? scenario.steps * batchSize
    : Math.min(scenario.trainLimit ?? dataset.train.count, dataset.train.count);
}

/** The notebook's settings, seeded. */
export function settingsFor(scenario: Scenario, dataset: Dataset): JobSettings {
  const steps = scenario.steps;
  return {
    model: scenario.model,
    dataset: scenario.dataset,
    epochs: steps ? 1 : scenario.epochs,
    batchSize,
    optimizer: 'sgd',
    learningRate: 0.01,
    momentum: 0.9,
    weightDecay: models[scenario.model].defaultWeightDecay,
    labelSmoothing: 0,
    augment: datasets[scenario.dataset].augmentByDefault,
    seed: 0,
    trainLimit: trainImagesOf(scenario, dataset),
    testLimit: steps ? 1 : Math.min(scenario.testLimit ?? dataset.test.count, dataset.test.count),
    logEvery: 100,
    timeoutSeconds: Number.POSITIVE_INFINITY,
    initFrom: null,
    trainLayers: 'all',
    inputSize: null,
    autoChoice: null,
    validationSplit: null,
    earlyStopping: null,
    learningRateSchedule: null,
  };
}
