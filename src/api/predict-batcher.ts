/** Images one batched model call takes at most: a batch that reaches it is queued at once, and newcomers start the next. */
export const maxBatchImages = 16;

/** One model call: `count` images' pixels, one after the other, to one row of probabilities each. */
export type ModelCall = (pixels: Uint8Array, count: number) => Promise<number[][]>;

interface Entry {
  readonly pixels: Uint8Array;
  readonly count: number;
  resolve(rows: number[][]): void;
  reject(error: unknown): void;
}

interface Batch {
  readonly entries: Entry[];
  images: number;
  readonly call: ModelCall;
  timer: NodeJS.Timeout | null;
  /** Waiting for its turn: it still takes requests that come meanwhile, up to maxBatchImages. */
  queued: boolean;
}

/**
 * Runs the API's model calls one at a time, with a turn of the event loop between two, so that a
 * burst of predictions never holds the loop for longer than one call: other requests (GET
 * /health, GET /jobs) are read and answered in between.
 *
 * With `maxWaitMs` above 0, also dynamic batching, as TensorFlow Serving does it: predictions
 * for the same model are joined into one model call. Each request in flight for a model (from its
 * arrival to its answer) is counted; once its images are ready it joins the model's open batch,
 * which is queued for its turn as soon as every request in flight has joined, it reaches
 * maxBatchImages, or `maxWaitMs` have passed; until its turn comes it takes whatever else
 * arrives. A lone request so never waits for others.
 */
export class PredictBatcher {
  private readonly inFlight = new Map<string, number>();
  private readonly batches = new Map<string, Batch>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly maxWaitMs: number) {}

  /** Runs a prediction for `model`'s job, counted in flight while it runs. */
  async track<T>(model: string, work: () => Promise<T>): Promise<T> {
    this.inFlight.set(model, (this.inFlight.get(model) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.inFlight.get(model) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(model);
      else this.inFlight.set(model, left);
      // One fewer to wait for: the others may all be waiting now.
      this.consider(model);
    }
  }

  /** The rows of `count` images, from a model call in its turn, shared (batching) with whichever requests for `model` join it. */
  classify(model: string, pixels: Uint8Array, count: number, call: ModelCall): Promise<number[][]> {
    if (this.maxWaitMs === 0) return this.inTurn(() => call(pixels, count));
    return new Promise((resolve, reject) => {
      let batch = this.batches.get(model);
      if (!batch || batch.images + count > maxBatchImages) {
        batch = { entries: [], images: 0, call, timer: null, queued: false };
        this.batches.set(model, batch);
      }
      batch.entries.push({ pixels, count, resolve, reject });
      batch.images += count;
      this.consider(model);
    });
  }

  /** `call` once the calls queued before it are done and the event loop has had a turn. */
  private inTurn<T>(call: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => new Promise((resolve) => setImmediate(resolve))).then(call);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private consider(model: string): void {
    const batch = this.batches.get(model);
    if (!batch || batch.queued) return;
    if (batch.entries.length >= (this.inFlight.get(model) ?? 0) || batch.images >= maxBatchImages) return this.queue(model, batch);
    batch.timer ??= setTimeout(() => this.queue(model, batch), this.maxWaitMs);
  }

  private queue(model: string, batch: Batch): void {
    if (batch.queued) return;
    batch.queued = true;
    if (batch.timer) clearTimeout(batch.timer);
    const rows = this.inTurn(() => {
      // Its turn: from here on, newcomers start the next batch.
      if (this.batches.get(model) === batch) this.batches.delete(model);
      const joined = new Uint8Array(batch.entries.reduce((size, entry) => size + entry.pixels.byteLength, 0));
      batch.entries.reduce((offset, entry) => (joined.set(entry.pixels, offset), offset + entry.pixels.byteLength), 0);
      return batch.call(joined, batch.images);
    });
    rows.then(
      (all) => {
        let offset = 0;
        for (const entry of batch.entries) {
          entry.resolve(all.slice(offset, offset + entry.count));
          offset += entry.count;
        }
      },
      (error: unknown) => {
        for (const entry of batch.entries) entry.reject(error);
      },
    );
  }
}
