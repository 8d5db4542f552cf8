import type { AutoChoice, JobSettings, TrainingRequest } from '../contract/job-request.ts';
import { modelFacts } from '../models/catalog.ts';
import { imagenetBase } from '../bases/built-in.ts';
import { autoPick, imagenetRecipe } from './auto-choice.ts';
import type { DatasetFacts } from './dataset-facts.ts';
import { invalidBody } from './http-error.ts';

/** Adam's step is scaled by the gradient's own size, and 1e-3 is its usual rate (Kingma & Ba, PyTorch, Keras); SGD's is the model's recipe. */
const adamLearningRate = 1e-3;

/** PyTorch's AdamW default: decoupled decay of 0 would make it Adam. */
const adamwWeightDecay = 0.01;

// Kept out of src/contract so that the contract's schemas load without TensorFlow.js (the CLI uses them).
/** Fills the defaults that depend on other fields, on the data set or on the server (`maxJobSeconds`). */
export function settingsFor(
  request: TrainingRequest,
  dataset: DatasetFacts,
  randomSeed: () => number,
  maxJobSeconds: number,
): JobSettings {
  if (request.earlyStopping !== null && request.validationSplit === null) {
    throw invalidBody('earlyStopping', 'earlyStopping needs validation images: give validationSplit too');
  }
  if (request.validationSplit === 'dataset' && dataset.validationSize === 0) {
    throw invalidBody(
      'validationSplit',
      "validationSplit is 'dataset', but this data set has no validation split (upload one with a val/ folder, or give a fraction)",
    );
  }
  const trainLimit = Math.min(request.trainLimit ?? dataset.trainSize, dataset.trainSize);
  if (typeof request.validationSplit === 'number' && trainLimit < 2) {
    throw invalidBody(
      'validationSplit',
      `validationSplit needs at least 2 training images, one to train on and one to validate on; trainLimit leaves ${trainLimit}`,
    );
  }
  const auto = request.model === 'auto' ? autoPick(dataset) : null;
  // The request's own settings win over the ImageNet base's recipe, that over auto's, auto's over the model's recipe.
  const initFrom = request.initFrom !== undefined ? request.initFrom : (auto?.settings.initFrom ?? null);
  const baseRecipe = initFrom === imagenetBase.name ? imagenetRecipe(dataset.trainSize) : {};
  const chosen = { ...auto?.settings, ...baseRecipe, ...definedOf(request) };
  const modelName = auto?.settings.model ?? (request.model as Exclude<typeof request.model, 'auto'>);
  const model = modelFacts[modelName];
  const optimizer = chosen.optimizer ?? 'sgd';
  return {
    ...request,
    model: modelName,
    autoChoice: auto === null ? null : withOverrides(auto.choice, auto.settings, request),
    initFrom: chosen.initFrom ?? null,
    trainLayers: chosen.trainLayers ?? 'all',
    inputSize: chosen.inputSize ?? null,
    epochs: chosen.epochs ?? 10,
    optimizer,
    learningRate: chosen.learningRate ?? (optimizer === 'sgd' ? model.recipe.learningRate : adamLearningRate),
    batchSize: chosen.batchSize ?? model.recipe.batchSize,
    learningRateSchedule:
      chosen.learningRateSchedule === undefined ? model.recipe.learningRateSchedule : chosen.learningRateSchedule,
    weightDecay: chosen.weightDecay ?? (optimizer === 'adamw' ? adamwWeightDecay : model.defaultWeightDecay),
    augment: chosen.augment ?? dataset.augmentByDefault,
    labelSmoothing: chosen.labelSmoothing ?? 0,
    seed: request.seed ?? randomSeed(),
    trainLimit,
    testLimit: Math.min(request.testLimit ?? dataset.testSize, dataset.testSize),
    timeoutSeconds: request.timeoutSeconds ?? maxJobSeconds,
  };
}

/** The request's fields that it gave (zod leaves the others undefined), so that spreading them overrides only those. */
function definedOf(request: TrainingRequest): Partial<TrainingRequest> {
  return Object.fromEntries(Object.entries(request).filter(([, value]) => value !== undefined));
}

/** Auto's reasons, and a last line naming the settings the request gave, which replace what the reasons say of them. */
function withOverrides(choice: AutoChoice, picked: object, request: TrainingRequest): AutoChoice {
  const given = Object.keys(definedOf(request)).filter((key) => key !== 'model' && Object.hasOwn(picked, key));
  if (given.length === 0) return choice;
  return {
    reasons: [
      ...choice.reasons,
      `the request's own ${given.join(', ')} replace${given.length === 1 ? 's' : ''} auto's`,
    ],
  };
}
