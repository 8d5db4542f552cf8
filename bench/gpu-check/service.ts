/**
 * The only file of the GPU check that imports the service's own code, so that a move of those
 * modules (src/runtime → src/backends, src/worker/trainer.ts → src/training/trainer.ts) is fixed here.
 */
export type { JobSettings } from '../../src/contract/job-request.ts';
export type { Dataset } from '../../src/datasets/dataset.ts';
export { createCifar10Source } from '../../src/datasets/cifar10.ts';
export { models } from '../../src/models/index.ts';
export { assertDeviceHealthy, assertTensorFits, backendDevice, startBackend, stopBackend } from '../../src/runtime/backend.ts';
export { train, type TrainingListener } from '../../src/worker/trainer.ts';
