/** Identity override: shares the tensor's buffer where the built-in wasm kernel copies it. */
import { Identity, type IdentityInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelOverride } from '../kernel-calls.ts';

/**
 * Identity: while the tape records, the engine keeps what each kernel's gradient needs by running Identity
 * on it, and the built-in wasm kernel copies the whole tensor (AlexNet: its 150 MB dense weights every step).
 * Tensors are immutable, so sharing the buffer, as the cpu backend and the wasm Reshape kernel do, is enough.
 */
export const identityOverride: KernelOverride = {
  kernelName: Identity,
  wrap: (builtIn) => (args) => {
    const { x } = args.inputs as IdentityInputs;
    if (x === undefined || x.dtype === 'string') return builtIn(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};
