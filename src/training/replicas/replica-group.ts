import * as tf from '@tensorflow/tfjs-core';
import { Worker } from 'node:worker_threads';
import type { ConcreteBackend } from '../../backends/select.ts';
import type { JobSettings } from '../../contract/job-request.ts';
import type { ImageShape } from '../../datasets/dataset.ts';
import type { SeededDropout } from '../../models/seeded-dropout.ts';
import type { TrainingStep } from '../training-step.ts';
import { stateSlots } from '../optimizers/optimizer.ts';
import { Barrier } from './barrier.ts';
import { Replica } from './replica.ts';
import { StepMemory, type StepMemoryBuffers } from './step-memory.ts';

/** The backends a replica thread can start: the native and GPU ones hold a process-wide library or device. */
const threadBackends: readonly ConcreteBackend[] = ['wasm', 'cpu'];

/** How many replicas a job trains with on `backend` when `requested` are asked for, and why fewer when fewer. */
export function replicasOn(backend: ConcreteBackend, requested: number): { replicas: number; reason?: string } {
  if (requested <= 1 || threadBackends.includes(backend)) return { replicas: Math.max(1, requested) };
  return {
    replicas: 1,
    reason: `the ${backend} backend doesn't run in worker threads, so the job trains on one replica (TRAIN_THREADS=${requested} asked for more)`,
  };
}

/** A fault a replica thread injects into itself, for the tests: it throws, or its thread exits, at that batch. */
export interface ReplicaFault {
  readonly kind: 'throw' | 'exit';
  readonly batch: number;
}

/**
 * What a replica needs of the job's settings. `learningRate` only builds each thread's
 * TrainingStep, whose optimizer never steps: updates take the batch's rate.
 */
export type ReplicaSettings = Pick<
  JobSettings,
  | 'model'
  | 'seed'
  | 'optimizer'
  | 'learningRate'
  | 'momentum'
  | 'weightDecay'
  | 'trainLayers'
  | 'initFrom'
  | 'inputSize'
  | 'labelSmoothing'
>;

/** A replica thread's workerData. */
export interface ReplicaThreadData {
  readonly replica: number;
  readonly backend: ConcreteBackend;
  readonly shape: ImageShape;
  readonly classes: number;
  readonly settings: ReplicaSettings;
  /** The values of the weights that don't train (fine-tuning the dense layers only), which the shared memory doesn't hold. */
  readonly frozen: readonly Float32Array[];
  readonly memory: StepMemoryBuffers;
  readonly fault: ReplicaFault | null;
}

export type ReplicaThreadMessage = { readonly kind: 'ready' } | { readonly kind: 'failed'; readonly message: string };

export interface ReplicaGroupOptions {
  /** Replicas in all, the main thread's included: `replicas - 1` threads are started. */
  readonly replicas: number;
  readonly backend: ConcreteBackend;
  /** The main thread's step (replica 0), its weights and optimizer already where training goes on from. */
  readonly step: TrainingStep;
  readonly dropouts: readonly SeededDropout[];
  /** frozenWeightValues of the main thread's model. */
  readonly frozen: readonly Float32Array[];
  readonly shape: ImageShape;
  readonly classes: number;
  readonly settings: ReplicaSettings & Pick<JobSettings, 'batchSize'>;
  readonly fault?: ReplicaFault | null;
}

class ReplicaError extends Error {
  override readonly name = 'ReplicaError';
}

/** How the replicas spent a run: for the bench's scaling table. */
export interface ReplicaTimes {
  readonly batches: number;
  /** Milliseconds each replica waited at barriers for the others. */
  readonly waitedMs: number[];
}

// Worker threads don't inherit the tsx loader the process runs under (Node 20 keeps module hooks
// per thread): each registers it before importing its TypeScript entry point.
const typeScriptApi = import.meta.resolve('tsx/esm/api');
const threadEntry = new URL('./replica-thread.ts', import.meta.url).href;
const bootstrap = `import(${JSON.stringify(typeScriptApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(threadEntry)}); })`;

/**
 * Synchronous data parallelism within one job, as DistributedDataParallel does it across GPUs: the
 * main thread is replica 0 and `replicas - 1` worker threads are the others, each with its own
 * backend and copy of the model. Every batch goes into shared memory once; each replica computes
 * the gradient of its slice, each updates a shard of the one shared copy of the weights and
 * optimizer state with the sum of them all, and each loads the result (see Replica). The weights and the
 * optimizer's state live in the shared memory, so a checkpoint takes that state from here, not
 * from the main thread's optimizer, which never steps. A replica that fails fails the run with its
 * message, and the group ends its threads.
 */
export class ReplicaGroup {
  private readonly replica: Replica;
  private readonly barrier: Barrier;
  private readonly threads: Worker[] = [];
  /** Settles when a replica thread fails: the main thread's waits race it. */
  private readonly failed: Promise<void>;
  private settleFailed: () => void = () => undefined;
  private failure: Error | null = null;
  private batches = 0;
  private closing = false;

