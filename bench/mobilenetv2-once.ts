/**
 * One measured MobileNetV2 run of `npm run bench -- --mobilenetv2`, in a process of its own so that
 * its peak memory is its own and no run warms up the next:
 *   tsx bench/mobilenetv2-once.ts '{"mode":"train","size":96,"replicas":2,"batches":5,"backend":"wasm"}'
 * Training: the trainer's own loop (as a job runs it) on CIFAR-10 images scaled to size × size
 * (nearest neighbour), batch 32, one warm-up step, then `batches` steps timed from the warm-up's
 * end to the last's. Inference: model.predict on batches of 32, as a frozen base computes features
 * for a data set, one warm-up batch, then `batches` timed. Prints one JSON line, a
 * MobileNetV2RunResult.
 */
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend } from '../src/backends/select.ts';
import type { Dataset, ImageShape } from '../src/datasets/dataset.ts';
import { normalisedImages } from '../src/datasets/normalise.ts';
import { mobilenetv2 } from '../src/models/mobilenetv2.ts';
import { replicasOn } from '../src/training/replicas/replica-group.ts';
import { train, type TrainingListener } from '../src/training/trainer.ts';
import {
  mobilenetv2BatchSize,
  mobilenetv2Settings,
  scaled,
  type MobileNetV2RunRequest,
  type MobileNetV2RunResult,
} from './mobilenetv2-runs.ts';
import { loadDataset } from './scenario.ts';

const request = JSON.parse(process.argv[2] ?? '{}') as MobileNetV2RunRequest;
const backend = await startBackend(request.backend, pino({ level: 'warn' }));
const cifar = await loadDataset('cifar10');
const shape: ImageShape = { height: request.size, width: request.size, channels: cifar.shape.channels };
const count = (request.batches + 1) * mobilenetv2BatchSize;
const split = scaled(cifar.train, cifar.shape, request.size, count);
const model = mobilenetv2.build(shape, cifar.classNames.length, 0);
let result: MobileNetV2RunResult;

if (request.mode === 'train') {
  const { replicas } = replicasOn(backend, request.replicas);
  const dataset: Dataset = { ...cifar, shape, train: split, test: { ...split, count: 1 } };
  const settings = mobilenetv2Settings(count);
  // A log line after every step: the first one's end starts the clock, as train-once.ts times steps.
  const stepEnds: number[] = [];
  const listener: TrainingListener = {
    onLog: async () => void stepEnds.push(performance.now()),
    onProgress: async () => undefined,
    nextStep: async () => 'continue',
    onCheckpoint: async () => undefined,
    onEpoch: async () => undefined,
  };
  const stop = await train(model, dataset, settings, listener, { parallel: { replicas, backend } });
  if (stop.reason !== 'completed') throw new Error(`training stopped: ${stop.reason}`);
  const ms = ((stepEnds.at(-1) as number) - (stepEnds[0] as number)) / (stepEnds.length - 1);
  result = {
    backend,
    replicas,
    imagesPerSecond: (mobilenetv2BatchSize * 1000) / ms,
    msPerBatch: ms,
    peakMemoryMiB: process.resourceUsage().maxRSS / 1024,
  };
} else {
  const batchBytes = mobilenetv2BatchSize * request.size * request.size * shape.channels;
  const predict = (batch: number): void => {
    const bytes = split.images.subarray(batch * batchBytes, (batch + 1) * batchBytes);
    tf.tidy(() => {
      const features = model.predict(normalisedImages(bytes, mobilenetv2BatchSize, shape)) as tf.Tensor;
      features.dataSync();
    });
  };
  predict(0);
  const start = performance.now();
  for (let batch = 1; batch <= request.batches; batch++) predict(batch);
  const ms = (performance.now() - start) / request.batches;
  result = {
    backend,
    replicas: 1,
    imagesPerSecond: (mobilenetv2BatchSize * 1000) / ms,
    msPerBatch: ms,
    peakMemoryMiB: process.resourceUsage().maxRSS / 1024,
  };
}
model.dispose();
console.log(JSON.stringify(result));
