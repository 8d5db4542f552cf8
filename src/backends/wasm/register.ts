/**
 * Everything this service adds to `@tensorflow/tfjs-backend-wasm` 4.22, one kernel per file in
 * kernels/, named after the kernel, as tfjs-backend-wasm lays out its own:
 * - kernels training needs that the backend does not ship, and the training loss op's (`kernelConfigs`);
 * - faster replacements for built-in kernels that training or inference is slowest in
 *   (`kernelOverrides`), each keeping the built-in kernel as its fallback for the cases it doesn't
 *   speed up.
 */
import { getKernel, registerKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { installOverride, type KernelOverride } from './kernel-calls.ts';
import { addOverride } from './kernels/Add.ts';
import { batchMatMulOverride } from './kernels/BatchMatMul.ts';
import { castOverride } from './kernels/Cast.ts';
import { conv2DOverride } from './kernels/Conv2D.ts';
import { conv2DBackpropFilterConfig } from './kernels/Conv2DBackpropFilter.ts';
import { conv2DBackpropInputOverride } from './kernels/Conv2DBackpropInput.ts';
import { depthwiseConv2dNativeOverride } from './kernels/DepthwiseConv2dNative.ts';
import { depthwiseConv2dNativeBackpropFilterConfig } from './kernels/DepthwiseConv2dNativeBackpropFilter.ts';
import { depthwiseConv2dNativeBackpropInputConfig } from './kernels/DepthwiseConv2dNativeBackpropInput.ts';
import { fusedBatchNormOverride } from './kernels/FusedBatchNorm.ts';
import { greaterEqualOverride } from './kernels/GreaterEqual.ts';
import { identityOverride } from './kernels/Identity.ts';
import { lessEqualOverride } from './kernels/LessEqual.ts';
import { logicalAndOverride } from './kernels/LogicalAnd.ts';
import { maxPoolGradOverride } from './kernels/MaxPoolGrad.ts';
import { meanOverride } from './kernels/Mean.ts';
import { selectOverride } from './kernels/Select.ts';
import { sumOverride } from './kernels/Sum.ts';
import { sparseSoftmaxCrossEntropyMeanConfig } from './kernels/SparseSoftmaxCrossEntropyMean.ts';
import { sparseSoftmaxCrossEntropyMeanGradConfig } from './kernels/SparseSoftmaxCrossEntropyMeanGrad.ts';
import { tileOverride } from './kernels/Tile.ts';

const kernelConfigs: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
  // The training loss op (../training-ops.ts) and its gradient.
  sparseSoftmaxCrossEntropyMeanConfig,
  sparseSoftmaxCrossEntropyMeanGradConfig,
];

const kernelOverrides: readonly KernelOverride[] = [
  batchMatMulOverride,
  conv2DOverride,
  conv2DBackpropInputOverride,
  maxPoolGradOverride,
  identityOverride,
  addOverride,
  sumOverride,
  depthwiseConv2dNativeOverride,
  // MobileNetV2's BatchNorm: its forward pass, its batch statistics (with their cast to the same
  // dtype) and the Tile in its gradient.
  fusedBatchNormOverride,
  castOverride,
  meanOverride,
  tileOverride,
  // ReLU6's gradient (tfjs-core's clipByValue gradient): its two comparisons, their AND and the selection.
  greaterEqualOverride,
  lessEqualOverride,
  logicalAndOverride,
  selectOverride,
];

/**
 * Registers the missing kernels and installs the overrides for backend 'wasm'. Safe to call more
 * than once, and leaves alone any missing kernel the installed backend already provides (a newer
 * version may). Gradients are not a backend's: they are registered apart (../gradients/register.ts).
 */
export function registerWasmKernels(): void {
  for (const config of kernelConfigs) {
    if (getKernel(config.kernelName, config.backendName) === undefined) registerKernel(config);
  }
  for (const override of kernelOverrides) installOverride(override);
}
