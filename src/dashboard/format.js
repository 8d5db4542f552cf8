// @ts-check
/**
 * What the dashboard writes, as text: pure functions of the API's answers (no DOM), so the fast
 * tier tests them in Node.
 * @import { Base } from '../contract/bases.ts'
 * @import { DatasetCatalog } from '../contract/catalog.ts'
 * @import { UploadedDataset, DatasetReport } from '../contract/datasets.ts'
 * @import { Job, JobProgress, JobResult, JobState } from '../contract/job.ts'
 * @import { Explanation } from '../contract/predict.ts'
 */

/** @param {number} fraction */
export const percent = (fraction) => `${(fraction * 100).toFixed(1)}%`;

/**
 * "1 epoch", "3 epochs".
 * @param {number} count
 * @param {string} noun
 */
export const plural = (count, noun) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** @param {number} loss */
export const lossText = (loss) => loss.toFixed(4);

/**
 * A completed job's bar is full even when its last progress report came before the last batch.
 * @param {JobProgress} progress
 * @param {JobState} state
 */
export const progressFraction = (progress, state) => (state === 'completed' ? 1 : progress.fraction);

/**
 * @param {JobProgress} progress
 * @param {JobState} state
 */
export const progressText = (progress, state) =>
  `epoch ${progress.epoch}/${progress.epochs} · batch ${progress.batch}/${progress.batchesPerEpoch} · ${percent(progressFraction(progress, state))}`;

/**
 * "3 completed · 1 running": the counts that are not 0.
 * @param {Partial<Record<string, number>>} counts
 * @param {string} [separator]
 */
export const countsText = (counts, separator = ' · ') =>
  Object.entries(counts)
    .filter(([, count]) => (count ?? 0) > 0)
    .map(([name, count]) => `${count} ${name}`)
    .join(separator);

/**
 * A heat-map colour for a fraction in [0, 1]: white to deep blue, and the text colour that reads on it.
 * @param {number} fraction
 */
export function heat(fraction) {
  const lightness = 98 - fraction * 62;
  return { background: `hsl(214, 80%, ${lightness}%)`, color: lightness < 60 ? '#fff' : '#1b1f24' };
}

/**
 * What preprocessing did, in a few words: "strokes, inverted, crop 120×96 at 40,12".
 * @param {Explanation} explanation
 */
export function describePreprocessing({ preprocess, inverted, crop }) {
  /** @type {string[]} */
  const parts = [preprocess];
  if (inverted) parts.push('inverted');
  if (crop) parts.push(`crop ${crop.width}×${crop.height} at ${crop.left},${crop.top}`);
  return parts.join(', ');
}

/**
 * What a job starts from, in a few words: "imagenet", "base “my-net”", "job 0b7c6c3e".
 * @param {string} initFrom  a built-in base's name, an uploaded base's id or a job's id
 * @param {string | undefined} baseName  the uploaded base's name, when initFrom is one the client has
 */
export function startText(initFrom, baseName) {
  if (baseName !== undefined) return `base “${baseName}”`;
  // Built-in bases go by name; jobs and uploaded bases by UUID.
  return /^[0-9a-f]{8}-/i.test(initFrom) ? `job ${initFrom.slice(0, 8)}` : initFrom;
}

/**
 * A job's network and where it starts, as "mobilenetv2 from imagenet (top) at 96 px": the layers
 * it trains when not all, the input size when it has one.
 * @param {Pick<Job['request'], 'model' | 'initFrom' | 'trainLayers' | 'inputSize'>} r
 * @param {(id: string) => string | undefined} [baseName]  an uploaded base's name by id
 */
export const networkText = (r, baseName = () => undefined) =>
  `${r.model}${r.initFrom ? ` from ${startText(r.initFrom, baseName(r.initFrom))}` : ''}${r.trainLayers === 'all' ? '' : ` (${r.trainLayers})`}${r.inputSize === null ? '' : ` at ${r.inputSize} px`}`;

/**
 * A job's settings in one line, its data set by name.
 * @param {Job['request']} r
 * @param {string} dataset
 * @param {(id: string) => string | undefined} [baseName]  an uploaded base's name by id
 */
export const settingsText = (r, dataset, baseName) =>
  `${networkText(r, baseName)} on ${dataset} · ${plural(r.epochs, 'epoch')} · batch ${r.batchSize} · ${r.optimizer === 'sgd' ? `lr ${r.learningRate} · momentum ${r.momentum}` : `${r.optimizer} lr ${r.learningRate}`} · weight decay ${r.weightDecay} · augment ${r.augment ? 'on' : 'off'} · seed ${r.seed}${r.trainLimit ? ` · train ${r.trainLimit}` : ''}${r.testLimit ? ` · test ${r.testLimit}` : ''} · log every ${r.logEvery}`;

