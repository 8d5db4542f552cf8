import type { JobProgress } from './job.ts';

/** Batches per epoch: the last one may be partial, as with PyTorch's DataLoader. */
export function batchesPerEpoch(trainImages: number, batchSize: number): number {
  return Math.ceil(trainImages / batchSize);
}

/** Progress after `batch` batches of epoch `epoch` (epoch 0: not started). */
export function progressAt(epochs: number, perEpoch: number, epoch: number, batch: number): JobProgress {
  const done = epoch === 0 ? 0 : (epoch - 1) * perEpoch + batch;
  return { epoch, epochs, batch, batchesPerEpoch: perEpoch, fraction: Math.min(1, done / (epochs * perEpoch)) };
}
