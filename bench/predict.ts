/**
 * `npm run bench -- --predict`: predictions per second through the HTTP API, each request a
 * multipart upload of 64 images (MAX_UPLOAD_FILES' default), on a real service (API, worker,
 * private Redis) in a fresh folder. It trains small models first, sends each kind of request
 * twice untimed, then times `requests` more one after the other, as one client would: the median.
 */
import sharp from 'sharp';
import type { TrainerClient } from '../src/client/index.ts';
import type { Job } from '../src/contract/job.ts';
import type { JobRequestInput } from '../src/contract/job-request.ts';
import { datasets } from '../src/datasets/index.ts';
import { digitPhoto } from '../test/support/digit-photos.ts';
import { withBenchService } from './bench-service.ts';
import { percentile } from './stats.ts';

export interface PredictBenchRequest {
  readonly backend: string;
  readonly cifarPath: string | undefined;
  /** Timed requests per kind of upload. */
  readonly requests: number;
}

export interface PredictBenchRow {
  readonly model: string;
  readonly uploads: string;
  readonly preprocess: string;
  readonly imagesPerRequest: number;
  readonly uploadBytes: number;
  readonly medianMs: number;
  readonly predictionsPerSecond: number;
}

const imagesPerRequest = 64;

/** Small models: throughput doesn't depend on how well they learnt. */
const jobs = {
  lenet5Mnist: { model: 'lenet5', dataset: 'mnist', epochs: 1, trainLimit: 2000, testLimit: 200, seed: 0 },
  lenet5Cifar: { model: 'lenet5', dataset: 'cifar10', epochs: 1, trainLimit: 2000, testLimit: 200, seed: 0 },
  alexnetCifar: { model: 'alexnet', dataset: 'cifar10', epochs: 1, trainLimit: 64, testLimit: 64, seed: 0 },
} as const;

/** Submits a job through HTTP and waits for it to complete. */
export async function trainedJob(client: TrainerClient, request: JobRequestInput): Promise<Job> {
  const job = await client.waitForJob((await client.submit(request)).id);
  if (job.state !== 'completed')
    throw new Error(`${request.model} on ${request.dataset} ended ${job.state}: ${job.error?.message ?? ''}`);
  return job;
}

export async function runPredictBench(
  request: PredictBenchRequest,
  onProgress: (line: string) => void,
): Promise<PredictBenchRow[]> {
  return withBenchService(request, async (client, config) => {
    const trained = {
      lenet5Mnist: await trainedJob(client, jobs.lenet5Mnist),
      lenet5Cifar: await trainedJob(client, jobs.lenet5Cifar),
      alexnetCifar: await trainedJob(client, jobs.alexnetCifar),
    };
    onProgress('trained LeNet-5 on MNIST and CIFAR-10, AlexNet on CIFAR-10');

    const mnist = await datasets.mnist.load({ dataDir: config.DATA_DIR });
    const cifar = await datasets.cifar10.load({
      dataDir: config.DATA_DIR,
      ...(request.cifarPath ? { userPath: request.cifarPath } : {}),
    });
    const indices = Array.from({ length: imagesPerRequest }, (_, i) => i);
    const raw = (images: Uint8Array, index: number, width: number, height: number, channels: 1 | 3) =>
      sharp(images.subarray(index * width * height * channels, (index + 1) * width * height * channels), {
        raw: { width, height, channels },
      });
    const mnistPngs = await Promise.all(indices.map((i) => raw(mnist.test.images, i, 28, 28, 1).png().toBuffer()));
    const digitPhotos = await Promise.all(
      indices.map((i) => digitPhoto(mnist.test.images.subarray(i * 784, (i + 1) * 784), 'photo', i)),
    );
    const cifarJpegs = await Promise.all(
      indices.map((i) => raw(cifar.test.images, i, 32, 32, 3).jpeg({ quality: 90 }).toBuffer()),
    );
    const cifarPhotos = await Promise.all(
      indices.map((i) =>
        raw(cifar.test.images, i, 32, 32, 3).resize(640, 480, { fit: 'fill' }).jpeg({ quality: 85 }).toBuffer(),
      ),
    );

    const cases: { job: Job; uploads: string; images: Buffer[]; type: string; preprocess: string }[] = [
      {
        job: trained.lenet5Mnist,
        uploads: 'MNIST test digits, 28×28 PNG',
        images: mnistPngs,
        type: 'image/png',
        preprocess: 'auto (strokes)',
      },
      {
        job: trained.lenet5Mnist,
        uploads: 'MNIST test digits, 28×28 PNG',
        images: mnistPngs,
        type: 'image/png',
        preprocess: 'none',
      },
      {
        job: trained.lenet5Mnist,
        uploads: 'digit photos, 240–900 px JPEG',
        images: digitPhotos,
        type: 'image/jpeg',
        preprocess: 'auto (strokes)',
      },
      {
        job: trained.lenet5Cifar,
        uploads: 'CIFAR-10 test images, 32×32 JPEG',
        images: cifarJpegs,
        type: 'image/jpeg',
        preprocess: 'auto (natural)',
      },
      {
        job: trained.alexnetCifar,
        uploads: 'CIFAR-10 test images, 32×32 JPEG',
        images: cifarJpegs,
        type: 'image/jpeg',
        preprocess: 'auto (natural)',
      },
      {
        job: trained.lenet5Cifar,
        uploads: 'CIFAR-10 images upscaled, 640×480 JPEG',
        images: cifarPhotos,
        type: 'image/jpeg',
        preprocess: 'auto (natural)',
      },
    ];
    const rows: PredictBenchRow[] = [];
    for (const { job, uploads, images, type, preprocess } of cases) {
      const files = images.map((image, i) => ({ name: `image${i}`, bytes: new Uint8Array(image), type }));
      const send = () => client.predict(job.id, files, preprocess === 'none' ? { preprocess: 'none' } : {});
      // Two untimed: the first loads the model; the second lets the collector settle after the set-up's garbage.
      await send();
      await send();
      const times: number[] = [];
      for (let i = 0; i < request.requests; i++) {
        const start = performance.now();
        const { predictions } = await send();
        times.push(performance.now() - start);
        if (predictions.length !== images.length)
          throw new Error(`${predictions.length} predictions for ${images.length} images`);
      }
      const medianMs = percentile(times, 0.5);
      rows.push({
        model: `${job.request.model} / ${job.request.dataset}`,
        uploads,
        preprocess,
        imagesPerRequest: images.length,
        uploadBytes: images.reduce((sum, image) => sum + image.byteLength, 0),
        medianMs,
        predictionsPerSecond: (images.length * 1000) / medianMs,
      });
      onProgress(`${rows.at(-1)?.model}, ${uploads}, ${preprocess}: ${medianMs.toFixed(0)} ms a request`);
    }
    return rows;
  });
}

export function formatPredictBench(rows: readonly PredictBenchRow[]): string {
  return [
    '| model | uploads (64 per request) | preprocess | upload size | median request | predictions/s |',
    '| --- | --- | --- | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.model} | ${row.uploads} | ${row.preprocess} | ${(row.uploadBytes / 1024).toFixed(0)} KiB | ${row.medianMs.toFixed(0)} ms | ${row.predictionsPerSecond.toFixed(0)} |`,
    ),
  ].join('\n');
}
