import type { ModelFacts } from './model.ts';
import { convolutionParameters, denseParameters } from './parameter-count.ts';

/**
 * The CIFAR ResNet-20 of He et al. 2016 (section 4.2), the one place its sizes are written:
 * resnet20.ts builds the network from them, and its facts here count its parameters from them.
 *
 * Its shortcuts are the paper's option A, which it used on CIFAR-10: the identity, and where a stage
 * halves the image and doubles the channels, every second pixel with the new channels zero. Option B
 * (a 1x1 convolution and BatchNorm) would add 2,752 parameters for nothing the paper measured there.
 */
export const resnet20Layers = {
  /** The first convolution's filters, before the stages. */
  stem: 16,
  /** Each stage's filters; every stage after the first starts with a stride-2 block. */
  stages: [16, 32, 64],
  /** Basic blocks (two 3x3 convolutions, each with BatchNorm) per stage: 6·3 + 2 = 20 layers. */
  blocksPerStage: 3,
  kernelSize: 3,
  /** PyTorch's BatchNorm2d defaults: the moving statistics keep 0.9 of themselves at each batch. */
  batchNormMomentum: 0.9,
  batchNormEpsilon: 1e-5,
} as const;

/** A bias-free convolution and its BatchNorm's scale and offset per filter. */
function convolutionWithBatchNorm(inputChannels: number, filters: number, kernelSize: number): number {
  return convolutionParameters(inputChannels, filters, kernelSize) - filters + 2 * filters;
}

/**
 * 269,722 parameters on CIFAR-10 (the paper's "0.27M"), 269,434 on MNIST. The BatchNorm layers'
 * moving means and variances (1,376 values) are weights that don't train, so they aren't counted.
 */
export const resnet20Facts: ModelFacts = {
  name: 'resnet20',
  description:
    'ResNet-20 (He et al. 2016, CIFAR): conv 16@3x3, 3 stages of 3 basic blocks (16, 32, 64 filters; stride 2 and zero-padded identity shortcuts between stages), BatchNorm after each conv, global avg-pool, classes',
  // The paper's recipe: SGD with momentum 0.9 (every model's default), weight decay 1e-4, batches of
  // 128 at 0.1. Its divisions by 10 at 50% and 75% of 64k steps become a cosine over the job's
  // epochs, since those are the user's choice, down to the paper's last rate, 0.001: the schedule
  // reaches its minimum in the last epoch, which at 0 would train nothing.
  defaultWeightDecay: 1e-4,
  recipe: {
    learningRate: 0.1,
    batchSize: 128,
    learningRateSchedule: { type: 'cosine', warmupEpochs: 0, minLearningRate: 0.001 },
  },
  parameterCount({ channels }, classes) {
    const { stem, stages, blocksPerStage, kernelSize } = resnet20Layers;
    let count = convolutionWithBatchNorm(channels, stem, kernelSize);
    let depth: number = stem;
    for (const filters of stages) {
      for (let block = 0; block < blocksPerStage; block++) {
        count += convolutionWithBatchNorm(depth, filters, kernelSize);
        count += convolutionWithBatchNorm(filters, filters, kernelSize);
        depth = filters;
      }
    }
    return count + denseParameters(depth, classes);
  },
};
