/**
 * A replica thread: its own TensorFlow.js backend and copy of the model, started from the main
 * thread's weights, training its slice of every batch the main thread publishes until the group
 * stops. It reports `ready` once it can train and `failed` (then ends) when anything throws.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { startBackend } from '../../backends/select.ts';
import { networkFor } from '../../models/build-for-job.ts';
import { setFrozenWeights } from '../../models/fine-tune.ts';
import { SeededDropout } from '../../models/seeded-dropout.ts';
import { TrainingStep } from '../training-step.ts';
import { Barrier, ReplicasStoppedError, waitUntil } from './barrier.ts';
import type { ReplicaThreadData, ReplicaThreadMessage } from './replica-group.ts';
import { Replica } from './replica.ts';
import { Control, StepMemory } from './step-memory.ts';

const data = workerData as ReplicaThreadData;
const post = (message: ReplicaThreadMessage) => parentPort?.postMessage(message);

async function trainSlices(): Promise<void> {
  await startBackend(data.backend, pino({ level: 'warn' }));
  const { shape, classes, settings } = data;
  const model = networkFor(settings, shape, classes);
  setFrozenWeights(model, data.frozen);
  const step = new TrainingStep(model, shape, classes, settings);
  const dropouts = model.layers.filter((layer): layer is SeededDropout => layer instanceof SeededDropout);
  const memory = StepMemory.attach(data.memory);
  const replica = new Replica(data.replica, memory, step, dropouts, settings);
  const barrier = new Barrier(memory, data.replica);
  // The main thread's weights, where training goes on from.
  replica.loadWeights();
  post({ kind: 'ready' });
  for (let batches = 1; ; batches++) {
    waitUntil(memory, Control.batches, batches);
    if (data.fault?.batch === batches) {
      if (data.fault.kind === 'exit') process.exit(3);
      throw new Error(`injected fault (TEST_REPLICA_FAULT) at batch ${batches}`);
    }
    replica.computeGradients();
    barrier.waitSync();
    replica.updateShard();
    barrier.waitSync();
    replica.loadWeights();
  }
}

trainSlices().catch((error: unknown) => {
  if (error instanceof ReplicasStoppedError) return;
  post({ kind: 'failed', message: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
});
