import type { JobSettings, TrainingRequest } from '../contract/job-request.ts';
import { modelFacts } from '../models/catalog.ts';
import type { DatasetFacts } from './dataset-facts.ts';

// Kept out of src/contract so that the contract's schemas load without TensorFlow.js (the CLI uses them).
/** Fills the defaults that depend on other fields, on the data set or on the server (`maxJobSeconds`). */
export function settingsFor(request: TrainingRequest, dataset: DatasetFacts, randomSeed: () => number, maxJobSeconds: number): JobSettings {
  return {
    ...request,
    weightDecay: request.weightDecay ?? modelFacts[request.model].defaultWeightDecay,
    augment: request.augment ?? dataset.augmentByDefault,
    seed: request.seed ?? randomSeed(),
    trainLimit: Math.min(request.trainLimit ?? dataset.trainSize, dataset.trainSize),
    testLimit: Math.min(request.testLimit ?? dataset.testSize, dataset.testSize),
    timeoutSeconds: request.timeoutSeconds ?? maxJobSeconds,
  };
}
