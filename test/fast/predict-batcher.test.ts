import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxBatchImages, PredictBatcher, type ModelCall } from '../../src/api/predict-batcher.ts';

/** A model whose output row for an image is [its first pixel]; it records each call's images and whether calls overlapped. */
function recordingModel(callMs = 0) {
  const calls: number[][] = [];
  let running = 0;
  let overlapped = false;
  const call: ModelCall = async (pixels, count) => {
    running++;
    if (running > 1) overlapped = true;
    calls.push([...pixels]);
    await new Promise((resolve) => setTimeout(resolve, callMs));
    running--;
    return Array.from({ length: count }, (_, index) => [pixels[index] as number]);
  };
  return { call, calls, overlapped: () => overlapped };
}

const image = (value: number) => Uint8Array.of(value);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PredictBatcher', () => {
  it('off (0 ms): one model call per request, never two at once', async () => {
    const model = recordingModel(5);
    const batcher = new PredictBatcher(0);
    const rows = await Promise.all([1, 2, 3].map((value) => batcher.track('job', () => batcher.classify('job', image(value), 1, model.call))));
    assert.deepEqual(rows, [[[1]], [[2]], [[3]]]);
    assert.deepEqual(model.calls, [[1], [2], [3]]);
    assert.equal(model.overlapped(), false);
  });

  it('joins requests in flight together into one call and gives each its own rows, in order', async () => {
    const model = recordingModel();
    const batcher = new PredictBatcher(10_000);
    // Three requests whose images are ready at different times, one with two images.
    const ready = [0, 5, 10];
    const pixels = [Uint8Array.of(1), Uint8Array.of(2, 3), Uint8Array.of(4)];
    const started = Date.now();
    const rows = await Promise.all(
      ready.map((delay, index) =>
        batcher.track('job', async () => {
          await sleep(delay);
          const mine = pixels[index] as Uint8Array;
          return batcher.classify('job', mine, mine.length, model.call);
        }),
      ),
    );
    assert.deepEqual(rows, [[[1]], [[2], [3]], [[4]]]);
    assert.deepEqual(model.calls, [[1, 2, 3, 4]], 'one model call for all three');
    assert.ok(Date.now() - started < 1000, 'the batch went once every request in flight had joined, not after the wait');
  });

  it('a lone request does not wait; one whose partner is slow waits only the bound', async () => {
    const model = recordingModel();
    const batcher = new PredictBatcher(50);
    let started = Date.now();
    await batcher.track('job', () => batcher.classify('job', image(1), 1, model.call));
    assert.ok(Date.now() - started < 40, 'a lone request waited for nobody');
    started = Date.now();
    const slow = batcher.track('job', async () => {
      await sleep(300);
      return batcher.classify('job', image(2), 1, model.call);
    });
    const quick = await batcher.track('job', () => batcher.classify('job', image(3), 1, model.call));
    const waited = Date.now() - started;
    assert.deepEqual(quick, [[3]]);
    assert.ok(waited >= 45 && waited < 250, `the quick request waited ${waited} ms, not about 50`);
    assert.deepEqual(await slow, [[2]]);
    assert.deepEqual(model.calls, [[1], [3], [2]]);
  });

  it('keeps models apart, caps a batch at maxBatchImages, and fails every request of a failed call', async () => {
    const model = recordingModel();
    const batcher = new PredictBatcher(10_000);
    const many = Array.from({ length: maxBatchImages + 1 }, (_, index) => batcher.track('a', () => batcher.classify('a', image(index), 1, model.call)));
    const other = batcher.track('b', () => batcher.classify('b', image(200), 1, model.call));
    await Promise.all([...many, other]);
    assert.deepEqual(model.calls.map((call) => call.length).sort((x, y) => x - y), [1, 1, maxBatchImages]);
    const failing: ModelCall = async () => {
      throw new Error('the model broke');
    };
    const both = [1, 2].map((value) => batcher.track('c', () => batcher.classify('c', image(value), 1, failing)));
    for (const result of both) await assert.rejects(result, /the model broke/);
  });
});
