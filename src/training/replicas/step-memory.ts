/**
 * The memory the replicas of one job share, all of it SharedArrayBuffers, laid out here and only
 * here (the main thread creates it, each replica thread attaches to the same buffers):
 *
 * | part        | type                 | length                 | written by                            |
 * | ----------- | -------------------- | ---------------------- | ------------------------------------- |
 * | `control`   | Int32Array           | 4 + dropout layers     | see `Control`                         |
 * | `images`    | Uint8Array           | batch size × image     | the main thread: the batch's raw bytes|
 * | `labels`    | Int32Array           | batch size             | the main thread                       |
 * | `gradients` | Float32Array         | replicas × parameters  | replica r: its slice's mean-loss gradient, at r × parameters |
 * | `weights`   | Float32Array         | parameters             | replica r: its shard, updated; every replica reads it all |
 * | `optimizerState` | Float32Array    | state slots × parameters | replica r: its shard of each slot (SGD's momentum; Adam's first, then second moments), slot s at s × parameters |
 * | `rate`      | Float64Array         | 2                      | the main thread: the batch's learning rate (its epoch's, by the schedule), then the optimizer's step count with this batch (Adam's bias correction) |
 * | `losses`    | Float64Array         | replicas               | replica r: its slice's mean loss      |
 * | `waited`    | Float64Array         | replicas               | replica r: milliseconds spent at barriers |
 *
 * A batch's images go in once, whatever the number of replicas: each reads its slice in place.
 * The weights and the optimizer's state are one copy: replicas update shards of it, then each
 * loads it into its own model's variables. Parameters are flat, in the model's trainableWeights order.
 */
export const Control = {
  /** Batches the main thread has published: a replica thread waits for it to pass the ones it trained. */
  batches: 0,
  /** Arrivals at barriers since the start, by every replica (`Barrier`). */
  arrived: 1,
  /** 1: the group is closing; every wait ends. */
  stop: 2,
  /** Images in the batch published last. */
  batchImages: 3,
  /** From here, one per dropout layer: its random position at the start of the batch. */
  dropoutPositions: 4,
} as const;

export interface StepMemoryLayout {
  readonly replicas: number;
  readonly batchSize: number;
  readonly imageBytes: number;
  readonly parameters: number;
  /** Tensors of optimizer state per variable (optimizers/optimizer.ts stateSlots). */
  readonly stateSlots: number;
  readonly dropoutLayers: number;
}

/** The buffers themselves, as they travel to a replica thread in its workerData. */
export interface StepMemoryBuffers {
  readonly layout: StepMemoryLayout;
  readonly control: SharedArrayBuffer;
  readonly images: SharedArrayBuffer;
  readonly labels: SharedArrayBuffer;
  readonly gradients: SharedArrayBuffer;
  readonly weights: SharedArrayBuffer;
  readonly optimizerState: SharedArrayBuffer;
  readonly rate: SharedArrayBuffer;
  readonly losses: SharedArrayBuffer;
  readonly waited: SharedArrayBuffer;
}

export class StepMemory {
  readonly control: Int32Array;
  readonly images: Uint8Array;
  readonly labels: Int32Array;
  readonly gradients: Float32Array;
  readonly weights: Float32Array;
  readonly optimizerState: Float32Array;
  readonly rate: Float64Array;
  readonly losses: Float64Array;
  readonly waited: Float64Array;

  private constructor(readonly buffers: StepMemoryBuffers) {
    this.control = new Int32Array(buffers.control);
    this.images = new Uint8Array(buffers.images);
    this.labels = new Int32Array(buffers.labels);
    this.gradients = new Float32Array(buffers.gradients);
    this.weights = new Float32Array(buffers.weights);
    this.optimizerState = new Float32Array(buffers.optimizerState);
    this.rate = new Float64Array(buffers.rate);
    this.losses = new Float64Array(buffers.losses);
    this.waited = new Float64Array(buffers.waited);
  }

  get layout(): StepMemoryLayout {
    return this.buffers.layout;
  }

  static create(layout: StepMemoryLayout): StepMemory {
    const shared = (bytes: number) => new SharedArrayBuffer(bytes);
    return new StepMemory({
      layout,
      control: shared(Int32Array.BYTES_PER_ELEMENT * (Control.dropoutPositions + layout.dropoutLayers)),
      images: shared(layout.batchSize * layout.imageBytes),
      labels: shared(Int32Array.BYTES_PER_ELEMENT * layout.batchSize),
      gradients: shared(Float32Array.BYTES_PER_ELEMENT * layout.replicas * layout.parameters),
      weights: shared(Float32Array.BYTES_PER_ELEMENT * layout.parameters),
      optimizerState: shared(Float32Array.BYTES_PER_ELEMENT * layout.stateSlots * layout.parameters),
      rate: shared(2 * Float64Array.BYTES_PER_ELEMENT),
      losses: shared(Float64Array.BYTES_PER_ELEMENT * layout.replicas),
      waited: shared(Float64Array.BYTES_PER_ELEMENT * layout.replicas),
    });
  }

  static attach(buffers: StepMemoryBuffers): StepMemory {
    return new StepMemory(buffers);
  }

  /** Slot `slot` of the optimizer's state. */
  stateSlot(slot: number): Float32Array {
    const { parameters } = this.layout;
    return this.optimizerState.subarray(slot * parameters, (slot + 1) * parameters);
  }

  /** Replica `replica`'s gradient region. */
  gradientsOf(replica: number): Float32Array {
    const { parameters } = this.layout;
    return this.gradients.subarray(replica * parameters, (replica + 1) * parameters);
  }

  /** Puts a batch, its learning rate and step count in place for every replica and wakes the replica threads. */
  publish(
    images: Uint8Array,
    labels: Int32Array,
    dropoutPositions: readonly number[],
    learningRate: number,
    step: number,
  ): void {
    this.images.set(images);
    // Published with the batch count below: Atomics order the plain writes before it for every thread.
    this.rate[0] = learningRate;
    this.rate[1] = step;
    this.labels.set(labels);
    Atomics.store(this.control, Control.batchImages, labels.length);
    dropoutPositions.forEach((position, index) =>
      Atomics.store(this.control, Control.dropoutPositions + index, position),
    );
    Atomics.add(this.control, Control.batches, 1);
    Atomics.notify(this.control, Control.batches);
  }

  get batchImages(): number {
    return Atomics.load(this.control, Control.batchImages);
  }

  dropoutPosition(layer: number): number {
    return Atomics.load(this.control, Control.dropoutPositions + layer);
  }

  get stopped(): boolean {
    return Atomics.load(this.control, Control.stop) === 1;
  }

  /** Ends every wait of every replica. */
  stop(): void {
    Atomics.store(this.control, Control.stop, 1);
    Atomics.notify(this.control, Control.batches);
    Atomics.notify(this.control, Control.arrived);
  }
}
