import type { JobSettings } from '../../src/contract/job-request.ts';

/** A small LeNet-5/MNIST job's settings, every default filled in: for jobs a test writes to the store directly, and the base tests' training settings override. */
export const storedJobSettings: JobSettings = {
  model: 'lenet5',
  dataset: 'mnist',
  epochs: 1,
  batchSize: 64,
  optimizer: 'sgd',
  learningRate: 0.01,
  momentum: 0.9,
  weightDecay: 0,
  labelSmoothing: 0,
  augment: false,
  seed: 1,
  trainLimit: 640,
  testLimit: 100,
  logEvery: 1,
  timeoutSeconds: 3600,
  initFrom: null,
  trainLayers: 'all',
  inputSize: null,
  autoChoice: null,
  validationSplit: null,
  earlyStopping: null,
  learningRateSchedule: null,
};
