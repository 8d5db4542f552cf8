/**
 * One training step: forward, softmax cross-entropy (label-smoothed when the job asks), backward, then the job's optimizer (the
 * notebook's is PyTorch's SGD: weight decay added to the gradient, then momentum). The trainer
 * runs it whole (`run`); the profile bench times its phases apart through the seams between them (`images`, `gradients`,
 * `apply`), and data-parallel replicas can compute `gradients` each, sum them, and `apply` the sum
 * once. Any change to the step is made here, for all of them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { JobSettings } from '../contract/job-request.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { normalisedImages } from '../datasets/normalise.ts';
import { trainingForward } from './forward.ts';
import { meanTrainingLoss } from './loss.ts';
import { createOptimizer, type OptimizerSettings, type StepOptimizer } from './optimizers/optimizer.ts';

/** A batch's loss and gradients, both the caller's to dispose. */
export interface StepGradients {
  /** The batch's mean loss. */
  readonly loss: tf.Scalar;
  /**
   * One gradient per trainable variable, in `variables` order (not by name: another model's
   * variables, a replica's, have other names but the same order).
   */
  readonly grads: tf.Tensor[];
}

/** What a step needs of the job's settings: its optimizer's, and its label smoothing (absent: 0, plain cross-entropy). */
export type StepSettings = OptimizerSettings & Partial<Pick<JobSettings, 'labelSmoothing'>>;

export class TrainingStep {
  /** The model's trainable variables, in its trainableWeights order. */
  readonly variables: readonly tf.Variable[];
  /** The job's optimizer; its state is part of a checkpoint. */
  readonly optimizer: StepOptimizer;
  private readonly forward: (x: tf.Tensor) => tf.Tensor;
  private readonly labelSmoothing: number;

  constructor(
    model: tfl.LayersModel,
    private readonly shape: ImageShape,
    private readonly classes: number,
    settings: StepSettings,
  ) {
    this.variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
    this.optimizer = createOptimizer(this.variables, settings);
    this.forward = trainingForward(model);
    this.labelSmoothing = settings.labelSmoothing ?? 0;
  }

  /** A batch of `count` raw images as the model's float32 input. */
  images(bytes: Uint8Array, count: number): tf.Tensor4D {
    return normalisedImages(bytes, count, this.shape);
  }

  /**
   * Forward pass, loss and backward pass on one batch; changes no variable. `afterForward` runs
   * between the forward pass and the backward one (the bench's seam: nothing can be awaited there).
   */
  gradients(images: tf.Tensor, labels: Int32Array, afterForward?: () => void): StepGradients {
    const { value, grads } = tf.variableGrads(() => {
      const loss = meanTrainingLoss(this.forward(images), labels, this.classes, this.labelSmoothing);
      afterForward?.();
      return loss;
    }, [...this.variables]);
    return { loss: value, grads: this.variables.map((variable) => grads[variable.name] as tf.Tensor) };
  }

  /** Updates the variables from `grads` (in `variables` order), which stay the caller's. */
  apply(grads: readonly tf.Tensor[]): void {
    this.optimizer.apply(grads);
  }

  /** What the next steps update with: a schedule changes it by epoch. */
  setLearningRate(learningRate: number): void {
    this.optimizer.setLearningRate(learningRate);
  }

  /** The whole step on a batch of raw images, leaving only its loss behind. */
  run(bytes: Uint8Array, labels: Int32Array): tf.Scalar {
    return tf.tidy(() => {
      const { loss, grads } = this.gradients(this.images(bytes, labels.length), labels);
      this.apply(grads);
      return loss;
    });
  }

  /** Steps the optimizer has taken. */
  get iterations(): number {
    return this.optimizer.iterations;
  }

  /** Copies of the optimizer's state (StepOptimizer.state), the caller's to dispose; none before the first step. */
  async optimizerState(): Promise<tf.Tensor[]> {
    return this.optimizer.state();
  }

  /** Goes on from another run's optimizer: its step count and state (which stay the caller's). */
  async setOptimizerState(iterations: number, tensors: readonly tf.Tensor[]): Promise<void> {
    await this.optimizer.setState(iterations, tensors);
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
