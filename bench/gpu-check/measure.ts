/**
 * The GPU check's measuring side (issue 11, "Measured on a GPU"): the service's own trainer and
 * models on the WebGPU backend, then the notebook's PyTorch loop (bench/gpu-check/pytorch_cuda.py,
 * on CUDA when there is one) on the same CIFAR-10 subset, batch sizes and epochs, printed as one
 * markdown table and written as JSON to $OUT/gpu-check.json when OUT is set.
 *
 * Bundled by `npm run gpu-check -- --build` into .gpu-check/measure.mjs and started by
 * bench/gpu-check/run.sh, which passes --data, --reference and --pytorch-driver; see
 * docs/performance.md#on-a-gpu-npm-run-gpu-check. Every size is a flag; --dry-run shrinks them all
 * for a software adapter.
 */
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import {
  assertDeviceHealthy,
  backendDevice,
  createCifar10Source,
  models,
  startBackend,
  stopBackend,
  train,
  webgpuDevice,
  type Dataset,
  type JobSettings,
  type TrainingListener,
} from './service.ts';

const { values: flags } = parseArgs({
  options: {
    data: { type: 'string' },
    reference: { type: 'string' },
    'pytorch-driver': { type: 'string' },
    python: { type: 'string', default: 'python3' },
    'dry-run': { type: 'boolean', default: false },
    'batch-size': { type: 'string' },
    'batch-sizes': { type: 'string' },
    steps: { type: 'string' },
    'warmup-steps': { type: 'string' },
    'lenet-steps': { type: 'string' },
    'budget-seconds': { type: 'string' },
    epochs: { type: 'string' },
    'max-epochs': { type: 'string' },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    'webgpu-adapter': { type: 'string', default: process.env.WEBGPU_ADAPTER },
    'allow-software-adapter': { type: 'boolean', default: false },
    'skip-pytorch': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

const dry = flags['dry-run'];
/**
 * The sizes: for an H200, or (--dry-run) for SwiftShader on two shared cores, where one AlexNet step
 * takes a minute or more whatever the batch (its 57M weights are updated every step).
 */
const preset = dry
  ? {
      batchSize: 16,
      batchSizes: '8,16',
      steps: 1,
      warmupSteps: 1,
      lenetSteps: 3,
      budgetSeconds: 0,
      epochs: 1,
      maxEpochs: 1,
      trainLimit: 32,
      testLimit: 32,
    }
  : {
      batchSize: 64,
      batchSizes: '64,128,256,512',
      steps: 30,
      warmupSteps: 2,
      lenetSteps: 100,
      budgetSeconds: 150,
      epochs: null,
      maxEpochs: 50,
      trainLimit: 0,
      testLimit: 0,
    };
const count = (name: keyof typeof flags, fallback: number): number => {
  const raw = flags[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a whole number, got ${String(raw)}`);
  return value;
};
const batchSize = count('batch-size', preset.batchSize);
const sweep = (flags['batch-sizes'] ?? preset.batchSizes).split(',').map(Number);
const steps = count('steps', preset.steps);
const warmupSteps = Math.max(1, count('warmup-steps', preset.warmupSteps));
const lenetSteps = count('lenet-steps', preset.lenetSteps);
const budgetSeconds = count('budget-seconds', preset.budgetSeconds);
const fixedEpochs = flags.epochs === undefined ? preset.epochs : count('epochs', 1);
const maxEpochs = count('max-epochs', preset.maxEpochs);
if (!flags.data) throw new Error('--data names the CIFAR-10 subset folder (run.sh passes it)');
if (sweep.some((size) => !Number.isInteger(size) || size < 1))
  throw new Error('--batch-sizes takes whole numbers, e.g. 64,128,256,512');

const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const say = (line: string) => process.stderr.write(`[${elapsed().toFixed(0).padStart(4)} s] ${line}\n`);

// --- the data: the carried subset, through the service's own CIFAR-10 reader -------------------

/** The subset's batch files hold equal record counts (the service's reader wants that): read it off test_batch.bin. */
const recordsPerBatch = statSync(path.join(flags.data, 'test_batch.bin')).size / 3073;
const dataset: Dataset = await createCifar10Source({ recordsPerBatch }).load({
  dataDir: os.tmpdir(),
  userPath: flags.data,
});
const trainImages = Math.min(count('train-limit', preset.trainLimit) || dataset.train.count, dataset.train.count);
const testImages = Math.min(count('test-limit', preset.testLimit) || dataset.test.count, dataset.test.count);
say(
  `CIFAR-10 subset: ${dataset.train.count} training and ${dataset.test.count} test images in ${flags.data}; using ${trainImages} and ${testImages}`,
);

// --- the backend -----------------------------------------------------------------------------

await startBackend('webgpu', pino({ level: 'warn' }, process.stderr), { webgpuAdapter: flags['webgpu-adapter'] });
const device = backendDevice();
const opened = webgpuDevice();
if (!opened) throw new Error('the webgpu backend started without a device');
const info = opened.adapter.info;
const limitNames = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;
const adapter = {
  ...device,
  vendorString: info.vendor,
  architectureString: info.architecture,
  deviceString: info.device,
  description: info.description,
  limits: Object.fromEntries(limitNames.map((name) => [name, opened.device.limits[name]])),
};
console.log(`WebGPU adapter: ${JSON.stringify(adapter, null, 2)}`);
if (device.fallback && !dry && !flags['allow-software-adapter']) {
  await stopBackend();
  throw new Error(
    `the WebGPU adapter is a software one (${device.name}), not the GPU: no Vulkan driver for it was found (see run.sh's output above); ` +
      '--allow-software-adapter measures it anyway',
  );
}

// --- ours ------------------------------------------------------------------------------------

type ModelName = 'lenet5' | 'alexnet';
interface OursRun {
  readonly imagesPerSecond: number;
  readonly seconds: number;
  readonly images: number;
  readonly testAccuracy?: number;
  readonly epochs?: number;
  readonly epochSeconds?: number[];
}
type Outcome<T> = T | { readonly error: string };
const failed = <T extends object>(value: Outcome<T>): value is { readonly error: string } => 'error' in value;

function settingsFor(
  model: ModelName,
  batch: number,
  epochs: number,
  trainLimit: number,
  testLimit: number,
): JobSettings {
  return {
    model,
    dataset: 'cifar10',
    epochs,
    batchSize: batch,
    optimizer: 'sgd',
    learningRate: 0.01,
    momentum: 0.9,
    weightDecay: models[model].defaultWeightDecay,
    labelSmoothing: 0,
    augment: true,
    seed: 0,
    trainLimit,
    testLimit,
    // Reading the loss back stalls the pipeline: as rarely as a job would by default (every 100 batches).
    logEvery: 100,
    timeoutSeconds: Number.POSITIVE_INFINITY,
    initFrom: null,
    trainLayers: 'all',
    inputSize: null,
    autoChoice: null,
    validationSplit: null,
    earlyStopping: null,
    learningRateSchedule: null,
  };
}

function listener(
  onEpoch: TrainingListener['onEpoch'] = async () => undefined,
  stopAt = Number.POSITIVE_INFINITY,
): TrainingListener {
  return {
    onLog: async () => undefined,
    onProgress: async () => undefined,
    onEpoch,
    nextStep: async () => (elapsed() > stopAt ? 'cancelled' : 'continue'),
    onCheckpoint: async () => undefined,
  };
}

/**
 * Timed training steps after a warm-up run of their own (compiling shaders, allocating), as the
 * reference's --steps. More steps than the subset holds run as several epochs of it (each ending
 * in a loss read-back and a one-image evaluation, outside the timed seconds).
 */
async function timeSteps(model: ModelName, batch: number, timed: number): Promise<Outcome<OursRun>> {
  const network = models[model].build(dataset.shape, dataset.classNames.length, 0);
  try {
    const perEpoch = Math.min(timed, Math.floor(dataset.train.count / batch));
    if (perEpoch < Math.max(1, warmupSteps))
      throw new Error(`a step of ${batch} needs more than the subset's ${dataset.train.count} training images`);
    await train(network, dataset, settingsFor(model, batch, 1, warmupSteps * batch, 1), listener());
    const epochs = Math.ceil(timed / perEpoch);
    const stop = await train(network, dataset, settingsFor(model, batch, epochs, perEpoch * batch, 1), listener());
    assertDeviceHealthy();
    if (stop.reason !== 'completed') throw new Error(`training stopped: ${stop.reason}`);
    const images = epochs * perEpoch * batch;
    const seconds = stop.result.trainSeconds;
    return { imagesPerSecond: images / seconds, seconds, images };
  } catch (error) {
    return { error: (error as Error).message.split('\n')[0] ?? String(error) };
  } finally {
    network.dispose();
  }
}

const results: {
  lenet?: Outcome<OursRun>;
  sweep: Record<number, Outcome<OursRun>>;
  epochs?: Outcome<OursRun>;
} = { sweep: {} };

say(`LeNet-5: ${lenetSteps} steps of ${batchSize} after ${warmupSteps} warm-up step(s)`);
results.lenet = await timeSteps('lenet5', batchSize, lenetSteps);
say(`  ${describe(results.lenet)}`);
for (const batch of [...new Set([batchSize, ...sweep])]) {
  say(`AlexNet: ${steps} steps of ${batch} after ${warmupSteps} warm-up step(s)`);
  results.sweep[batch] = await timeSteps('alexnet', batch, steps);
  say(`  ${describe(results.sweep[batch])}`);
}

/** As many epochs as the budget holds at the speed just measured (evaluation included), unless --epochs says. */
function plannedEpochs(): number {
  if (fixedEpochs !== null) return Math.max(1, fixedEpochs);
  const measured = results.sweep[batchSize];
  if (!measured || failed(measured)) return 1;
  const epochSeconds = (trainImages + testImages / 3) / measured.imagesPerSecond;
  return Math.max(1, Math.min(maxEpochs, Math.floor(budgetSeconds / epochSeconds)));
}
const epochs = plannedEpochs();
{
  say(
    `AlexNet: ${epochs} epoch(s) of ${trainImages} images at batch ${batchSize}, then ${testImages} test images (budget ${budgetSeconds} s)`,
  );
  const network = models.alexnet.build(dataset.shape, dataset.classNames.length, 0);
  const epochSeconds: number[] = [];
  let lastAccuracy = Number.NaN;
  // A hard stop at 1.5 × the budget (none when --epochs says how many): the epochs done by then are what's compared.
  const stopAt = fixedEpochs === null ? elapsed() + budgetSeconds * 1.5 : Number.POSITIVE_INFINITY;
  try {
    const stop = await train(
      network,
      dataset,
      settingsFor('alexnet', batchSize, epochs, trainImages, testImages),
      listener(async (summary) => {
        epochSeconds.push(summary.seconds);
        lastAccuracy = summary.testAccuracy;
        say(
          `  epoch ${summary.epoch}: ${summary.seconds.toFixed(1)} s, ${summary.imagesPerSecond.toFixed(1)} images/s, loss ${summary.loss.toFixed(3)}, test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%`,
        );
      }, stopAt),
    );
    assertDeviceHealthy();
    if (epochSeconds.length === 0) throw new Error(`stopped before the first epoch ended (${stop.reason})`);
    const seconds = epochSeconds.reduce((sum, value) => sum + value, 0);
    results.epochs = {
      imagesPerSecond: (trainImages * epochSeconds.length) / seconds,
      seconds,
      images: trainImages,
      testAccuracy: lastAccuracy,
      epochs: epochSeconds.length,
      epochSeconds,
    };
  } catch (error) {
    results.epochs = { error: (error as Error).message.split('\n')[0] ?? String(error) };
  } finally {
    network.dispose();
  }
  say(`  ${describe(results.epochs)}`);
}
const leaked = tf.memory().numTensors;
await stopBackend();

// --- PyTorch, after ours, so the two never share the GPU -------------------------------------

interface TorchRun {
  readonly imagesPerSecond: number;
  readonly seconds: number;
  readonly testAccuracy?: number;
  readonly epochs?: number;
}
interface TorchReport {
  readonly version: string;
  readonly device: string;
  readonly deviceName: string;
  readonly lenet?: TorchRun;
  readonly sweep: Record<string, Outcome<TorchRun>>;
  readonly epochs?: TorchRun;
}
function runPyTorch(): TorchReport | string {
  if (flags['skip-pytorch']) return 'skipped (--skip-pytorch)';
  if (!flags['pytorch-driver'] || !flags.reference)
    return 'not run: --pytorch-driver and --reference name its scripts (run.sh passes them)';
  const completedEpochs = results.epochs && !failed(results.epochs) ? (results.epochs.epochs ?? 1) : epochs;
  const args = [
    flags['pytorch-driver'],
    ...['--reference', flags.reference, '--data', flags.data ?? ''],
    ...[
      '--batch-size',
      String(batchSize),
      '--batch-sizes',
      [...new Set([batchSize, ...sweep])].join(','),
      '--steps',
      String(steps),
    ],
    ...[
      '--lenet-steps',
      String(lenetSteps),
      '--epochs',
      String(completedEpochs),
      '--train-limit',
      String(trainImages),
      '--test-limit',
      String(testImages),
    ],
  ];
  say(`PyTorch: ${flags.python} ${args.join(' ')}`);
  const run = spawnSync(flags.python, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  if (run.error) return `could not start ${flags.python}: ${run.error.message}`;
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  if (run.status !== 0 || !last.startsWith('{')) return `failed (exit ${run.status}): ${last}`;
  return JSON.parse(last) as TorchReport;
}
const torch = runPyTorch();
if (typeof torch === 'string') say(`PyTorch: ${torch}`);

// --- the table -------------------------------------------------------------------------------

function describe(run: Outcome<OursRun> | undefined): string {
  if (!run) return 'not run';
  if (failed(run)) return `failed: ${run.error}`;
  return `${run.imagesPerSecond.toFixed(1)} images/s (${run.images} images in ${run.seconds.toFixed(2)} s)${run.testAccuracy === undefined ? '' : `, test accuracy ${(run.testAccuracy * 100).toFixed(2)}%`}`;
}
const torchOf = (pick: (report: TorchReport) => Outcome<TorchRun> | undefined): Outcome<TorchRun> | undefined =>
  typeof torch === 'string' ? undefined : pick(torch);
const speed = (run: Outcome<{ imagesPerSecond: number }> | undefined) =>
  run && !failed(run) ? run.imagesPerSecond : null;
const accuracy = (run: Outcome<{ testAccuracy?: number }> | undefined) =>
  run && !failed(run) && run.testAccuracy !== undefined ? `${(run.testAccuracy * 100).toFixed(2)}%` : '–';
const number = (value: number | null, digits = 1) =>
  value === null
    ? '–'
    : value.toLocaleString('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (ours: number | null, theirs: number | null) =>
  ours === null || theirs === null ? '–' : (ours / theirs).toFixed(2);
const cell = (run: Outcome<{ imagesPerSecond: number }> | undefined) =>
  run && failed(run) ? `failed: ${run.error.slice(0, 80)}` : number(speed(run));

const torchName =
  typeof torch === 'string'
    ? 'PyTorch'
    : `PyTorch ${torch.version} (${torch.device}${torch.device === 'cpu' ? '' : `, ${torch.deviceName}`})`;
const rows: string[] = [
  `| run (CIFAR-10 subset) | TF.js webgpu (${device.name}) images/s | ${torchName} images/s | ours ÷ PyTorch | test accuracy, ours | test accuracy, PyTorch |`,
  '| --- | ---: | ---: | ---: | ---: | ---: |',
];
const addRow = (what: string, ours: Outcome<OursRun> | undefined, theirs: Outcome<TorchRun> | undefined) =>
  rows.push(
    `| ${what} | ${cell(ours)} | ${cell(theirs)} | ${ratio(speed(ours), speed(theirs))} | ${accuracy(ours)} | ${accuracy(theirs)} |`,
  );
addRow(
  `LeNet-5 (32×32×3), ${lenetSteps} steps of ${batchSize}`,
  results.lenet,
  torchOf((report) => report.lenet),
);
for (const [batch, run] of Object.entries(results.sweep))
  addRow(
    `AlexNet, ${steps} steps of ${batch}`,
    run,
    torchOf((report) => report.sweep[batch]),
  );
const doneEpochs = results.epochs && !failed(results.epochs) ? results.epochs.epochs : undefined;
addRow(
  `AlexNet, ${doneEpochs ?? epochs} epoch(s) of ${trainImages} at batch ${batchSize}, ${testImages} test images`,
  results.epochs,
  torchOf((report) => report.epochs),
);

const fastest = (entries: [string, Outcome<{ imagesPerSecond: number }> | undefined][]) =>
  entries.reduce<[string, number] | null>((best, [batch, run]) => {
    const value = speed(run);
    return value !== null && (best === null || value > best[1]) ? [batch, value] : best;
  }, null);
const oursFastest = fastest(Object.entries(results.sweep));
const torchFastest = typeof torch === 'string' ? null : fastest(Object.entries(torch.sweep));
/** Ten epochs of the full 50,000 training images at the epoch run's speed (training only, no evaluation). */
const tenEpochs = (imagesPerSecond: number | null) =>
  imagesPerSecond === null ? '–' : `${number((10 * 50_000) / imagesPerSecond / 60)} minutes`;
const oursEpochSpeed = speed(results.epochs);
const torchEpochSpeed = speed(torchOf((report) => report.epochs));
const notes = [
  `Fastest AlexNet batch size: ours ${oursFastest ? `${oursFastest[0]} (${number(oursFastest[1])} images/s)` : '–'}, PyTorch ${torchFastest ? `${torchFastest[0]} (${number(torchFastest[1])} images/s)` : '–'}.`,
  `Ten epochs of full-size CIFAR-10 (50,000 images) at batch ${batchSize}, training only, at the epoch run's speed: ours ${tenEpochs(oursEpochSpeed)}, PyTorch ${tenEpochs(torchEpochSpeed)} (ours ÷ PyTorch ${ratio(oursEpochSpeed, torchEpochSpeed)}).`,
  `Adapter: ${[device.vendor, device.architecture, device.name].filter(Boolean).join(' / ')}${device.fallback ? ' (software adapter: not a performance figure)' : ''}; ${os.cpus().length} CPU cores; total ${elapsed().toFixed(0)} s; tensors left: ${leaked}.`,
];
console.log(['', ...rows, '', ...notes].join('\n'));

const jsonPath = flags.json ?? (process.env.OUT ? path.join(process.env.OUT, 'gpu-check.json') : undefined);
if (jsonPath) {
  const settings = {
    dryRun: dry,
    batchSize,
    batchSizes: sweep,
    steps,
    warmupSteps,
    lenetSteps,
    budgetSeconds,
    epochs,
    trainImages,
    testImages,
    subset: { train: dataset.train.count, test: dataset.test.count },
  };
  writeFileSync(
    jsonPath,
    `${JSON.stringify({ when: new Date().toISOString(), adapter, settings, ours: results, pytorch: torch, table: rows.join('\n'), notes }, null, 2)}\n`,
  );
  say(`wrote ${jsonPath}`);
}
const measuredAny = [results.lenet, results.epochs, ...Object.values(results.sweep)].some((run) => run && !failed(run));
if (!measuredAny) process.exitCode = 1;
