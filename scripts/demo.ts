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
import { TrainerClient, type UploadFile } from '../src/client/index.ts';
import type { Job, JobProgress, JobState } from '../src/contract/job.ts';
import type { JobRequestInput } from '../src/contract/job-request.ts';
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
  const client = new TrainerClient(service.url as string);
  console.log(`service up at ${client.baseUrl} (TensorFlow.js backend: ${service.backend})`);
  const request: JobRequestInput = {
    model: 'lenet5',
    dataset: 'mnist',
    epochs: flags.notebook ? 10 : Number(flags.epochs),
    ...(flags['train-limit'] ? { trainLimit: Number(flags['train-limit']) } : {}),
  };
  const created = await client.submit(request);
  console.log(
    `job ${created.id}: LeNet-5 on MNIST, ${created.request.epochs} epoch(s), batch ${created.request.batchSize}, SGD lr ${created.request.learningRate} momentum ${created.request.momentum}`,
  );
  const finished = await follow(client, created);
  if (finished.state !== 'completed' || !finished.result) {
    console.error(`job ended ${finished.state}: ${finished.error?.message ?? 'no reason given'}`);
    process.exitCode = 1;
  } else {
    const { result } = finished;
    console.log(
      `test accuracy ${(result.testAccuracy * 100).toFixed(2)}% (${result.correct}/${result.total}), ${result.params} parameters, ${result.trainSeconds.toFixed(1)} s of training on ${result.backend}`,
    );
    await predictDigits(client, finished.id, Number(flags.digits));
  }
} finally {
  await service.close();
}

/** Prints the job's loss lines and epochs as its events bring them, under a live bar; resolves to the ended job. */
async function follow(client: TrainerClient, created: Job): Promise<Job> {
  let { state, progress } = created;
  for await (const event of client.events(created.id)) {
    if (event.type === 'state') state = event.data.state;
    else if (event.type === 'log') {
      const { line } = event.data;
      clearStatus();
      console.log(`[epoch ${line.epoch}, batch ${String(line.batch).padStart(4)}] loss ${line.loss.toFixed(3)}`);
    } else if (event.type === 'epoch') {
      const { summary } = event.data;
      clearStatus();
      console.log(
        `epoch ${summary.epoch}: loss ${summary.loss.toFixed(3)}, test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%, ${summary.seconds.toFixed(1)} s (${summary.imagesPerSecond.toFixed(0)} images/s)`,
      );
    }
    if ('progress' in event.data) progress = event.data.progress;
    if (event.type !== 'end') showStatus(state, progress);
  }
  clearStatus();
  // The stream ended with the job: its record has the result, or why there is none.
  return client.waitForJob(created.id);
}

/** A live progress bar on a terminal; logs alone when the output is a file or a pipe. */
function showStatus(state: JobState, progress: JobProgress): void {
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

async function predictDigits(client: TrainerClient, id: string, count: number): Promise<void> {
  const dataset = await mnist.load({ dataDir: config.DATA_DIR });
  const folder = path.resolve('demo-digits');
  await mkdir(folder, { recursive: true });
  const files: UploadFile[] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const pixels = dataset.test.images.subarray(i * 784, (i + 1) * 784);
    const png = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
    const file = path.join(folder, `test-${i}.png`);
    await sharp(png).toFile(file);
    labels.push(dataset.test.labels[i] as number);
    files.push({ name: path.basename(file), bytes: new Uint8Array(png), type: 'image/png' });
  }
  const { predictions } = await client.predict(id, files);
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
