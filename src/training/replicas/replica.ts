import * as tf from '@tensorflow/tfjs-core';
import { copyValuesInto, assignValues } from '../../backends/host-copies.ts';
import type { JobSettings } from '../../contract/job-request.ts';
import type { SeededDropout } from '../../models/seeded-dropout.ts';
import { adamConstants } from '../optimizers/adam.ts';
import type { TrainingStep } from '../training-step.ts';
import type { StepMemory } from './step-memory.ts';

/** The images `replica` of `replicas` trains of a batch of `count`: contiguous, sizes differing by one at most. */
export function sliceOf(count: number, replicas: number, replica: number): { start: number; end: number } {
  const base = Math.floor(count / replicas);
  const extra = count % replicas;
  const start = replica * base + Math.min(replica, extra);
  return { start, end: start + base + (replica < extra ? 1 : 0) };
}

/** What the update needs of the job's settings; the learning rate comes with each batch (StepMemory.rate), as a schedule changes it by epoch. */
export type UpdateSettings = Pick<JobSettings, 'optimizer' | 'momentum' | 'weightDecay'>;

type Shard = ReturnType<typeof sliceOf>;

/** Parameter `i`'s gradient of the whole batch's mean loss: the replicas' gradients weighted by their shares. */
function summedGradient(regions: readonly Float32Array[], shares: readonly number[], i: number): number {
  // In replica order, the same on every run: the sum doesn't depend on who arrived first.
  let gradient = 0;
  for (let r = 0; r < regions.length; r++)
    gradient += (shares[r] as number) * ((regions[r] as Float32Array)[i] as number);
  return gradient;
}

/**
 * One replica's part of a data-parallel step, the same code on the main thread and on every
 * replica thread; between the phases all replicas meet at a barrier:
 * 1. `computeGradients`: the mean-loss gradient of its slice of the batch, into its region;
 * 2. `updateShard`: for its shard of the parameters, the replicas' gradients summed, each weighted
 *    by its slice's share of the batch (which makes the gradient of the whole batch's mean loss),
 *    then the job's optimizer on the shared weights and optimizer state;
 * 3. `loadWeights`: the shared weights into its own model.
 * The update is TrainingStep.apply's (PyTorch's SGD: weight decay added to the gradient, then
 * momentum; or Adam, AdamW) done in one pass over the shared memory instead of some thirty kernel
 * calls per replica, each replica doing a shard of it.
 */
export class Replica {
  /** Where each variable's values start in the flat parameter order. */
  private readonly offsets: number[];

  constructor(
    readonly index: number,
    private readonly memory: StepMemory,
    private readonly step: TrainingStep,
    private readonly dropouts: readonly SeededDropout[],
    private readonly settings: UpdateSettings,
  ) {
    let offset = 0;
    this.offsets = step.variables.map((variable) => {
      const start = offset;
      offset += variable.size;
      return start;
    });
    if (offset !== memory.layout.parameters)
      throw new Error(
        `replica ${index}: the model has ${offset} parameters, the shared memory ${memory.layout.parameters}`,
      );
  }

  computeGradients(): void {
    const { memory, index } = this;
    const { start, end } = sliceOf(memory.batchImages, memory.layout.replicas, index);
    memory.losses[index] = 0;
    if (start === end) return;
    // Each sample's dropout mask depends on the batch's random position and its index in the batch.
    this.dropouts.forEach((dropout, layer) => {
      dropout.randomPosition = memory.dropoutPosition(layer);
      dropout.sampleOffset = start;
    });
    const { imageBytes } = memory.layout;
    const region = memory.gradientsOf(index);
    tf.tidy(() => {
      const images = this.step.images(memory.images.subarray(start * imageBytes, end * imageBytes), end - start);
      const { loss, grads } = this.step.gradients(images, memory.labels.subarray(start, end));
      grads.forEach((gradient, variable) => copyValuesInto(gradient, region, this.offsets[variable] as number));
      memory.losses[index] = loss.dataSync()[0] as number;
    });
  }

  updateShard(): void {
    const { memory, index } = this;
    const shard = sliceOf(memory.layout.parameters, memory.layout.replicas, index);
    const trained = this.trainedSlices();
    const regions = trained.map(({ replica }) => memory.gradientsOf(replica));
    const shares = trained.map(({ share }) => share);
    if (this.settings.optimizer === 'sgd') this.sgdShard(shard, regions, shares);
    else this.adamShard(shard, regions, shares);
  }

