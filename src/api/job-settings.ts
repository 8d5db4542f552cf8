import type { JobSettings, ParsedJobRequest } from '../contract/job-request.ts';
import { datasets } from '../datasets/index.ts';
import { modelFacts } from '../models/catalog.ts';

// Kept out of src/contract so that the contract's schemas load without TensorFlow.js (the CLI uses them).
/** Fills the defaults that depend on other fields, on the data set or on the server (`maxJobSeconds`). */
export function settingsFor(request: ParsedJobRequest, randomSeed: () => number, maxJobSeconds: number): JobSettings {
  const source = datasets[request.dataset];
  return {
    ...request,
    weightDecay: request.weightDecay ?? modelFacts[request.model].defaultWeightDecay,
    augment: request.augment ?? source.augmentByDefault,
    seed: request.seed ?? randomSeed(),
    trainLimit: Math.min(request.trainLimit ?? source.trainSize, source.trainSize),
    testLimit: Math.min(request.testLimit ?? source.testSize, source.testSize),
    timeoutSeconds: request.timeoutSeconds ?? maxJobSeconds,
  };
}
