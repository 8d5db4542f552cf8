import * as tf from '@tensorflow/tfjs-core';
import type { StepOptimizer } from './optimizer.ts';

/** Adam's constants, PyTorch's and Keras's defaults; the replicas' update on shared memory uses them too. */
export const adamConstants = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } as const;

export interface AdamDecay {
  readonly weightDecay: number;
  /**
   * false: Adam's L2 decay, added to the gradient (PyTorch's Adam); true: AdamW's decoupled decay,
   * the weights shrunk by learningRate × weightDecay before the update (Loshchilov & Hutter, PyTorch's AdamW).
   */
  readonly decoupled: boolean;
}

/**
 * Adam (Kingma & Ba) as PyTorch computes it: bias-corrected moments, epsilon added to the corrected
 * second moment's root. Not tf.train.adam: its learning rate can't change between steps (the
 * schedule changes it by epoch) and its epsilon defaults to the backend's.
 */
export class Adam implements StepOptimizer {
  private steps = 0;
  /** First and second moments per variable, made at the first step (a replica thread's optimizer never steps). */
  private moments: { readonly first: tf.Variable; readonly second: tf.Variable }[] | null = null;

  constructor(
    private readonly variables: readonly tf.Variable[],
    private learningRate: number,
    private readonly decay: AdamDecay,
  ) {}

  get iterations(): number {
    return this.steps;
  }

  setLearningRate(learningRate: number): void {
    this.learningRate = learningRate;
  }

  apply(grads: readonly tf.Tensor[]): void {
    // Within tidy, which keeps variables and disposes the zeros they were made from.
    const moments = (this.moments ??= tf.tidy(() =>
      this.variables.map((variable) => ({
        first: tf.zerosLike(variable).variable(false),
        second: tf.zerosLike(variable).variable(false),
      })),
    ));
    this.steps++;
    const { beta1, beta2, epsilon } = adamConstants;
    const { learningRate } = this;
    const { weightDecay, decoupled } = this.decay;
    const firstCorrection = 1 - beta1 ** this.steps;
    const secondCorrection = 1 - beta2 ** this.steps;
    tf.tidy(() =>
      this.variables.forEach((variable, index) => {
        const { first, second } = moments[index] as (typeof moments)[number];
        let gradient = grads[index] as tf.Tensor;
        if (!decoupled && weightDecay > 0) gradient = tf.add(gradient, tf.mul(variable, weightDecay));
        first.assign(tf.add(tf.mul(first, beta1), tf.mul(gradient, 1 - beta1)));
        second.assign(tf.add(tf.mul(second, beta2), tf.mul(tf.square(gradient), 1 - beta2)));
        const update = tf.div(
          tf.div(first, firstCorrection),
          tf.add(tf.sqrt(tf.div(second, secondCorrection)), epsilon),
        );
        const start = decoupled && weightDecay > 0 ? tf.mul(variable, 1 - learningRate * weightDecay) : variable;
        variable.assign(tf.sub(start, tf.mul(update, learningRate)));
      }),
    );
  }

  async state(): Promise<tf.Tensor[]> {
    if (!this.moments) return [];
    return [...this.moments.map(({ first }) => first.clone()), ...this.moments.map(({ second }) => second.clone())];
  }

  async setState(iterations: number, tensors: readonly tf.Tensor[]): Promise<void> {
    const count = this.variables.length;
    if (tensors.length !== 2 * count)
      throw new Error(`Adam keeps ${2 * count} tensors of state, not ${tensors.length}`);
    this.disposeMoments();
    this.steps = iterations;
    this.moments = this.variables.map((_, index) => ({
      // A variable shares its tensor's values and counts as their holder: the caller's tensor can go.
      first: (tensors[index] as tf.Tensor).variable(false),
      second: (tensors[count + index] as tf.Tensor).variable(false),
    }));
  }

  dispose(): void {
    this.disposeMoments();
  }

  private disposeMoments(): void {
    if (this.moments) tf.dispose(this.moments.flatMap(({ first, second }) => [first, second]));
    this.moments = null;
  }
}
