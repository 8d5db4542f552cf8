// @ts-check
/**
 * A completed job's result in the job panel: test accuracy, confusion matrix, per-class metrics.
 * @import { JobResult } from '../contract/job.ts'
 */
import { $, element } from './dom.js';
import { heat, percent, resultDetail } from './format.js';

/** @param {JobResult} result */
export function showResult(result) {
  $('result').hidden = false;
  $('test-accuracy').textContent = percent(result.testAccuracy);
  $('result-detail').textContent = resultDetail(result);
  $('confusion-matrix').replaceChildren(...confusionMatrix(result));
  $('per-class').replaceChildren(...perClass(result));
}

/** @param {JobResult} result */
function confusionMatrix({ classNames: names, confusionMatrix: matrix }) {
  const head = element(
    'tr',
    {},
    element('th', { className: 'axis', text: 'true \\ predicted' }),
    ...names.map((name) => element('th', { text: name, scope: 'col' })),
  );
  const rows = matrix.map((counts, row) => {
    const total = counts.reduce((sum, count) => sum + count, 0) || 1;
    const truth = names[row] ?? '';
    return element(
      'tr',
      {},
      element('th', { text: truth, scope: 'row' }),
      ...counts.map((count, column) =>
        element('td', {
          'data-testid': 'confusion-cell',
          text: String(count),
          title: `true ${truth}, predicted ${names[column]}: ${count} (${percent(count / total)} of ${truth})`,
          style: heat(count / total),
        }),
      ),
    );
  });
  return [element('thead', {}, head), element('tbody', {}, ...rows)];
}

/**
 * Each class's accuracy (its recall), with precision, F1 and support, and their macro averages.
 * Jobs trained before precision and F1 were recorded have only the per-class accuracy.
 * @param {JobResult} result
 */
function perClass({ classNames: names, perClassAccuracy, perClass: metrics, macro }) {
  const head = element(
    'tr',
    {},
    element('th', { text: 'Class', scope: 'col' }),
    element('th', { text: 'Accuracy (recall)', scope: 'col' }),
    ...(metrics ? ['Precision', 'F1', 'Support'].map((name) => element('th', { text: name, scope: 'col' })) : []),
  );
  const rows = perClassAccuracy.map((accuracy, index) => {
    const more = metrics?.[index];
    return element(
      'tr',
      { 'data-testid': 'per-class-row' },
      element('th', { text: names[index] ?? '', scope: 'row' }),
      element(
        'td',
        { className: 'recall' },
        element('span', { className: 'bar', style: { width: `${accuracy * 8}rem` } }),
        percent(accuracy),
      ),
      ...(more
        ? [
            element('td', { text: percent(more.precision) }),
            element('td', { text: percent(more.f1) }),
            element('td', { text: String(more.support) }),
          ]
        : []),
    );
  });
  const foot = macro
    ? [
        element(
          'tfoot',
          {},
          element(
            'tr',
            { 'data-testid': 'per-class-macro' },
            element('th', { text: 'macro average', scope: 'row' }),
            element('td', { className: 'recall', text: percent(macro.recall) }),
            element('td', { text: percent(macro.precision) }),
            element('td', { text: percent(macro.f1) }),
            element('td'),
          ),
        ),
      ]
    : [];
  return [element('thead', {}, head), element('tbody', {}, ...rows), ...foot];
}
