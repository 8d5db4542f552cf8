import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom } from '../random.ts';
import type { ModelDefinition } from './model.ts';
import { initialiseLayerLikePyTorch } from './pytorch-init.ts';
import { resnet20Facts, resnet20Layers } from './resnet20-architecture.ts';

type SymbolicTensor = tfl.SymbolicTensor;

/** Applies a layer built for one input to one symbolic tensor. */
function apply(layer: tfl.layers.Layer, input: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
  return layer.apply(input) as SymbolicTensor;
}

/**
 * The CIFAR ResNet-20 of He et al. 2016, built from the sizes in resnet20-architecture.ts, from
 * standard tfjs-layers layers only, so its model zip loads in stock TensorFlow.js as it is.
 *
 * A stride-2 convolution pads one pixel on every side as PyTorch does ('same' would pad only the
 * bottom and right of an even-sized image), so its outputs stay centred on the pixels the shortcut
 * keeps. The option-A shortcut is an average pool of one pixel with stride 2 (every second pixel)
 * and a zero padding of the channel axis, which tfjs-layers only pads as a spatial axis: the
 * channels are swapped with the columns for it and back.
 */
export const resnet20: ModelDefinition = {
  ...resnet20Facts,
  build({ height, width, channels }, classes, seed) {
    const { stem, stages, blocksPerStage, kernelSize, batchNormMomentum, batchNormEpsilon } = resnet20Layers;
    const convolution = (x: SymbolicTensor, filters: number, stride: 1 | 2) => {
      const padded = stride === 1 ? x : apply(tfl.layers.zeroPadding2d({ padding: 1 }), x);
      return apply(
        tfl.layers.conv2d({
          filters,
          kernelSize,
          strides: stride,
          padding: stride === 1 ? 'same' : 'valid',
          useBias: false,
          // Drawn again below; tfjs's own draw would be wasted work.
          kernelInitializer: 'zeros',
        }),
        padded,
      );
    };
    const batchNorm = (x: SymbolicTensor) =>
      apply(tfl.layers.batchNormalization({ momentum: batchNormMomentum, epsilon: batchNormEpsilon }), x);
    const relu = (x: SymbolicTensor) => apply(tfl.layers.reLU(), x);
    const shortcut = (x: SymbolicTensor, filters: number, stride: 1 | 2) => {
      const depth = x.shape[3] as number;
      if (stride === 1 && depth === filters) return x;
      const subsampled = apply(tfl.layers.averagePooling2d({ poolSize: 1, strides: stride, padding: 'same' }), x);
      const extra = filters - depth;
      const columnsAreChannels = apply(tfl.layers.permute({ dims: [1, 3, 2] }), subsampled);
      const widened = apply(
        tfl.layers.zeroPadding2d({
          padding: [
            [0, 0],
            [Math.floor(extra / 2), Math.ceil(extra / 2)],
          ],
        }),
        columnsAreChannels,
      );
      return apply(tfl.layers.permute({ dims: [1, 3, 2] }), widened);
    };

    const input = tfl.input({ shape: [height, width, channels] });
    let x = relu(batchNorm(convolution(input, stem, 1)));
    stages.forEach((filters, stage) => {
      for (let block = 0; block < blocksPerStage; block++) {
        const stride = stage > 0 && block === 0 ? 2 : 1;
        const residual = batchNorm(convolution(relu(batchNorm(convolution(x, filters, stride))), filters, 1));
        x = relu(apply(tfl.layers.add(), [residual, shortcut(x, filters, stride)]));
      }
    });
    const pooled = apply(tfl.layers.globalAveragePooling2d({}), x);
    const logits = apply(tfl.layers.dense({ units: classes, kernelInitializer: 'zeros' }), pooled);
    const model = tfl.model({ name: 'resnet20', inputs: input, outputs: logits });
    initialise(model, seed);
    return model;
  },
  topStart(model) {
    // The last stage: from its first convolution, the first layer of that stage's width.
    const widest = resnet20Layers.stages.at(-1);
    return model.layers.findIndex(
      (layer) => layer.getClassName() === 'Conv2D' && layer.getConfig()['filters'] === widest,
    );
  },
};

/**
 * torchvision's ResNet initialisation: convolutions kaiming-normal with fan-out for ReLU
 * (N(0, 2/fanOut)), BatchNorm's scale 1 and offset 0 (tfjs's defaults), the dense layer
 * PyTorch's default. Drawn from the job's seed in layer order.
 */
function initialise(model: tfl.LayersModel, seed: number): void {
  const random = new SeededRandom(seed);
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className === 'Dense') initialiseLayerLikePyTorch(layer, random);
    if (className !== 'Conv2D') continue;
    const [kernel] = layer.getWeights();
    if (!kernel) continue;
    const [rows, columns, , filters] = kernel.shape as [number, number, number, number];
    const deviation = Math.sqrt(2 / (rows * columns * filters));
    const values = new Float32Array(kernel.size);
    for (let i = 0; i < values.length; i++) values[i] = deviation * standardNormal(random);
    const fresh = tf.tensor(values, kernel.shape);
    layer.setWeights([fresh]);
    fresh.dispose();
  }
}

/** One N(0, 1) draw (Box–Muller). */
function standardNormal(random: SeededRandom): number {
  const u = 1 - random.next(); // in (0, 1], so the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}