/**
 * The client's uploaded bases as the Bases list shows them.
 * @param {readonly Base[]} bases
 */
export const ownBases = (bases) =>
  bases.map((base) => ({
    id: base.id,
    name: base.name,
    detail: `${base.network} · ${base.input.height}×${base.input.width}×${base.input.channels}${base.classes === null ? '' : ` · ${base.classes} ${base.classes === 1 ? 'class' : 'classes'}`} · ${plural(base.coveredLayers.length, 'layer')} · ${(base.bytes / 1024).toFixed(0)} KiB`,
  }));

/**
 * The line under a result's test accuracy.
 * @param {JobResult} result
 */
export const resultDetail = (result) =>
  `${result.correct.toLocaleString()} of ${result.total.toLocaleString()} test images · loss ${lossText(result.testLoss)} · ${result.params.toLocaleString()} parameters · ${result.trainSeconds.toFixed(1)} s on ${result.backend}${result.device?.kind === 'gpu' ? ` (${result.device.name})` : ''}${(result.replicas ?? 1) > 1 ? ` · ${result.replicas} threads` : ''}`;

/**
 * How a job ended early, when it did.
 * @param {JobResult} result
 * @returns {string | null}
 */
export function earlyStopText(result) {
  const stopping = result.earlyStopping;
  return stopping?.stoppedAfterEpoch
    ? `stopped early after epoch ${stopping.stoppedAfterEpoch}: no better ${stopping.metric} · kept epoch ${stopping.keptEpoch}'s weights`
    : null;
}

/**
 * A data set as the job form's select offers it.
 * @param {DatasetCatalog['datasets'][number]} dataset
 */
export const datasetLabel = (dataset) =>
  `${dataset.name} (${dataset.shape.height}×${dataset.shape.width}×${dataset.shape.channels}${dataset.builtIn ? '' : `, ${dataset.classNames.length} classes, yours`}${dataset.availableLocally ? '' : ', will download'})`;

/**
 * The client's own data sets from GET /datasets: those processing or failed, then the ready ones
 * (the built-ins left out), each with the line that says where it stands.
 * @param {DatasetCatalog} catalog
 * @returns {{ id: string, name: string, state: UploadedDataset['state'], detail: string }[]}
 */
export const ownDatasets = (catalog) => [
  ...catalog.uploads.map((upload) => ({
    id: upload.id,
    name: upload.name,
    state: upload.state,
    detail: upload.state === 'failed' ? (upload.error?.message ?? '') : (upload.progress?.phase ?? ''),
  })),
  ...catalog.datasets
    .filter((dataset) => !dataset.builtIn)
    .map((dataset) => ({
      id: dataset.id,
      name: dataset.name,
      state: /** @type {const} */ ('ready'),
      detail: `${dataset.classNames.length} classes · ${dataset.trainSize}/${dataset.testSize} images · ${dataset.shape.height}×${dataset.shape.width}×${dataset.shape.channels}`,
    })),
];

/**
 * Where an uploaded data set's processing is.
 * @param {UploadedDataset} dataset
 */
export function processingText(dataset) {
  const progress = dataset.progress;
  return dataset.state === 'processing'
    ? `Processing${progress && progress.done > 0 ? `: ${progress.phase} ${progress.done}${progress.total ? ` of ${progress.total}` : ''}` : '…'}`
    : `${dataset.name} is ${dataset.state}`;
}

/**
 * @param {number} loaded  bytes
 * @param {number} total  bytes
 */
export const uploadText = (loaded, total) =>
  `Uploading ${(loaded / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MB`;

/** @param {DatasetReport} report */
export const reportSummary = (report) =>
  `${report.shape.height}×${report.shape.width}×${report.shape.channels} ${report.imageKind} images · test split ${report.testSplit === 'folder' ? 'from its test/ folder' : 'held out'} · ${(report.bytes / 1024).toFixed(0)} KiB`;

/**
 * "Skipped 3 files: 2 notAnImage, 1 tooSmall"; null when none was.
 * @param {DatasetReport['skipped']} skipped
 * @returns {string | null}
 */
export const skippedText = (skipped) =>
  skipped.count > 0 ? `Skipped ${plural(skipped.count, 'file')}: ${countsText(skipped.byReason, ', ')}` : null;
