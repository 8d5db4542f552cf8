/**
 * Cast override for a cast to the dtype the tensor already has, which tfjs-core's ops ask for
 * (tf.moments casts x to float32 for every BatchNorm in training) and the built-in kernel answers
 * with a copy: the buffer is shared instead, as Identity does (./Identity.ts). Real conversions go
 * to the built-in kernel.
 */
import { Cast, type CastAttrs, type CastInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { KernelOverride } from '../kernel-calls.ts';

export const castOverride: KernelOverride = {
  kernelName: Cast,
  wrap: (builtIn) => (args) => {
    const { x } = args.inputs as CastInputs;
    const { dtype } = args.attrs as unknown as CastAttrs;
    if (x === undefined || x.dtype !== dtype || x.dtype === 'string') return builtIn(args);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};
