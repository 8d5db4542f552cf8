/**
 * Runs the API's model calls one at a time, with a turn of the event loop between two. A model
 * call holds the event loop (TensorFlow.js computes on it); without this, the calls of a burst of
 * predictions whose images became ready together ran back to back, and every other request
 * (GET /health, GET /jobs) waited for all of them. Now it waits for one at most.
 *
 * Dynamic batching (joining concurrent predictions for one model into one call, bounded by a few
 * ms of waiting) was tried here and measured: see
 * docs/performance.md#predictions-under-load-npm-run-bench------predict-load.
 */
export class ModelCallQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** `call` once the calls queued before it are done and the event loop has had a turn. */
  inTurn<T>(call: () => Promise<T>): Promise<T> {
    const run = this.tail.then(() => new Promise((resolve) => setImmediate(resolve))).then(call);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
