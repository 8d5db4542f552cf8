import type { JobSettings } from '../contract/job-request.ts';

/**
 * The learning rate of epoch `epoch` (1-based), as PyTorch's schedulers stepped once per epoch
 * compute it: StepLR (`learningRate × factor^⌊(epoch−1) / stepEpochs⌋`), or a linear warm-up
 * (LinearLR from 1/(warmupEpochs+1)) followed by CosineAnnealingLR over the remaining epochs,
 * reaching minLearningRate in the last one.
 */
export function learningRateOf(
  settings: Pick<JobSettings, 'learningRate' | 'learningRateSchedule' | 'epochs'>,
  epoch: number,
): number {
  const { learningRate, learningRateSchedule: schedule, epochs } = settings;
  if (schedule === null) return learningRate;
  const done = epoch - 1;
  if (schedule.type === 'step') return learningRate * schedule.factor ** Math.floor(done / schedule.stepEpochs);
  const { warmupEpochs, minLearningRate } = schedule;
  if (done < warmupEpochs) return (learningRate * (done + 1)) / (warmupEpochs + 1);
  const span = epochs - warmupEpochs - 1;
  if (span <= 0) return learningRate;
  return (
    minLearningRate + ((learningRate - minLearningRate) * (1 + Math.cos((Math.PI * (done - warmupEpochs)) / span))) / 2
  );
}
