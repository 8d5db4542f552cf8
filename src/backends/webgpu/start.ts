import * as tf from '@tensorflow/tfjs-core';
import { openDevice, type DeviceRequest, type OpenedDevice } from './device.ts';

export const WEBGPU_BACKEND = 'webgpu';

let started: OpenedDevice | null = null;

/**
 * Registers TensorFlow.js's webgpu backend on a device we opened (see device.ts) and returns the
 * device. tfjs-backend-webgpu registers a backend of its own on import when `navigator.gpu`
 * exists, on an adapter it picks itself: importing it first, and only then giving Node a
 * `navigator.gpu` (which its backend's constructor asks for), leaves that registration out.
 */
export async function startWebGpu(request: DeviceRequest): Promise<OpenedDevice> {
  // One Dawn instance and device per process, as TensorFlow.js has one backend per process.
  if (started) return started;
  const opened = await openDevice(request);
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  // Node 20 has no navigator; from Node 21 on it has one whose properties are read-only.
  if (typeof globalThis.navigator === 'undefined')
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(globalThis.navigator, 'gpu', { value: opened.gpu, configurable: true });
  tf.registerBackend(WEBGPU_BACKEND, () => new WebGPUBackend(opened.device, opened.adapter.info));
  // Small tensors would otherwise be computed on the CPU and copied over: every op on the GPU is faster
  // (and repeatable across batch sizes).
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  // No kernels of our own: tfjs-backend-webgpu has every one training needs (the wasm ones make up
  // for what XNNPACK lacks or does slowly).
  started = opened;
  return opened;
}

/** The device the webgpu backend was started on, or null. */
export function webgpuDevice(): OpenedDevice | null {
  return started;
}

/** Lets the process exit: Node stays alive while `navigator.gpu` holds Dawn's instance. */
export function stopWebGpu(): void {
  started?.device.destroy();
  started = null;
  if (typeof globalThis.navigator !== 'undefined') Reflect.deleteProperty(globalThis.navigator, 'gpu');
}
