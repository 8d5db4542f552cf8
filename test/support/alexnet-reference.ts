/**
 * AlexNet's loss and first gradient on a fixed batch of one CIFAR-sized image, summarised per
 * variable: what the webgpu test compares against the cpu backend's figures stored in
 * test/fixtures/alexnet-cpu-reference.json (the cpu backend takes about a minute for it, too long
 * to redo in every run). Regenerate the file after a change to the model or the step:
 *   npx tsx test/support/alexnet-reference.ts > test/fixtures/alexnet-cpu-reference.json
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { models } from '../../src/models/index.ts';
import { TrainingStep } from '../../src/training/training-step.ts';

export const alexnetReferenceInputs = {
  model: 'alexnet',
  shape: { height: 32, width: 32, channels: 3 },
  batch: 1,
  seed: 5,
  labels: [3],
};

export interface GradientSummary {
  readonly shape: number[];
  readonly sum: number;
  readonly sumAbs: number;
  readonly maxAbs: number;
  /** The first values, compared one by one. */
  readonly head: number[];
}

export interface AlexnetReference {
  readonly inputs: typeof alexnetReferenceInputs;
  readonly loss: number;
  readonly gradients: GradientSummary[];
}

/** On the current backend. */
export async function alexnetReference(): Promise<AlexnetReference> {
  const { shape, batch, seed, labels } = alexnetReferenceInputs;
  const model = models.alexnet.build(shape, 10, seed);
  const step = new TrainingStep(model, shape, 10, {
    optimizer: 'sgd',
    learningRate: 0.01,
    momentum: 0.9,
    weightDecay: 1e-4,
  });
  const pixels = shape.height * shape.width * shape.channels;
  const bytes = new Uint8Array(batch * pixels).map((_, index) => (index * 97) % 256);
  const images = step.images(bytes, batch);
  const { loss, grads } = step.gradients(images, Int32Array.from(labels));
  try {
    const gradients = await Promise.all(
      grads.map(async (gradient) => summarise(gradient.shape, (await gradient.data()) as Float32Array)),
    );
    return { inputs: alexnetReferenceInputs, loss: ((await loss.data()) as Float32Array)[0] as number, gradients };
  } finally {
    tf.dispose([images, loss, ...grads]);
    step.dispose();
    model.dispose();
  }
}

export function summarise(shape: number[], values: Float32Array): GradientSummary {
  let sum = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  for (const value of values) {
    sum += value;
    sumAbs += Math.abs(value);
    maxAbs = Math.max(maxAbs, Math.abs(value));
  }
  return { shape, sum, sumAbs, maxAbs, head: Array.from(values.subarray(0, 8)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await tf.setBackend('cpu');
  process.stdout.write(`${JSON.stringify(await alexnetReference(), null, 1)}\n`);
}