  private constructor(
    private readonly memory: StepMemory,
    step: TrainingStep,
    private readonly dropouts: readonly SeededDropout[],
    settings: ReplicaSettings,
    private readonly startIterations: number,
  ) {
    this.replica = new Replica(0, memory, step, dropouts, settings);
    this.barrier = new Barrier(memory, 0);
    this.failed = new Promise((resolve) => {
      this.settleFailed = resolve;
    });
  }

  /** Starts the threads from the main thread's current weights and optimizer state; resolves once all can train. */
  static async start(options: ReplicaGroupOptions): Promise<ReplicaGroup> {
    const { replicas, step, dropouts, shape, settings } = options;
    const memory = StepMemory.create({
      replicas,
      batchSize: settings.batchSize,
      imageBytes: shape.height * shape.width * shape.channels,
      parameters: step.variables.reduce((sum, variable) => sum + variable.size, 0),
      stateSlots: stateSlots(settings.optimizer),
      dropoutLayers: dropouts.length,
    });
    await writeFlat(memory.weights, step.variables);
    // No state before the first step: it starts at zero, as the optimizer's would. Slot after slot, as the memory lays it out.
    const state = await step.optimizerState();
    await writeFlat(memory.optimizerState, state);
    tf.dispose(state);
    const replicaSettings: ReplicaSettings = {
      model: settings.model,
      seed: settings.seed,
      optimizer: settings.optimizer,
      learningRate: settings.learningRate,
      momentum: settings.momentum,
      weightDecay: settings.weightDecay,
      // Each replica's slice is trained on the job's loss, smoothed as the main thread's.
      labelSmoothing: settings.labelSmoothing,
      trainLayers: settings.trainLayers,
      initFrom: settings.initFrom,
      inputSize: settings.inputSize,
    };
    const group = new ReplicaGroup(memory, step, dropouts, replicaSettings, step.iterations);
    const ready: Promise<void>[] = [];
    for (let replica = 1; replica < replicas; replica++) {
      const data: ReplicaThreadData = {
        replica,
        backend: options.backend,
        shape,
        classes: options.classes,
        settings: replicaSettings,
        frozen: options.frozen,
        memory: memory.buffers,
        fault: replica === 1 ? (options.fault ?? null) : null,
      };
      ready.push(group.startThread(data));
    }
    await Promise.race([Promise.all(ready), group.failed]);
    if (group.failure) {
      await group.close();
      throw group.failure;
    }
    return group;
  }

  /** Trains one batch on all replicas at `learningRate`; its mean loss. */
  async run(images: Uint8Array, labels: Int32Array, learningRate: number): Promise<tf.Scalar> {
    if (this.failure) throw this.failure;
    this.batches++;
    this.memory.publish(
      images,
      labels,
      this.dropouts.map((dropout) => dropout.randomPosition),
      learningRate,
      this.iterations,
    );
    this.replica.computeGradients();
    await this.barrier.wait(this.failed, () => this.failure);
    this.replica.updateShard();
    await this.barrier.wait(this.failed, () => this.failure);
    this.replica.loadWeights();
    return tf.scalar(this.replica.batchLoss());
  }

  /** Steps the optimizer has taken, as TrainingStep counts them: a checkpoint's `optimizerIterations`. */
  get iterations(): number {
    return this.startIterations + this.batches;
  }

  /** The optimizer's state as TrainingStep.optimizerState gives it: the caller's to dispose. */
  async optimizerState(): Promise<tf.Tensor[]> {
    const { memory } = this;
    return Array.from({ length: memory.layout.stateSlots }, (_, slot) =>
      this.replica.unflatten(memory.stateSlot(slot)),
    ).flat();
  }

  get times(): ReplicaTimes {
    return { batches: this.batches, waitedMs: Array.from(this.memory.waited) };
  }

  /** Ends every thread; what they were doing is dropped. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.memory.stop();
    await Promise.all(this.threads.map((thread) => thread.terminate()));
  }

  /** Resolves once the thread can train. */
  private startThread(data: ReplicaThreadData): Promise<void> {
    const thread = new Worker(bootstrap, { eval: true, workerData: data });
    this.threads.push(thread);
    const name = `replica ${data.replica}`;
    return new Promise((resolve) => {
      thread.on('message', (message: ReplicaThreadMessage) => {
        if (message.kind === 'ready') resolve();
        else this.fail(new ReplicaError(`${name} failed: ${message.message}`));
      });
      thread.on('error', (error) => this.fail(new ReplicaError(`${name} failed: ${error.message}`)));
      thread.on('exit', (code) => this.fail(new ReplicaError(`${name} ended (exit code ${code})`)));
    });
  }

  /** The first failure is the run's; the others' waits end with it. */
  private fail(error: Error): void {
    if (this.closing) return;
    this.failure ??= error;
    this.memory.stop();
    this.settleFailed();
  }
}

/** Tensors' values back to back into `target`, in their order. */
async function writeFlat(target: Float32Array, tensors: readonly tf.Tensor[]): Promise<void> {
  let offset = 0;
  for (const tensor of tensors) {
    target.set((await tensor.data()) as Float32Array, offset);
    offset += tensor.size;
  }
}
