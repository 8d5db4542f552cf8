/**
 * Tile override. The built-in kernel computes every output value's source index on its own; the
 * gradient of a BatchNorm in training (tfjs-core's FusedBatchNorm gradient) tiles a [1, 1, 1, C]
 * factor to the whole activation for every layer, which made Tile half of a MobileNetV2 training
 * step on wasm (docs/performance.md). Ours copies memory instead: x's contiguous runs into place,
 * then each axis's first repetition copied over the next ones, doubling, with the heap's
 * copyWithin (a memmove). Even runs of one value measured faster than the built-in kernel, so ours
 * takes float32, int32 and bool alike; strings and complex numbers go to the built-in kernel.
 */
import { Tile, util, type TileAttrs, type TileInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffset, type KernelOverride } from '../kernel-calls.ts';

/** Copies the `block` bytes at `at` into the `times − 1` blocks after it, doubling the copied span each time. */
function repeat(heap: Uint8Array, at: number, block: number, times: number): void {
  for (let done = 1; done < times;) {
    const count = Math.min(done, times - done);
    heap.copyWithin(at + done * block, at, at + count * block);
    done += count;
  }
}

export const tileOverride: KernelOverride = {
  kernelName: Tile,
  wrap: (builtIn) => (args) => {
    const { x } = args.inputs as TileInputs;
    const { reps } = args.attrs as unknown as TileAttrs;
    const backend = args.backend as BackendWasm;
    if (x === undefined || !['float32', 'int32', 'bool'].includes(x.dtype)) return builtIn(args);
    const shape = x.shape;
    const rank = shape.length;
    const outShape = shape.map((extent, axis) => extent * (reps[axis] ?? 1));
    const outSize = util.sizeFromShape(outShape);
    if (outSize === 0 || reps.length !== rank) return builtIn(args);
    // Below the deepest repeated axis, x's values for one index above lie as the output's do: one run.
    let deepest = rank - 1;
    while (deepest >= 0 && reps[deepest] === 1) deepest--;
    const bytes = util.bytesPerElement(x.dtype);
    const run = bytes * util.sizeFromShape(shape.slice(deepest + 1));
    const inStride = shape.map((_, axis) => bytes * util.sizeFromShape(shape.slice(axis + 1)));
    const outStride = outShape.map((_, axis) => bytes * util.sizeFromShape(outShape.slice(axis + 1)));
    const out = backend.makeOutput(outShape, x.dtype);
    // After makeOutput, which may grow the memory and so replace its buffer.
    const heap = new Uint8Array(backend.typedArrayFromHeap(out).buffer);
    const fill = (axis: number, from: number, to: number): void => {
      if (axis > deepest) {
        heap.copyWithin(to, from, from + run);
        return;
      }
      const extent = shape[axis] ?? 1;
      const inStep = inStride[axis] ?? bytes;
      const outStep = outStride[axis] ?? bytes;
      for (let i = 0; i < extent; i++) fill(axis + 1, from + i * inStep, to + i * outStep);
      repeat(heap, to, extent * outStep, reps[axis] ?? 1);
    };
    fill(0, heapOffset(backend, x, Tile), heapOffset(backend, out, Tile));
    return out;
  },
};
