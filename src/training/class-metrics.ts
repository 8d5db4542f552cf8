import type { ClassMetrics, MacroMetrics } from '../contract/job.ts';

/**
 * Per-class precision, recall and F1 from a confusion matrix (rows: true class, columns:
 * predicted), and their macro averages, as scikit-learn's precision_recall_fscore_support
 * computes them with zero_division=0: a ratio whose denominator is 0 (a class never predicted,
 * or never present) is 0 instead of undefined, so the result stays plain JSON numbers. The macro
 * averages are unweighted means over the classes that occur in the test set or the predictions,
 * the labels scikit-learn averages over when it is given none: a class the test images never
 * show and the model never predicts says nothing about the model.
 */
export function classMetrics(
  confusionMatrix: readonly (readonly number[])[],
  classNames: readonly string[],
): { perClass: ClassMetrics[]; macro: MacroMetrics } {
  const predictedAs = confusionMatrix.map((_, column) =>
    confusionMatrix.reduce((sum, row) => sum + (row[column] ?? 0), 0),
  );
  const perClass = confusionMatrix.map((row, label): ClassMetrics => {
    const truePositives = row[label] ?? 0;
    const support = row.reduce((sum, count) => sum + count, 0);
    const predicted = predictedAs[label] ?? 0;
    const precision = ratio(truePositives, predicted);
    const recall = ratio(truePositives, support);
    return {
      className: classNames[label] ?? String(label),
      precision,
      recall,
      f1: ratio(2 * precision * recall, precision + recall),
      support,
    };
  });
  const occurring = perClass.filter((metrics, label) => metrics.support > 0 || (predictedAs[label] ?? 0) > 0);
  const mean = (pick: (metrics: ClassMetrics) => number) =>
    ratio(
      occurring.reduce((sum, metrics) => sum + pick(metrics), 0),
      occurring.length,
    );
  return {
    perClass,
    macro: { precision: mean((m) => m.precision), recall: mean((m) => m.recall), f1: mean((m) => m.f1) },
  };
}

function ratio(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}
