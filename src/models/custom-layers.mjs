/**
 * The layers of the training service's models that TensorFlow.js doesn't have, for loading a
 * downloaded model (GET /jobs/:id/model) with stock TensorFlow.js, in a browser or in Node. It ships
 * in the model's archive as it is here: plain JavaScript that imports nothing, so it works with
 * whichever copy of TensorFlow.js the page or program has.
 *
 *   import * as tf from '@tensorflow/tfjs';
 *   import { registerCustomLayers } from './custom-layers.mjs';
 *   registerCustomLayers(tf);
 *   const model = await tf.loadLayersModel('model.json');
 *
 * With the separate packages instead of @tensorflow/tfjs: registerCustomLayers({ ...tfjsCore, ...tfjsLayers }).
 * These are for inference: SeededDropout is the identity, as dropout is when predicting; ImageInput
 * brings the service's input to a pretrained base's size, channels and range.
 */

/**
 * PyTorch's nn.AdaptiveAvgPool2d on NHWC input: output cell i of m, over n input cells, is the
 * mean of input cells floor(i·n/m) up to ceil((i+1)·n/m), exclusive.
 */
function window(i, n, m) {
  return { start: Math.floor((i * n) / m), end: Math.ceil(((i + 1) * n) / m) };
}

export function registerCustomLayers(tf) {
  class AdaptiveAveragePooling2D extends tf.layers.Layer {
    static className = 'AdaptiveAveragePooling2D';

    constructor(config) {
      super(config);
      const size = config.outputSize;
      this.outputSize = typeof size === 'number' ? [size, size] : [size[0], size[1]];
    }

    computeOutputShape(inputShape) {
      const shape = Array.isArray(inputShape[0]) ? inputShape[0] : inputShape;
      return [shape[0], this.outputSize[0], this.outputSize[1], shape[3]];
    }

    call(inputs) {
      return tf.tidy(() => {
        const x = Array.isArray(inputs) ? inputs[0] : inputs;
        const [, height, width] = x.shape;
        const [outHeight, outWidth] = this.outputSize;
        const rows = [];
        for (let i = 0; i < outHeight; i++) {
          const { start, end } = window(i, height, outHeight);
          rows.push(tf.mean(tf.slice(x, [0, start, 0, 0], [-1, end - start, -1, -1]), 1, true));
        }
        const pooledRows = tf.concat(rows, 1);
        const cells = [];
        for (let j = 0; j < outWidth; j++) {
          const { start, end } = window(j, width, outWidth);
          cells.push(tf.mean(tf.slice(pooledRows, [0, 0, start, 0], [-1, -1, end - start, -1]), 2, true));
        }
        return tf.concat(cells, 2);
      });
    }

    getConfig() {
      return { ...super.getConfig(), outputSize: [...this.outputSize] };
    }
  }

  class SeededDropout extends tf.layers.Layer {
    static className = 'SeededDropout';

    constructor(config) {
      super(config);
      this.rate = config.rate;
      this.seed = config.seed;
    }

    call(inputs) {
      return Array.isArray(inputs) ? inputs[0] : inputs;
    }

    getConfig() {
      return { ...super.getConfig(), rate: this.rate, seed: this.seed };
    }
  }

  /** Resizes, repeats grey into colour and rescales, as a pretrained base expects its input (MobileNetV2 from ImageNet). */
  class ImageInput extends tf.layers.Layer {
    static className = 'ImageInput';

    constructor(config) {
      super(config);
      this.size = config.size;
      this.channels = config.channels;
      this.scale = config.scale;
      this.offset = config.offset;
    }

    computeOutputShape(inputShape) {
      const shape = Array.isArray(inputShape[0]) ? inputShape[0] : inputShape;
      return [
        shape[0],
        this.size ? this.size[0] : shape[1],
        this.size ? this.size[1] : shape[2],
        this.channels ?? shape[3],
      ];
    }

    call(inputs) {
      return tf.tidy(() => {
        let x = Array.isArray(inputs) ? inputs[0] : inputs;
        if (this.size && (x.shape[1] !== this.size[0] || x.shape[2] !== this.size[1]))
          x = tf.image.resizeBilinear(x, this.size, false, true);
        if (this.channels && x.shape[3] === 1 && this.channels !== 1) x = tf.tile(x, [1, 1, 1, this.channels]);
        return tf.add(tf.mul(x, this.scale), this.offset);
      });
    }

    getConfig() {
      return { ...super.getConfig(), size: this.size, channels: this.channels, scale: this.scale, offset: this.offset };
    }
  }

  tf.serialization.registerClass(AdaptiveAveragePooling2D);
  tf.serialization.registerClass(ImageInput);
  tf.serialization.registerClass(SeededDropout);
}