  /** TrainingStep's SGD (PyTorch's: weight decay added to the gradient, then momentum) on the shard. */
  private sgdShard(shard: Shard, regions: readonly Float32Array[], shares: readonly number[]): void {
    const { memory } = this;
    const { momentum: decay, weightDecay } = this.settings;
    const learningRate = memory.rate[0] as number;
    const { weights } = memory;
    const momentum = memory.stateSlot(0);
    const [first, second] = regions;
    const [firstShare, secondShare] = shares;
    if (regions.length === 2 && first && second && firstShare !== undefined && secondShare !== undefined) {
      // Two replicas, the usual case, without the inner loop: the same sums, in half the time (AlexNet's 57 million parameters make it count).
      for (let i = shard.start; i < shard.end; i++) {
        const weight = weights[i] as number;
        const velocity =
          decay * (momentum[i] as number) +
          (firstShare * (first[i] as number) + secondShare * (second[i] as number)) +
          weightDecay * weight;
        momentum[i] = velocity;
        weights[i] = weight - learningRate * velocity;
      }
      return;
    }
    for (let i = shard.start; i < shard.end; i++) {
      const weight = weights[i] as number;
      const velocity = decay * (momentum[i] as number) + summedGradient(regions, shares, i) + weightDecay * weight;
      momentum[i] = velocity;
      weights[i] = weight - learningRate * velocity;
    }
  }

  /** TrainingStep's Adam or AdamW (optimizers/adam.ts) on the shard, at the step count the batch was published with. */
  private adamShard(shard: Shard, regions: readonly Float32Array[], shares: readonly number[]): void {
    const { memory } = this;
    const { beta1, beta2, epsilon } = adamConstants;
    const decoupled = this.settings.optimizer === 'adamw';
    const { weightDecay } = this.settings;
    const learningRate = memory.rate[0] as number;
    const step = memory.rate[1] as number;
    const firstCorrection = 1 - beta1 ** step;
    const secondCorrection = 1 - beta2 ** step;
    // AdamW shrinks the weight before the update; Adam adds the decay to the gradient.
    const shrink = decoupled ? 1 - learningRate * weightDecay : 1;
    const l2 = decoupled ? 0 : weightDecay;
    const { weights } = memory;
    const firstMoment = memory.stateSlot(0);
    const secondMoment = memory.stateSlot(1);
    for (let i = shard.start; i < shard.end; i++) {
      const weight = weights[i] as number;
      const gradient = summedGradient(regions, shares, i) + l2 * weight;
      const first = beta1 * (firstMoment[i] as number) + (1 - beta1) * gradient;
      const second = beta2 * (secondMoment[i] as number) + (1 - beta2) * gradient * gradient;
      firstMoment[i] = first;
      secondMoment[i] = second;
      weights[i] =
        shrink * weight - (learningRate * (first / firstCorrection)) / (Math.sqrt(second / secondCorrection) + epsilon);
    }
  }

  loadWeights(): void {
    const { weights } = this.memory;
    this.step.variables.forEach((variable, i) => {
      const start = this.offsets[i] as number;
      assignValues(variable, weights.subarray(start, start + variable.size));
    });
  }

  /** Flat values, in parameter order, as one new tensor per variable. */
  unflatten(values: Float32Array): tf.Tensor[] {
    return this.step.variables.map((variable, i) => {
      const start = this.offsets[i] as number;
      return tf.tensor(values.slice(start, start + variable.size), variable.shape, 'float32');
    });
  }

  /** The batch's mean loss: the slices' losses weighted by their share of it. */
  batchLoss(): number {
    return this.trainedSlices().reduce(
      (loss, { replica, share }) => loss + share * (this.memory.losses[replica] as number),
      0,
    );
  }

  /** The replicas that trained images of the batch, in replica order, and the share of the batch each trained. */
  private trainedSlices(): { replica: number; share: number }[] {
    const { replicas } = this.memory.layout;
    const count = this.memory.batchImages;
    const slices: { replica: number; share: number }[] = [];
    for (let replica = 0; replica < replicas; replica++) {
      const { start, end } = sliceOf(count, replicas, replica);
      if (start < end) slices.push({ replica, share: (end - start) / count });
    }
    return slices;
  }
}
