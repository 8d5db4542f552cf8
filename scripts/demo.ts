/**
 * The README's main job: starts the service (API, worker and, without REDIS_URL, a private
 * Redis), trains LeNet-5 on MNIST through the HTTP API while showing its progress, then sends a
 * few real test digits as PNG files to the predict endpoint.
 *
 *   npm run demo                 one epoch (about a minute)
 *   npm run demo -- --notebook   the notebook's 10 epochs
 *   npm run demo -- --epochs 3 --train-limit 10000
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Job } from '../src/contract/job.ts';
import type { JobRequestInput } from '../src/contract/job-request.ts';
import type { PredictResponse } from '../src/contract/predict.ts';
import { loadConfig } from '../src/config.ts';
import { mnist } from '../src/datasets/mnist.ts';
import { createLogger } from '../src/logger.ts';
import { startService } from '../src/service.ts';

const { values: flags } = parseArgs({
  options: {
    epochs: { type: 'string', default: '1' },
    notebook: { type: 'boolean', default: false },
    'train-limit': { type: 'string' },
    digits: { type: 'string', default: '8' },
  },
});

const config = loadConfig({ LOG_LEVEL: 'warn', PORT: '0', ...process.env });
const service = await startService(config, createLogger(config));
try {
  const api = service.url as string;
  console.log(`service up at ${api} (TensorFlow.js backend: ${service.backend})`);
  const request: JobRequestInput = {
    model: 'lenet5',
    dataset: 'mnist',
    epochs: flags.notebook ? 10 : Number(flags.epochs),
    ...(flags['train-limit'] ? { trainLimit: Number(flags['train-limit']) } : {}),
  };
  const created = await call<Job>(`${api}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  console.log(
    `job ${created.id}: LeNet-5 on MNIST, ${created.request.epochs} epoch(s), batch ${created.request.batchSize}, SGD lr ${created.request.learningRate} momentum ${created.request.momentum}`,
  );
  const finished = await follow(api, created.id);
  if (finished.state !== 'completed' || !finished.result) {
    console.error(`job ended ${finished.state}: ${finished.error?.message ?? 'no reason given'}`);
    process.exitCode = 1;
  } else {
    const { result } = finished;
    console.log(
      `test accuracy ${(result.testAccuracy * 100).toFixed(2)}% (${result.correct}/${result.total}), ${result.params} parameters, ${result.trainSeconds.toFixed(1)} s of training on ${result.backend}`,
    );
    await predictDigits(api, finished.id, Number(flags.digits));
  }
} finally {
  await service.close();
}

async function follow(api: string, id: string): Promise<Job> {
  let printedLogs = 0;
  let printedEpochs = 0;
  for (;;) {
    const job = await call<Job>(`${api}/jobs/${id}`);
    for (const line of job.logs.slice(printedLogs)) {
      clearStatus();
      console.log(`[epoch ${line.epoch}, batch ${String(line.batch).padStart(4)}] loss ${line.loss.toFixed(3)}`);
    }
    for (const epoch of job.epochs.slice(printedEpochs)) {
      clearStatus();
      console.log(
        `epoch ${epoch.epoch}: loss ${epoch.loss.toFixed(3)}, test accuracy ${(epoch.testAccuracy * 100).toFixed(2)}%, ${epoch.seconds.toFixed(1)} s (${epoch.imagesPerSecond.toFixed(0)} images/s)`,
      );
    }
    printedLogs = job.logs.length;
    printedEpochs = job.epochs.length;
    showStatus(job);
    if (['completed', 'failed', 'cancelled'].includes(job.state)) {
      clearStatus();
      return job;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** A live progress bar on a terminal; logs alone when the output is a file or a pipe. */
function showStatus({ state, progress }: Job): void {
  if (!process.stdout.isTTY) return;
  const width = 30;
  const filled = Math.round(progress.fraction * width);
  clearStatus();
  process.stdout.write(
    `${state.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(progress.fraction * 100).toFixed(0).padStart(3)}%  epoch ${progress.epoch}/${progress.epochs}  batch ${progress.batch}/${progress.batchesPerEpoch}`,
  );
}

function clearStatus(): void {
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
}

async function predictDigits(api: string, id: string, count: number): Promise<void> {
  const dataset = await mnist.load({ dataDir: config.DATA_DIR });
  const folder = path.resolve('demo-digits');
  await mkdir(folder, { recursive: true });
  const form = new FormData();
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const pixels = dataset.test.images.subarray(i * 784, (i + 1) * 784);
    const png = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const file = path.join(folder, `test-${i}.png`);
    await sharp(png).toFile(file);
    labels.push(dataset.test.labels[i] as number);
    form.append('images', new Blob([png], { type: 'image/png' }), path.basename(file));
  }
  const { predictions } = await call<PredictResponse>(`${api}/jobs/${id}/predict`, { method: 'POST', body: form });
  console.log(
    `predictions for ${count} test digits sent as PNG files (saved in ${path.relative(process.cwd(), folder)}/):`,
  );
  predictions.forEach((prediction, i) => {
    const mark = prediction.label === labels[i] ? 'right' : 'WRONG';
    console.log(
      `  test-${i}.png  true ${labels[i]}  predicted ${prediction.className} (p=${prediction.probability.toFixed(3)})  ${mark}`,
    );
  });
}

async function call<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  const body = (await response.json()) as T & { error?: string };
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url} answered ${response.status}: ${body.error ?? ''}`);
  return body;
}
