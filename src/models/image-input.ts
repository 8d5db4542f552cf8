import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];

export interface ImageInputArgs extends LayerArgs {
  /** Resize to [height, width] (bilinear, half-pixel centres, as tf.image.resize); null keeps the size. */
  size: readonly [number, number] | null;
  /** Grey images repeated into this many channels (3 for a base trained on colour photographs); null keeps them. */
  channels: number | null;
  /** Then x · scale + offset: from the service's (x/255 − 0.5)/0.5 to the range a base was trained on. */
  scale: number;
  offset: number;
}

/**
 * Brings the service's normalised images to the form a pretrained base expects, inside the
 * network: so predictions and the downloaded model take the same input as every other model
 * (the data set's own size and channels, (x/255 − 0.5)/0.5), and nothing outside has to know the
 * base. custom-layers.mjs has the same layer for stock TensorFlow.js. No weights: nothing to train.
 */
export class ImageInput extends tfl.layers.Layer {
  static readonly className = 'ImageInput';
  readonly size: readonly [number, number] | null;
  readonly channels: number | null;
  readonly scale: number;
  readonly offset: number;

  constructor(args: ImageInputArgs) {
    super(args);
    this.size = args.size === null ? null : [args.size[0], args.size[1]];
    this.channels = args.channels;
    this.scale = args.scale;
    this.offset = args.offset;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    return [
      shape[0] ?? null,
      this.size?.[0] ?? shape[1] ?? null,
      this.size?.[1] ?? shape[2] ?? null,
      this.channels ?? shape[3] ?? null,
    ];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      this.invokeCallHook(inputs, kwargs);
      let x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      if (this.size !== null && (x.shape[1] !== this.size[0] || x.shape[2] !== this.size[1]))
        x = tf.image.resizeBilinear(x, [this.size[0], this.size[1]], false, true);
      if (this.channels !== null && x.shape[3] === 1 && this.channels !== 1) x = tf.tile(x, [1, 1, 1, this.channels]);
      return tf.add(tf.mul(x, this.scale), this.offset);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      size: this.size === null ? null : [...this.size],
      channels: this.channels,
      scale: this.scale,
      offset: this.offset,
    };
  }
}

tf.serialization.registerClass(ImageInput);
