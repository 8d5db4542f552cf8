import type { JobProgress } from './job.ts';
import type { JobSettings } from './job-request.ts';

/** Images a job trains on each epoch: its trainLimit, less those a validationSplit fraction holds out. */
export function trainingImages(settings: Pick<JobSettings, 'trainLimit' | 'validationSplit'>): number {
  const { trainLimit, validationSplit } = settings;
  return typeof validationSplit === 'number' ? trainLimit - heldOutImages(trainLimit, validationSplit) : trainLimit;
}

/** Images a validationSplit fraction holds out of `count`: at least one, and at least one left to train on. */
export function heldOutImages(count: number, fraction: number): number {
  return Math.min(count - 1, Math.max(1, Math.round(count * fraction)));
}

/** Batches per epoch: the last one may be partial, as with PyTorch's DataLoader. */
export function batchesPerEpoch(trainImages: number, batchSize: number): number {
  return Math.ceil(trainImages / batchSize);
}

/** Progress after `batch` batches of epoch `epoch` (epoch 0: not started). */
export function progressAt(epochs: number, perEpoch: number, epoch: number, batch: number): JobProgress {
  const done = epoch === 0 ? 0 : (epoch - 1) * perEpoch + batch;
  return { epoch, epochs, batch, batchesPerEpoch: perEpoch, fraction: Math.min(1, done / (epochs * perEpoch)) };
}
