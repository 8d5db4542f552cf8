/** The only file of the GPU check that imports the service's own code: the GPU figures are the service's trainer's. */
export type { JobSettings } from '../../src/contract/job-request.ts';
export type { Dataset } from '../../src/datasets/dataset.ts';
export { createCifar10Source } from '../../src/datasets/cifar10.ts';
export { models } from '../../src/models/index.ts';
export { assertDeviceHealthy, backendDevice } from '../../src/backends/device.ts';
export { startBackend, stopBackend } from '../../src/backends/select.ts';
export { webgpuDevice } from '../../src/backends/webgpu/start.ts';
export { train, type TrainingListener } from '../../src/training/trainer.ts';
