import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom } from '../random.ts';
import { mobilenetv2Facts, mobilenetv2Layers } from './mobilenetv2-architecture.ts';
import { ImageInput } from './image-input.ts';
import type { ModelDefinition } from './model.ts';

/** Where trainLayers `top` starts: blocks 11-16 (the 160- and 320-channel stages), as the ImageNet base ends before them. */
const topFirstLayer = 'block_11_expand';

/**
 * Kernels drawn as torchvision's MobileNetV2 draws them, with our seeded generator: convolutions
 * (depthwise too) He-uniform over their fan-out, which keeps the variance of kaiming_normal_(mode=
 * 'fan_out'); the dense layer with standard deviation 0.01. BatchNorm keeps its start (scale 1,
 * offset 0, moving mean 0 and variance 1), which initialiseLikePyTorch would overwrite.
 */
function initialiseMobileNetV2(model: tfl.LayersModel, seed: number): void {
  const random = new SeededRandom(seed);
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className !== 'Conv2D' && className !== 'DepthwiseConv2D' && className !== 'Dense') continue;
    const [kernel, ...rest] = layer.getWeights();
    if (!kernel) continue;
    const shape = kernel.shape;
    // [kh, kw, in, out] or a depthwise [kh, kw, in, multiplier]: each input reaches kh·kw·out outputs.
    const fanOut = className === 'Dense' ? 0 : (shape[0] ?? 1) * (shape[1] ?? 1) * (shape[3] ?? 1);
    const bound = className === 'Dense' ? 0.01 * Math.sqrt(3) : Math.sqrt(6 / fanOut);
    const values = new Float32Array(kernel.size);
    for (let i = 0; i < values.length; i++) values[i] = (2 * random.next() - 1) * bound;
    const fresh = tf.tensor(values, shape);
    layer.setWeights([fresh, ...rest]);
    fresh.dispose();
  }
}

/**
 * MobileNetV2 as Keras builds it, from the layer sizes in mobilenetv2-architecture.ts, with
 * Keras's layer names (so weights trained in Keras or TF.js load by name) and 'same' padding where
 * Keras pads stride-2 layers by hand (the same zeros on either side). It runs at the data set's own
 * image size and channels: stride 32 in all, so 32x32 ends in a 1x1 map, as does MNIST's 28x28
 * (each stride-2 layer rounds up), with no resizing or padding of the images.
 */
export const mobilenetv2: ModelDefinition = {
  ...mobilenetv2Facts,
  build({ height, width, channels }, classes, seed, options = {}) {
    const { stem, stages, depthwiseKernelSize, headFilters, reluMax, batchNorm } = mobilenetv2Layers;
    // initialiseMobileNetV2 overwrites every kernel, so tfjs's own Glorot draws are skipped.
    const conv = (filters: number, kernelSize: number, strides: number, name: string) =>
      tfl.layers.conv2d({
        filters,
        kernelSize,
        strides,
        padding: 'same',
        useBias: false,
        kernelInitializer: 'zeros',
        name,
      });
    const normalised = (x: tfl.SymbolicTensor, name: string, relu: boolean): tfl.SymbolicTensor => {
      const y = tfl.layers.batchNormalization({ ...batchNorm, name: `${name}_BN` }).apply(x) as tfl.SymbolicTensor;
      return relu ? (tfl.layers.reLU({ maxValue: reluMax, name: `${name}_relu` }).apply(y) as tfl.SymbolicTensor) : y;
    };
    const input = tfl.input({ shape: [height, width, channels], name: 'input' });
    const image = options.imageInput
      ? (new ImageInput({ ...options.imageInput, name: 'image_input' }).apply(input) as tfl.SymbolicTensor)
      : input;
    let x = conv(stem.filters, stem.kernelSize, stem.stride, 'Conv1').apply(image) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization({ ...batchNorm, name: 'bn_Conv1' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ maxValue: reluMax, name: 'Conv1_relu' }).apply(x) as tfl.SymbolicTensor;
    let depth: number = stem.filters;
    let index = 0;
    stages: for (const { expansion, filters, blocks, stride } of stages) {
      for (let block = 0; block < blocks; block++, index++) {
        const prefix = index === 0 ? 'expanded_conv' : `block_${index}`;
        const strides = block === 0 ? stride : 1;
        let h = x;
        if (expansion !== 1) {
          h = conv(depth * expansion, 1, 1, `${prefix}_expand`).apply(h) as tfl.SymbolicTensor;
          h = normalised(h, `${prefix}_expand`, true);
        }
        h = tfl.layers
          .depthwiseConv2d({
            kernelSize: depthwiseKernelSize,
            strides,
            padding: 'same',
            useBias: false,
            depthwiseInitializer: 'zeros',
            name: `${prefix}_depthwise`,
          })
          .apply(h) as tfl.SymbolicTensor;
        h = normalised(h, `${prefix}_depthwise`, true);
        h = conv(filters, 1, 1, `${prefix}_project`).apply(h) as tfl.SymbolicTensor;
        h = normalised(h, `${prefix}_project`, false);
        if (strides === 1 && depth === filters) {
          h = tfl.layers.add({ name: `${prefix}_add` }).apply([x, h]) as tfl.SymbolicTensor;
        }
        x = h;
        depth = filters;
        if (options.cutAfter !== undefined && x.sourceLayer.name === options.cutAfter) break stages;
      }
    }
    if (options.cutAfter === undefined) {
      x = conv(headFilters, 1, 1, 'Conv_1').apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.batchNormalization({ ...batchNorm, name: 'Conv_1_bn' }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.reLU({ maxValue: reluMax, name: 'out_relu' }).apply(x) as tfl.SymbolicTensor;
    } else if (x.sourceLayer.name !== options.cutAfter) {
      throw new Error(`MobileNetV2 has no block ending in ${options.cutAfter} to cut after`);
    }
    x = tfl.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as tfl.SymbolicTensor;
    const logits = tfl.layers
      .dense({ units: classes, kernelInitializer: 'zeros', name: 'predictions' })
      .apply(x) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: logits, name: 'mobilenetv2' });
    initialiseMobileNetV2(model, seed);
    return model;
  },
  topStart(model) {
    return model.layers.findIndex((layer) => layer.name === topFirstLayer);
  },
};
