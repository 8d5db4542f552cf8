/**
 * `npm run bench -- --mobilenetv2`: MobileNetV2's speed on this machine, batch 32, CIFAR-10 images
 * scaled to each size: training images/s at 32 and 96 px on each replica count, and inference
 * images/s at 96 and 160 px (a frozen base computing a data set's features) in one process and in
 * as many processes at once as there are replicas to compare. Each run is a process of its own
 * (bench/mobilenetv2-once.ts), one after the other, except the inference processes run together.
 * The report starts with the CPU's model and the SIMD flags that decide the figures.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend } from '../src/backends/select.ts';
import type { BackendChoice } from '../src/config.ts';
import type { Dataset } from '../src/datasets/dataset.ts';
import { normalisedImages } from '../src/datasets/normalise.ts';
import { mobilenetv2 } from '../src/models/mobilenetv2.ts';
import { formatProfile, profileTraining } from './profile.ts';
import {
  mobilenetv2BatchSize,
  mobilenetv2Settings,
  scaled,
  type MobileNetV2RunRequest,
  type MobileNetV2RunResult,
} from './mobilenetv2-runs.ts';
import { loadDataset } from './scenario.ts';

export interface MobileNetV2BenchRequest {
  readonly backend: BackendChoice;
  readonly replicaCounts: readonly number[];
  /** Timed training steps at 32 px; larger sizes take fewer, as many images' worth of pixels. */
  readonly steps: number;
}

interface Row {
  readonly what: string;
  readonly backend: string;
  readonly size: number;
  readonly processes: number;
  readonly replicas: number;
  readonly imagesPerSecond: number;
  readonly msPerBatch: number;
  readonly peakMemoryMiB: number;
}

export interface MobileNetV2BenchReport {
  readonly cpu: string;
  readonly rows: readonly Row[];
  readonly failures: readonly string[];
}

/** The CPU's model and the flags of the vector units WebAssembly SIMD and PyTorch's kernels run on. */
function cpuDescription(): string {
  const model = os.cpus()[0]?.model ?? 'unknown CPU';
  let flags = 'flags unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    const wanted = ['sse4_1', 'sse4_2', 'avx', 'avx2', 'fma', 'avx512f'];
    const present = new Set(line?.split(':')[1]?.trim().split(/\s+/));
    flags = wanted.map((flag) => (present.has(flag) ? flag : `no ${flag}`)).join(' ');
  } catch {
    // Not Linux: the model name alone.
  }
  return `${model}, ${os.availableParallelism()} logical cores, ${flags}, Node ${process.versions.node}`;
}

/** One run in a child process; its result, or why there is none. */
function runOnce(request: MobileNetV2RunRequest): Promise<MobileNetV2RunResult | string> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        path.join(import.meta.dirname, 'mobilenetv2-once.ts'),
        JSON.stringify(request),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (code, signal) => {
      const line = output.trim().split('\n').at(-1) ?? '';
      resolve(
        code === 0 && line.startsWith('{') ? (JSON.parse(line) as MobileNetV2RunResult) : `exit ${code ?? signal}`,
      );
    });
  });
}

export async function runMobileNetV2Bench(
  request: MobileNetV2BenchRequest,
  progress: (line: string) => void,
): Promise<MobileNetV2BenchReport> {
  const rows: Row[] = [];
  const failures: string[] = [];
  const { backend } = request;
  for (const size of [32, 96]) {
    // The same pixels' worth of steps at each size, at least 3.
    const batches = Math.max(3, Math.round((request.steps * 32 * 32) / (size * size)));
    for (const replicas of request.replicaCounts) {
      const result = await runOnce({ mode: 'train', size, replicas, batches, backend });
      if (typeof result === 'string') failures.push(`training at ${size} px on ${replicas} replica(s): ${result}`);
      else rows.push({ what: 'training', size, processes: 1, ...result });
      progress(`training at ${size} px on ${replicas} replica(s) done`);
    }
  }
  for (const size of [96, 160]) {
    const batches = Math.max(3, Math.round((request.steps * 32 * 32) / (size * size)) * 2);
    for (const processes of new Set([1, ...request.replicaCounts])) {
      const results = await Promise.all(
        Array.from({ length: processes }, () => runOnce({ mode: 'infer', size, replicas: 1, batches, backend })),
      );
      const measured = results.filter((r): r is MobileNetV2RunResult => typeof r !== 'string');
      if (measured.length < results.length) {
        failures.push(
          `inference at ${size} px in ${processes} process(es): ${results.find((r) => typeof r === 'string')}`,
        );
      } else {
        rows.push({
          what: 'inference',
          size,
          processes,
          replicas: 1,
          backend: measured[0]?.backend ?? backend,
          imagesPerSecond: measured.reduce((sum, r) => sum + r.imagesPerSecond, 0),
          msPerBatch: measured.reduce((sum, r) => sum + r.msPerBatch, 0) / measured.length,
          peakMemoryMiB: Math.max(...measured.map((r) => r.peakMemoryMiB)),
        });
      }
      progress(`inference at ${size} px in ${processes} process(es) done`);
    }
  }
  return { cpu: cpuDescription(), rows, failures };
}

