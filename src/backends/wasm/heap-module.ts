/**
 * WebAssembly modules of our own that import the wasm backend's linear memory and work on tensors
 * where the backend keeps them, by byte offset: compiled once, instantiated once per memory.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * The backend's linear memory, as the Emscripten module exposes it (`asm.memory` in tfjs-backend-wasm
 * 4.22's build; newer Emscripten builds call it `wasmExports.memory` or keep `wasmMemory`), if it is
 * the memory the backend's heap views look at.
 */
function backendMemory(backend: BackendWasm): WebAssembly.Memory | undefined {
  const module = backend.wasm as unknown as {
    asm?: { memory?: unknown };
    wasmExports?: { memory?: unknown };
    wasmMemory?: unknown;
    HEAPU8?: Uint8Array;
  };
  for (const memory of [module.asm?.memory, module.wasmExports?.memory, module.wasmMemory]) {
    if (memory instanceof WebAssembly.Memory && memory.buffer === module.HEAPU8?.buffer) return memory;
  }
  return undefined;
}

export interface HeapModule<T> {
  /** The module's functions bound to `memory`, or undefined where they can't be had here. */
  on(memory: WebAssembly.Memory): T | undefined;
  /** The same on the backend's memory, found once per backend. */
  onBackend(backend: BackendWasm): T | undefined;
}

/**
 * `bytes` gives the module, `bind` picks its functions from an instance's exports (undefined if
 * they are not all there). Nothing can be had where the runtime can't compile the module (no
 * SIMD128) or the memory is shared (the modules import an unshared one).
 */
export function heapModule<T>(
  bytes: () => BufferSource,
  bind: (exports: WebAssembly.Exports) => T | undefined,
): HeapModule<T> {
  let compiled: WebAssembly.Module | null | undefined;
  const instances = new WeakMap<WebAssembly.Memory, T>();
  const backends = new WeakMap<BackendWasm, T | null>();
  const on = (memory: WebAssembly.Memory): T | undefined => {
    const known = instances.get(memory);
    if (known !== undefined) return known;
    if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) return undefined;
    if (compiled === undefined) {
      try {
        compiled = new WebAssembly.Module(bytes());
      } catch {
        compiled = null;
      }
    }
    if (compiled === null) return undefined;
    try {
      const bound = bind(new WebAssembly.Instance(compiled, { env: { memory } }).exports);
      if (bound !== undefined) instances.set(memory, bound);
      return bound;
    } catch {
      return undefined;
    }
  };
  const onBackend = (backend: BackendWasm): T | undefined => {
    let bound = backends.get(backend);
    if (bound === undefined) {
      const memory = backendMemory(backend);
      bound = (memory && on(memory)) ?? null;
      backends.set(backend, bound);
    }
    return bound ?? undefined;
  };
  return { on, onBackend };
}
