/**
 * Add override for a layer's bias: x of any rank plus a vector as long as x's last axis. The
 * built-in kernel broadcasts through a general index loop, per element; add_bias of
 * simd/convolutions.c walks the rows. Every other addition goes to the built-in kernel.
 */
import { Add, util, type BinaryInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels } from '../convolution-module.ts';
import { heapOffset, type KernelOverride } from '../kernel-calls.ts';

export const addOverride: KernelOverride = {
  kernelName: Add,
  wrap: (builtIn) => (args) => {
    const { a, b } = args.inputs as BinaryInputs;
    const backend = args.backend as BackendWasm;
    if (a === undefined || b === undefined || a.dtype !== 'float32' || b.dtype !== 'float32') return builtIn(args);
    const channels = a.shape[a.shape.length - 1];
    if (a.shape.length < 2 || b.shape.length !== 1 || b.shape[0] !== channels || channels === undefined)
      return builtIn(args);
    const kernels = convolutionKernels(backend);
    if (kernels === undefined) return builtIn(args);
    const y = backend.makeOutput(a.shape, 'float32');
    const at = (t: typeof y) => heapOffset(backend, t, Add);
    kernels.add_bias(at(a), at(b), at(y), util.sizeFromShape(a.shape) / channels, channels);
    return y;
  },
};
