import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { SeededRandom } from '../random.ts';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Kwargs = Parameters<tfl.layers.Layer['call']>[1];

export interface SeededDropoutArgs extends LayerArgs {
  /** Probability of zeroing each element, in [0, 1). */
  rate: number;
  /** Starts the layer's sequence of masks. */
  seed: number;
}

/**
 * Dropout whose masks repeat for a given seed yet change from batch to batch. tfjs's Dropout with
 * a `seed` draws the same mask on every call, and without one isn't repeatable; this layer draws
 * each training call's seed from a SeededRandom(seed). As in PyTorch (and tf.dropout), kept values
 * are scaled by 1/(1 - rate) in training and the layer is the identity otherwise.
 *
 * Each sample's mask is drawn from the call's seed and the sample's index in the batch, not from
 * one stream over the batch: replicas that train slices of a batch (`sampleOffset` says where a
 * slice starts) draw, between them, the masks one thread training the whole batch draws.
 *
 * The sequence position lives in this object only, not in saved models: a model loaded from disk
 * starts the sequence again from `seed`, which doesn't matter for inference, the only use of a
 * loaded one. Training checkpoints keep it (`randomPosition`), so a resumed job draws the masks an
 * uninterrupted one would.
 */
export class SeededDropout extends tfl.layers.Layer {
  static className = 'SeededDropout';

  readonly rate: number;
  readonly seed: number;
  private random: SeededRandom;
  /** The batch index of the first sample the next calls see: where a replica's slice of the batch starts. */
  sampleOffset = 0;

  constructor(args: SeededDropoutArgs) {
    super(args);
    if (!(args.rate >= 0 && args.rate < 1)) throw new Error(`SeededDropout: rate must be in [0, 1), got ${args.rate}`);
    if (!Number.isSafeInteger(args.seed))
      throw new Error(`SeededDropout: seed must be a safe integer, got ${args.seed}`);
    this.rate = args.rate;
    this.seed = args.seed;
    this.random = new SeededRandom(args.seed);
    this.supportsMasking = true;
  }

  /** Where the sequence of masks stands: what a checkpoint keeps. */
  get randomPosition(): number {
    return this.random.position;
  }

  set randomPosition(position: number) {
    this.random = SeededRandom.fromPosition(position);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      this.invokeCallHook(inputs, kwargs);
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      if (x === undefined || (Array.isArray(inputs) && inputs.length !== 1)) {
        throw new Error(`SeededDropout takes one input, got ${Array.isArray(inputs) ? inputs.length : 1}`);
      }
      // tfjs-layers' executor hands every layer the kwargs of model.apply / predict.
      if (kwargs['training'] !== true || this.rate === 0) return x;
      return tf.mul(x, this.mask(x.shape, this.random.seed()));
    });
  }

  /** 1/(1 - rate) where a value is kept, 0 where it is dropped, one row of `shape` per sample. */
  private mask(shape: readonly number[], seed: number): tf.Tensor {
    const size = tf.util.sizeFromShape([...shape]);
    const samples = shape[0] ?? 1;
    const perSample = size / samples;
    const scale = 1 / (1 - this.rate);
    const values = new Float32Array(size);
    for (let sample = 0; sample < samples; sample++) {
      const random = SeededRandom.forSample(seed, this.sampleOffset + sample);
      const row = sample * perSample;
      // tf.dropout's rule: keep where the uniform draw is at least the rate.
      for (let i = 0; i < perSample; i++) values[row + i] = random.next() < this.rate ? 0 : scale;
    }
    return tf.tensor(values, [...shape]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

tf.serialization.registerClass(SeededDropout);

export function seededDropout(args: SeededDropoutArgs): SeededDropout {
  return new SeededDropout(args);
}
