/**
 * Calling the wasm backend's own kernels from inside another wasm kernel, and replacing one of its
 * built-in kernels while keeping the original as the fallback.
 */
import {
  getKernel,
  registerKernel,
  unregisterKernel,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export const WASM_BACKEND = 'wasm';

/** Any kernel's attrs interface: they lack NamedAttrMap's index signature, though every value fits it. */
export type KernelAttrs = object;

/** Runs a kernel function (usually a registered wasm kernel's) directly; its one output belongs to the caller. */
export function callKernel(
  kernelName: string,
  kernelFunc: KernelFunc,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs: KernelAttrs,
): TensorInfo {
  const out = kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap });
  if (Array.isArray(out)) {
    throw new Error(`Kernel '${kernelName}' returned several outputs, expected one`);
  }
  return out;
}

/** Runs the kernel registered for backend 'wasm' under that name; its output belongs to the caller. */
export function runWasmKernel(
  kernelName: string,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs: KernelAttrs,
): TensorInfo {
  const kernel = getKernel(kernelName, WASM_BACKEND);
  if (kernel === undefined) {
    throw new Error(`Kernel '${kernelName}' is not registered for backend '${WASM_BACKEND}'`);
  }
  return callKernel(kernelName, kernel.kernelFunc, backend, inputs, attrs);
}

/**
 * Runs `body` with a `run` that calls wasm kernels for intermediate results, all freed when `body`
 * returns or throws. What `body` returns goes to the engine, so it must not come from `run`.
 */
export function withTemporaries<T>(
  backend: KernelBackend,
  body: (run: (kernelName: string, inputs: NamedTensorInfoMap, attrs: KernelAttrs) => TensorInfo) => T,
): T {
  const temporaries: TensorInfo[] = [];
  try {
    return body((kernelName, inputs, attrs) => {
      const out = runWasmKernel(kernelName, backend, inputs, attrs);
      temporaries.push(out);
      return out;
    });
  } finally {
    for (const t of temporaries) backend.disposeData(t.dataId);
  }
}

/**
 * A faster version of one of the wasm backend's built-in kernels: given the built-in kernel
 * function, returns the replacement, which calls the built-in for every case it doesn't speed up.
 */
export interface KernelOverride {
  readonly kernelName: string;
  readonly wrap: (builtIn: KernelFunc) => KernelFunc;
}

/** The replacement kernel functions installed so far, so that installing twice changes nothing. */
const installed = new WeakSet<KernelFunc>();

/**
 * Puts `override` in place of the built-in wasm kernel of that name, keeping the built-in's setup
 * (the wasm backend runs it when it initialises, and the fallback needs it). Does nothing if the
 * override is already installed or there is no built-in kernel to replace.
 */
export function installOverride(override: KernelOverride): void {
  const builtIn: KernelConfig | undefined = getKernel(override.kernelName, WASM_BACKEND);
  if (builtIn === undefined || installed.has(builtIn.kernelFunc)) return;
  const kernelFunc = override.wrap(builtIn.kernelFunc);
  installed.add(kernelFunc);
  // registerKernel warns and keeps the old one if the name is taken, so the built-in goes first.
  unregisterKernel(override.kernelName, WASM_BACKEND);
  registerKernel({ ...builtIn, kernelFunc });
}

/** Where `tensor`'s values start in the wasm backend's memory, in bytes; `kernel` names the caller in the error. */
export function heapOffset(backend: BackendWasm, tensor: TensorInfo, kernel: string): number {
  const data = backend.dataIdMap.get(tensor.dataId);
  if (data === undefined) throw new Error(`${kernel}: a tensor is not on the wasm backend`);
  return data.memoryOffset;
}

/** Runs `body` with the offset of `floats` floats of working space on the wasm heap, freed when it returns or throws. */
export function withScratch<T>(backend: BackendWasm, floats: number, body: (offset: number) => T): T {
  const scratch = backend.makeOutput([floats], 'float32');
  try {
    return body(heapOffset(backend, scratch, 'scratch'));
  } finally {
    backend.disposeData(scratch.dataId);
  }
}
