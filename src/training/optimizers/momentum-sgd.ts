import * as tf from '@tensorflow/tfjs-core';
import type { StepOptimizer } from './optimizer.ts';

/** The notebook's optimizer, PyTorch's SGD: weight decay added to the gradient (biases included), then momentum. */
export class MomentumSgd implements StepOptimizer {
  private readonly optimizer: tf.MomentumOptimizer;

  constructor(
    private readonly variables: readonly tf.Variable[],
    learningRate: number,
    momentum: number,
    private readonly weightDecay: number,
  ) {
    this.optimizer = tf.train.momentum(learningRate, momentum);
  }

  get iterations(): number {
    return this.optimizer.iterations;
  }

  setLearningRate(learningRate: number): void {
    this.optimizer.setLearningRate(learningRate);
  }

  apply(grads: readonly tf.Tensor[]): void {
    const { weightDecay } = this;
    tf.tidy(() =>
      this.optimizer.applyGradients(
        this.variables.map((variable, index) => {
          const gradient = grads[index] as tf.Tensor;
          return {
            name: variable.name,
            tensor: weightDecay > 0 ? tf.add(gradient, tf.mul(variable, weightDecay)) : gradient,
          };
        }),
      ),
    );
  }

  async state(): Promise<tf.Tensor[]> {
    const [iterations, ...buffers] = await this.optimizer.getWeights();
    // getWeights hands out a fresh scalar for the iteration count (kept in a checkpoint's position instead).
    iterations?.tensor.dispose();
    return buffers.map(({ tensor }) => tensor.clone());
  }

  async setState(iterations: number, tensors: readonly tf.Tensor[]): Promise<void> {
    const count = tf.scalar(iterations, 'int32');
    await this.optimizer.setWeights([
      { name: 'iter', tensor: count },
      ...tensors.map((tensor, index) => ({ name: `momentum_${index}`, tensor })),
    ]);
    count.dispose();
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
