/**
 * What GreaterEqual and LessEqual share: a float32 tensor compared with one float32 value, the form
 * of tfjs-core's clipByValue gradient (`x >= min`, `x <= max`), through which every ReLU6 of
 * MobileNetV2 trains. The built-in kernels are slow there (docs/performance.md); the SIMD
 * comparisons of simd/convolutions.c write 16 bool bytes a step. Any other form goes to the
 * built-in kernel.
 */
import { util, type BinaryInputs, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { convolutionKernels, type ConvolutionKernels, type ValueComparison } from './convolution-module.ts';
import { heapOffset, type KernelOverride } from './kernel-calls.ts';

export function valueComparisonOverride(
  kernelName: string,
  pick: (kernels: ConvolutionKernels) => ValueComparison,
): KernelOverride {
  return {
    kernelName,
    wrap:
      (builtIn): KernelFunc =>
      (args) => {
        const { a, b } = args.inputs as BinaryInputs;
        const backend = args.backend as BackendWasm;
        if (a === undefined || b === undefined || a.dtype !== 'float32' || b.dtype !== 'float32') return builtIn(args);
        const count = util.sizeFromShape(a.shape);
        // b one value, of a rank that doesn't add axes to a's shape.
        if (util.sizeFromShape(b.shape) !== 1 || b.shape.length > a.shape.length || count === 0) return builtIn(args);
        const kernels = convolutionKernels(backend);
        if (kernels === undefined) return builtIn(args);
        const value = (backend.typedArrayFromHeap(b) as Float32Array)[0] ?? NaN;
        const out = backend.makeOutput(a.shape, 'bool');
        const at = (t: TensorInfo) => heapOffset(backend, t, kernelName);
        pick(kernels)(at(a), value, at(out), count);
        return out;
      },
  };
}
