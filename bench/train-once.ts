/**
 * One measured training run of `npm run bench`, in a process of its own so that its peak memory
 * is its own (a WebAssembly heap never shrinks) and no run warms up the next:
 *   tsx bench/train-once.ts '{"scenario":{...},"replicas":2,"backend":"auto"}'
 * Prints one JSON line, a TrainOnceResult.
 */
import { pino } from 'pino';
import type { BackendChoice } from '../src/config.ts';
import { startBackend } from '../src/backends/select.ts';
import { models } from '../src/models/index.ts';
import { replicasOn } from '../src/training/replicas/replica-group.ts';
import { train, type TrainingListener } from '../src/training/trainer.ts';
import { batchSize, loadDataset, settingsFor, type Scenario } from './scenario.ts';

export interface TrainOnceRequest {
  readonly scenario: Scenario;
  readonly replicas: number;
  readonly backend: BackendChoice;
}

export interface TrainOnceResult {
  readonly backend: string;
  readonly replicas: number;
  readonly imagesPerSecond: number;
  readonly trainSeconds: number;
  readonly testAccuracy: number | null;
  readonly peakMemoryMiB: number;
  /** Of the training time, the share the replicas spent waiting for each other at the step's barriers (their mean). */
  readonly waitingShare: number | null;
}

const request = JSON.parse(process.argv[2] ?? '{}') as TrainOnceRequest;
const { scenario } = request;
const backend = await startBackend(request.backend, pino({ level: 'warn' }));
const { replicas } = replicasOn(backend, request.replicas);
const dataset = await loadDataset(scenario.dataset);
const settings = settingsFor(scenario, dataset);
const model = models[scenario.model].build(dataset.shape, dataset.classNames.length, settings.seed);
// A steps run trains one step more, its first, as a warm-up, as the reference does: the first call
// compiles and allocates. It is timed from that step's end (a log line after every step) to the last's.
const steps = scenario.steps;
const run = steps ? { ...settings, trainLimit: (steps + 1) * batchSize, logEvery: 1 } : settings;
const stepEnds: number[] = [];
const listener: TrainingListener = {
  onLog: async () => void stepEnds.push(performance.now()),
  onProgress: async () => undefined,
  nextStep: async () => 'continue',
  onCheckpoint: async () => undefined,
  onEpoch: async (summary) => {
    if (!steps)
      process.stderr.write(
        `  ours, ${replicas} replica(s), epoch ${summary.epoch}: ${summary.seconds.toFixed(1)} s, test accuracy ${(summary.testAccuracy * 100).toFixed(2)}%\n`,
      );
  },
};
const stop = await train(model, dataset, run, listener, { parallel: { replicas, backend } });
if (stop.reason !== 'completed') throw new Error(`training stopped: ${stop.reason}`);
const outcome = stop.result;
const trainSeconds = steps ? ((stepEnds.at(-1) as number) - (stepEnds[0] as number)) / 1000 : outcome.trainSeconds;
const waited = outcome.replicaTimes?.waitedMs ?? [];
const result: TrainOnceResult = {
  backend,
  replicas,
  imagesPerSecond: (settings.trainLimit * settings.epochs) / trainSeconds,
  trainSeconds,
  testAccuracy: steps ? null : outcome.evaluation.accuracy,
  peakMemoryMiB: process.resourceUsage().maxRSS / 1024,
  waitingShare:
    waited.length > 0 ? waited.reduce((sum, ms) => sum + ms, 0) / waited.length / 1000 / outcome.trainSeconds : null,
};
console.log(JSON.stringify(result));
