// @ts-check
/**
 * The points the charts draw, from a job's history: pure functions (no DOM), tested in the fast tier.
 * @import { EpochSummary, Job, LossLogLine } from '../contract/job.ts'
 */

/** @typedef {{ x: number, y: number }} Point */

/**
 * What the loss curves are drawn from: the job's loss log lines and epoch summaries, and its
 * batches per epoch (x counts batches from the start).
 * @typedef {{ logs: LossLogLine[], epochs: EpochSummary[], batchesPerEpoch: number }} LossHistory
 */

/**
 * @param {Job} job
 * @returns {LossHistory}
 */
export const lossHistory = (job) => ({
  logs: job.logs,
  epochs: job.epochs,
  batchesPerEpoch: job.progress.batchesPerEpoch,
});

/**
 * The training loss by batch: one point per log line. Epochs shorter than logEvery log no line at
 * all; then the epochs' mean losses are the curve, each at its epoch's last batch.
 * @param {LossHistory} history
 * @returns {Point[]}
 */
export function trainingLoss({ logs, epochs, batchesPerEpoch }) {
  if (logs.length > 0)
    return logs.map((line) => ({ x: (line.epoch - 1) * batchesPerEpoch + line.batch, y: line.loss }));
  return epochs.map((summary) => ({ x: summary.epoch * batchesPerEpoch, y: summary.loss }));
}

/**
 * The validation loss: one point per epoch that validated, at the epoch's last batch.
 * @param {LossHistory} history
 * @returns {Point[]}
 */
export const validationLoss = ({ epochs, batchesPerEpoch }) =>
  epochs.flatMap((summary) =>
    summary.validationLoss === undefined ? [] : [{ x: summary.epoch * batchesPerEpoch, y: summary.validationLoss }],
  );

/**
 * The test accuracy after each epoch.
 * @param {EpochSummary[]} epochs
 * @returns {Point[]}
 */
export const testAccuracy = (epochs) => epochs.map((summary) => ({ x: summary.epoch, y: summary.testAccuracy }));

/**
 * The request fields in which the jobs differ, which is what tells them apart in a legend.
 * @template {object} R
 * @param {{ request: R }[]} jobs
 * @returns {(keyof R)[]}
 */
export function differingFields(jobs) {
  const fields = /** @type {(keyof R)[]} */ (Object.keys(jobs[0]?.request ?? {}));
  return fields.filter((field) => new Set(jobs.map((job) => JSON.stringify(job.request[field]))).size > 1);
}

/**
 * The completed job with the best test accuracy; null while none has completed.
 * @param {{ id: string, result: { testAccuracy: number } | null }[]} jobs
 * @returns {string | null}
 */
export function bestByAccuracy(jobs) {
  let best = null;
  for (const job of jobs)
    if (job.result && (!best?.result || job.result.testAccuracy > best.result.testAccuracy)) best = job;
  return best?.id ?? null;
}
