/**
 * What the running backend computes on, and the checks a GPU needs that TF.js doesn't make: it
 * never looks at WebGPU's errors, so a kernel the device rejected (a tensor past its buffer
 * limit, a lost device) leaves garbage in its output and training goes on as if nothing happened.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { DeviceDescription } from '../contract/device.ts';
import { WEBGPU_BACKEND, webgpuDevice } from './webgpu/start.ts';

/** A device error: its kernels' results can't be trusted from here on. */
class DeviceError extends Error {
  override readonly name = 'DeviceError';
}

/** The GPU adapter the webgpu backend runs on, or this host's CPU for every other backend. */
export function backendDevice(): DeviceDescription {
  const gpu = currentGpu();
  if (gpu) return gpu.description;
  const model = os.cpus()[0]?.model.trim();
  return { kind: 'cpu', name: model || os.arch(), vendor: null, architecture: os.arch(), fallback: false };
}

/** Throws when the GPU reported an error since it started. */
export function assertDeviceHealthy(): void {
  const first = currentGpu()?.errors[0];
  if (first !== undefined)
    throw new DeviceError(`the GPU reported an error, so its results can't be trusted: ${first}`);
}

/**
 * Throws when one of the model's tensors in training at `batchSize` can't be computed on the GPU:
 * WebGPU binds a tensor as one storage buffer, and one past the device's limit is never computed.
 */
export function assertModelFitsDevice(model: tfl.LayersModel, batchSize: number): void {
  const gpu = currentGpu();
  if (!gpu) return;
  const largest = largestTensor(model, batchSize);
  if (largest.bytes <= gpu.maxBindingBytes) return;
  throw new DeviceError(
    `${largest.what} needs ${mib(largest.bytes)} in one buffer, more than this GPU binds ` +
      `(${mib(gpu.maxBindingBytes)} on ${gpu.description.name}): ${largest.remedy}, or train with TRAINER_BACKEND=wasm`,
  );
}

/** The largest float32 tensor training holds: a weight (its gradient and momentum are as large) or a layer's output at `batchSize`. */
export function largestTensor(
  model: tfl.LayersModel,
  batchSize: number,
): { bytes: number; what: string; remedy: string } {
  const elements = (shape: readonly (number | null)[]) =>
    shape.reduce<number>((product, size) => product * (size ?? 1), 1);
  let largest = { bytes: 0, what: 'no tensor', remedy: '' };
  for (const weight of model.weights) {
    const bytes = 4 * elements(weight.shape);
    if (bytes > largest.bytes)
      largest = {
        bytes,
        what: `the weight ${weight.originalName} [${weight.shape.join('×')}]`,
        remedy: 'it needs a GPU with larger buffers',
      };
  }
  for (const layer of model.layers) {
    const shape = layer.outputShape;
    // A layer with several outputs has none of the models here.
    if (!Array.isArray(shape) || Array.isArray(shape[0])) continue;
    const bytes = 4 * batchSize * elements((shape as (number | null)[]).slice(1));
    if (bytes > largest.bytes)
      largest = {
        bytes,
        what: `the output of layer ${layer.name} at batchSize ${batchSize}`,
        remedy: 'use a smaller batchSize',
      };
  }
  return largest;
}

function currentGpu() {
  return tf.getBackend() === WEBGPU_BACKEND ? webgpuDevice() : null;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}