export function formatMobileNetV2Bench(report: MobileNetV2BenchReport): string {
  return [
    `CPU: ${report.cpu}`,
    `MobileNetV2 (width 1.0), batch ${mobilenetv2BatchSize}, CIFAR-10 images scaled to each size; training: SGD momentum 0.9, the trainer's own loop`,
    '',
    '| run | size | backend | processes × replicas | images/s | ms per batch of 32 | peak memory (one process) |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: |',
    ...report.rows.map(
      (row) =>
        `| ${row.what} | ${row.size} px | ${row.backend} | ${row.processes} × ${row.replicas} | ${row.imagesPerSecond.toFixed(1)} | ${row.msPerBatch.toFixed(0)} | ${row.peakMemoryMiB.toFixed(0)} MiB |`,
    ),
    ...report.failures.map((failure) => `not measured: ${failure}`),
  ].join('\n');
}

/** Kernel rows of an inference profile shown before the rest are summed into one line. */
const inferenceRowsShown = 12;

/**
 * `--mobilenetv2 --profile`: where the time goes, in this process. Training at 32 and 96 px through
 * bench/profile.ts (the trainer's step, phase by phase, and every kernel under tf.profile); inference
 * at 96 and 160 px as one batch of model.predict under tf.profile, kernel by kernel.
 */
export async function profileMobileNetV2(backendChoice: BackendChoice): Promise<string> {
  await startBackend(backendChoice, pino({ level: 'warn' }));
  const cifar = await loadDataset('cifar10');
  const sections = [`CPU: ${cpuDescription()}`];
  for (const [size, runs] of [
    [32, { warmupSteps: 2, timedSteps: 10, kernelSteps: 3 }],
    [96, { warmupSteps: 1, timedSteps: 3, kernelSteps: 1 }],
  ] as const) {
    const count = (runs.warmupSteps + runs.timedSteps + runs.kernelSteps) * mobilenetv2BatchSize;
    const shape = { ...cifar.shape, height: size, width: size };
    const split = scaled(cifar.train, cifar.shape, size, count);
    const dataset: Dataset = { ...cifar, shape, train: split, test: { ...split, count: 1 } };
    const model = mobilenetv2.build(shape, cifar.classNames.length, 0);
    const profile = await profileTraining(
      `MobileNetV2 training at ${size} px, batch ${mobilenetv2BatchSize}`,
      model,
      dataset,
      mobilenetv2Settings(count),
      runs,
    );
    sections.push(formatProfile(profile));
  }
  for (const size of [96, 160]) {
    const shape = { ...cifar.shape, height: size, width: size };
    const model = mobilenetv2.build(shape, cifar.classNames.length, 0);
    const images = normalisedImages(
      scaled(cifar.train, cifar.shape, size, mobilenetv2BatchSize).images,
      mobilenetv2BatchSize,
      shape,
    );
    const predict = () => tf.tidy(() => (model.predict(images) as tf.Tensor).dataSync());
    predict();
    const start = performance.now();
    predict();
    const ms = performance.now() - start;
    const profile = await tf.profile(() => void predict());
    const byKernel = new Map<string, { calls: number; ms: number }>();
    for (const kernel of profile.kernels) {
      // Ops with a custom gradient (fused convolution) are listed too, around the kernels they run.
      if (tf.getKernel(kernel.name, tf.getBackend()) === undefined) continue;
      const row = byKernel.get(kernel.name) ?? { calls: 0, ms: 0 };
      row.calls++;
      row.ms += typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
      byKernel.set(kernel.name, row);
    }
    const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms);
    const total = rows.reduce((sum, [, row]) => sum + row.ms, 0);
    const rest = rows.slice(inferenceRowsShown);
    sections.push(
      [
        `MobileNetV2 inference at ${size} px, batch ${mobilenetv2BatchSize}, ${tf.getBackend()}: ${ms.toFixed(0)} ms a batch (${((mobilenetv2BatchSize * 1000) / ms).toFixed(1)} images/s); kernels under tf.profile ${total.toFixed(0)} ms`,
        '',
        '| kernel | calls | ms | share of kernel time |',
        '| --- | ---: | ---: | ---: |',
        ...rows
          .slice(0, inferenceRowsShown)
          .map(
            ([name, row]) =>
              `| ${name} | ${row.calls} | ${row.ms.toFixed(1)} | ${((100 * row.ms) / total).toFixed(1)}% |`,
          ),
        ...(rest.length > 0
          ? [
              `| ${rest.length} others | ${rest.reduce((sum, [, row]) => sum + row.calls, 0)} | ${rest.reduce((sum, [, row]) => sum + row.ms, 0).toFixed(1)} | |`,
            ]
          : []),
      ].join('\n'),
    );
    images.dispose();
    model.dispose();
  }
  return sections.join('\n\n');
}
