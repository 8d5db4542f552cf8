/**
 * A WebGPU device for TensorFlow.js through Dawn's Node binding (the `webgpu` package).
 *
 * We open the adapter and device ourselves instead of letting tfjs-backend-webgpu do it on
 * import: that way the adapter can be chosen (Dawn's `adapter=` option, one worker per GPU), a
 * software adapter can be refused, and the device's errors are heard. TF.js never looks at
 * WebGPU validation errors, so a dispatch the device rejects leaves its output unwritten and
 * training goes on with garbage; the device's `uncapturederror` events are kept here for the
 * trainer to check.
 */
import type { DeviceDescription } from '../../contract/device.ts';

export class NoAdapterError extends Error {
  override readonly name = 'NoAdapterError';
}

export interface DeviceRequest {
  /** A part of the adapter's name (Dawn's `adapter=` toggle), to pick one of several GPUs. */
  readonly adapterName?: string | undefined;
  /** Whether a software adapter (SwiftShader) will do: only when webgpu was asked for by name. */
  readonly allowFallback: boolean;
  /** The largest buffer to ask the device for (WEBGPU_MAX_BUFFER_MIB); unset: all the adapter offers. */
  readonly maxBufferBytes?: number | undefined;
}

export interface OpenedDevice {
  readonly gpu: GPU;
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  readonly description: DeviceDescription;
  /** The largest buffer one kernel may bind: a bigger tensor can't be computed on this device. */
  readonly maxBindingBytes: number;
  /** The errors the device reported since it opened, oldest first. */
  readonly errors: readonly string[];
}

/** What Vulkan-based adapters need that a CPU-only host or a container often lacks. */
const noAdapterHint =
  'WebGPU needs a GPU driver that speaks Vulkan and the loader libvulkan.so.1 (Debian: libvulkan1); ' +
  'in a container, NVIDIA_DRIVER_CAPABILITIES must include graphics';

interface FoundAdapter {
  readonly gpu: GPU;
  readonly adapter: GPUAdapter;
  readonly description: DeviceDescription;
}

/** Dawn's instance and the adapter `request` asks for; a NoAdapterError saying why when there is none. */
export async function findAdapter(request: DeviceRequest): Promise<FoundAdapter> {
  const { create, globals } = await import('webgpu');
  // tfjs-backend-webgpu names GPUBufferUsage and the like as globals, as in a browser.
  Object.assign(globalThis, globals);
  const gpu = create(request.adapterName === undefined ? [] : [`adapter=${request.adapterName}`]);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (error) {
    // Dawn lists the adapters it found when none matches `adapter=`.
    const message = error instanceof Error ? error.message.replaceAll('\n', ' ').replace(/\s+/g, ' ') : String(error);
    throw new NoAdapterError(`no WebGPU adapter matches WEBGPU_ADAPTER=${request.adapterName ?? ''}: ${message}`);
  }
  if (!adapter) throw new NoAdapterError(`no WebGPU adapter found: ${noAdapterHint}`);
  const description = describe(adapter.info);
  if (description.fallback && !request.allowFallback) {
    throw new NoAdapterError(
      `the only WebGPU adapter is a software one (${description.name}), slower than the CPU backends; ` +
        `TRAINER_BACKEND=webgpu uses it anyway. ${noAdapterHint}`,
    );
  }
  return { gpu, adapter, description };
}

export async function openDevice(request: DeviceRequest): Promise<OpenedDevice> {
  const { gpu, adapter, description } = await findAdapter(request);
  const { limits } = adapter;
  const cap = request.maxBufferBytes ?? Number.POSITIVE_INFINITY;
  const device = await adapter.requestDevice({
    requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
    // The defaults (128 MiB bindings) are too small for AlexNet's first dense layer (144 MiB): ask for all there is.
    requiredLimits: {
      maxStorageBufferBindingSize: Math.min(limits.maxStorageBufferBindingSize, cap),
      maxBufferSize: Math.min(limits.maxBufferSize, cap),
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  const errors: string[] = [];
  device.addEventListener('uncapturederror', (event) =>
    errors.push(firstLine((event as GPUUncapturedErrorEvent).error.message)),
  );
  void device.lost.then((lost) => {
    if (lost.reason !== 'destroyed') errors.push(`the GPU device was lost: ${lost.message}`);
  });
  return {
    gpu,
    adapter,
    device,
    description,
    maxBindingBytes: Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize, cap),
    errors,
  };
}

function describe(info: GPUAdapterInfo): DeviceDescription {
  const name = [info.description, info.device].find((part) => part !== '') ?? 'unknown adapter';
  return {
    kind: 'gpu',
    name,
    vendor: info.vendor || null,
    architecture: info.architecture || null,
    fallback: info.isFallbackAdapter,
  };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
