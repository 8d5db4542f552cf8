import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ImageShape, ImageSplit } from '../datasets/dataset.ts';
import { normalisedImages } from '../datasets/normalise.ts';

export interface Evaluation {
  readonly accuracy: number;
  readonly loss: number;
  readonly correct: number;
  readonly total: number;
  readonly perClassAccuracy: number[];
  /** Rows: true class, columns: predicted class. */
  readonly confusionMatrix: number[][];
}

/** Bounds the memory of one forward pass; large enough that per-call overhead doesn't matter. */
const evaluationBatch = 500;

/** Accuracy, mean cross-entropy and confusion matrix of `model` on `split`, never augmented. */
export async function evaluate(
  model: tfl.LayersModel,
  split: ImageSplit,
  shape: ImageShape,
  classes: number,
): Promise<Evaluation> {
  const imageSize = shape.height * shape.width * shape.channels;
  const confusionMatrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  for (let start = 0; start < split.count; start += evaluationBatch) {
    const count = Math.min(evaluationBatch, split.count - start);
    const labels = split.labels.subarray(start, start + count);
    const [predicted, losses] = tf.tidy(() => {
      const images = normalisedImages(
        split.images.subarray(start * imageSize, (start + count) * imageSize),
        count,
        shape,
      );
      const logits = model.predict(images) as tf.Tensor2D;
      const targets = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
      return [
        tf.argMax(logits, 1),
        tf.losses.softmaxCrossEntropy(targets, logits, undefined, undefined, tf.Reduction.NONE),
      ];
    });
    const [predictedValues, lossValues] = await Promise.all([predicted.data(), losses.data()]);
    tf.dispose([predicted, losses]);
    for (let i = 0; i < count; i++) {
      const row = confusionMatrix[labels[i] as number] as number[];
      const column = predictedValues[i] as number;
      row[column] = (row[column] as number) + 1;
      lossSum += lossValues[i] as number;
    }
  }
  const correct = confusionMatrix.reduce((sum, row, label) => sum + (row[label] as number), 0);
  const perClassAccuracy = confusionMatrix.map((row, label) => {
    const seen = row.reduce((sum, count) => sum + count, 0);
    return seen === 0 ? 0 : (row[label] as number) / seen;
  });
  return {
    accuracy: split.count === 0 ? 0 : correct / split.count,
    loss: split.count === 0 ? 0 : lossSum / split.count,
    correct,
    total: split.count,
    perClassAccuracy,
    confusionMatrix,
  };
}
