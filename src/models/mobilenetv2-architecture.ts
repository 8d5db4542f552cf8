import type { ModelFacts } from './model.ts';
import { denseParameters } from './parameter-count.ts';

/**
 * MobileNetV2 at width 1.0 as Keras builds it (Sandler et al. 2018, `keras.applications.MobileNetV2`),
 * the one place its layer sizes are written: mobilenetv2.ts builds the network from them, and its
 * facts here count its parameters from them.
 */
export const mobilenetv2Layers = {
  /** The first convolution: 3x3, stride 2, then BatchNorm and ReLU6. */
  stem: { filters: 32, kernelSize: 3, stride: 2 },
  /**
   * The inverted-residual stages, 17 blocks in all: each block a 1x1 expansion to `expansion`
   * times its input channels (none where that is 1), a 3x3 depthwise convolution (stride `stride`
   * in a stage's first block, else 1), and a linear 1x1 projection to `filters`, each followed by
   * BatchNorm, the first two by ReLU6; the block's input is added where the shapes match.
   */
  stages: [
    { expansion: 1, filters: 16, blocks: 1, stride: 1 },
    { expansion: 6, filters: 24, blocks: 2, stride: 2 },
    { expansion: 6, filters: 32, blocks: 3, stride: 2 },
    { expansion: 6, filters: 64, blocks: 4, stride: 2 },
    { expansion: 6, filters: 96, blocks: 3, stride: 1 },
    { expansion: 6, filters: 160, blocks: 3, stride: 2 },
    { expansion: 6, filters: 320, blocks: 1, stride: 1 },
  ],
  depthwiseKernelSize: 3,
  /** The last 1x1 convolution, then BatchNorm, ReLU6, global average pooling and the dense layer of one logit per class. */
  headFilters: 1280,
  /** ReLU6: min(max(x, 0), 6). */
  reluMax: 6,
  /**
   * Keras's epsilon. Keras's momentum for the moving statistics, 0.999, needs thousands of steps
   * to forget their start (mean 0, variance 1), so a short job from scratch would evaluate on
   * statistics that are mostly that start and predict far worse than it trained; 0.9 is PyTorch's
   * default (its momentum 0.1), which torchvision trains MobileNetV2 with.
   */
  batchNorm: { epsilon: 1e-3, momentum: 0.9 },
} as const;

/** A convolution without bias (every one here: BatchNorm follows) and its BatchNorm's scale and offset. */
function convolutionWithBatchNorm(inputChannels: number, filters: number, kernelSize: number): number {
  return kernelSize * kernelSize * inputChannels * filters + 2 * filters;
}

/**
 * Trainable parameters: 2,236,682 on CIFAR-10, 3,504,872 with ImageNet's 1,000 classes (Keras's
 * 3,538,984 also counts BatchNorm's 34,112 moving statistics, which are not trained).
 */
export const mobilenetv2Facts: ModelFacts = {
  name: 'mobilenetv2',
  description:
    'MobileNetV2 (width 1.0, Keras topology): conv 32 stride 2, 17 inverted-residual blocks (expansion 6, depthwise 3x3, linear bottlenecks, BatchNorm, ReLU6), conv 1280, global average pooling, classes',
  defaultWeightDecay: 4e-5,
  // No recipe of its own has been measured here yet (issue 24's `auto` is to choose one): the notebook's.
  recipe: { learningRate: 0.01, batchSize: 64, learningRateSchedule: null },
  parameterCount({ channels }, classes) {
    const { stem, stages, depthwiseKernelSize, headFilters } = mobilenetv2Layers;
    let count = convolutionWithBatchNorm(channels, stem.filters, stem.kernelSize);
    let depth: number = stem.filters;
    for (const { expansion, filters, blocks } of stages) {
      for (let block = 0; block < blocks; block++) {
        const expanded = depth * expansion;
        if (expansion !== 1) count += convolutionWithBatchNorm(depth, expanded, 1);
        count += depthwiseKernelSize * depthwiseKernelSize * expanded + 2 * expanded;
        count += convolutionWithBatchNorm(expanded, filters, 1);
        depth = filters;
      }
    }
    count += convolutionWithBatchNorm(depth, headFilters, 1);
    return count + denseParameters(headFilters, classes);
  },
};
