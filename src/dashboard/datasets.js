// @ts-check
/**
 * The "Your data sets" list: the client's own data sets, each one's report, and deleting one.
 * @import { DatasetCatalog } from '../contract/catalog.ts'
 * @import { UploadedDataset } from '../contract/datasets.ts'
 */
import * as api from './api.js';
import { loadCatalog } from './catalog.js';
import { $, element } from './dom.js';
import { ownDatasets, reportSummary, skippedText } from './format.js';
import { trainOn } from './job-form.js';

/** @param {DatasetCatalog} catalog */
export function showDatasets(catalog) {
  $('datasets').replaceChildren(
    ...ownDatasets(catalog).map((dataset) => {
      const remove = element('button', {
        type: 'button',
        className: 'danger',
        'data-testid': 'dataset-delete',
        text: 'Delete',
      });
      remove.addEventListener('click', (event) => {
        event.stopPropagation();
        void deleteDataset(dataset.id);
      });
      const row = element(
        'li',
        { 'data-testid': 'dataset-row', 'data-dataset-id': dataset.id, 'data-state': dataset.state, title: dataset.id },
        element(
          'div',
          { className: 'row' },
          element('span', { className: 'name', text: dataset.name }),
          element('span', { className: `state ${dataset.state}`, text: dataset.state }),
        ),
        element('div', { className: 'row' }, element('span', { className: 'meta', text: dataset.detail }), remove),
      );
      row.addEventListener('click', () => void showReport(dataset.id));
      return row;
    }),
  );
}

/**
 * An uploaded data set's report: classes and their images per split, what was skipped and why, warnings.
 * @param {string} id
 */
export async function showReport(id) {
  const answer = await api.getDataset(id);
  const panel = $('dataset-report');
  panel.hidden = false;
  if (!answer.ok) {
    panel.replaceChildren(element('p', { className: 'error', text: answer.body.error }));
    return;
  }
  panel.replaceChildren(...reportParts(answer.body));
}

/** @param {UploadedDataset} dataset */
function reportParts(dataset) {
  /** @type {HTMLElement[]} */
  const parts = [element('h4', { text: `${dataset.name} · ${dataset.state}` })];
  if (dataset.state === 'failed')
    parts.push(
      element('p', { className: 'error', 'data-testid': 'dataset-failure', text: dataset.error?.message ?? '' }),
    );
  const report = dataset.report;
  if (!report) return parts;
  const { splits } = report;
  const head = element(
    'tr',
    {},
    element('th', { text: 'class' }),
    element('th', { text: 'train' }),
    element('th', { text: 'test' }),
    ...(splits.val ? [element('th', { text: 'val' })] : []),
  );
  const count = (/** @type {{ perClass: number[] }} */ split, /** @type {number} */ index) =>
    element('td', { text: String(split.perClass[index]) });
  const rows = report.classNames.map((name, index) =>
    element(
      'tr',
      { 'data-testid': 'dataset-class' },
      element('th', { text: name }),
      count(splits.train, index),
      count(splits.test, index),
      ...(splits.val ? [count(splits.val, index)] : []),
    ),
  );
  parts.push(
    element('p', { className: 'muted', text: reportSummary(report) }),
    element('table', {}, element('thead', {}, head), element('tbody', {}, ...rows)),
  );
  const skipped = skippedText(report.skipped);
  if (skipped) parts.push(element('p', { 'data-testid': 'dataset-skipped', text: skipped }));
  for (const warning of report.warnings)
    parts.push(element('p', { className: 'warning', 'data-testid': 'dataset-warning', text: `⚠ ${warning}` }));
  const use = element('button', {
    type: 'button',
    className: 'secondary',
    'data-testid': 'dataset-use',
    text: 'Train on it',
  });
  use.addEventListener('click', () => trainOn(dataset.id));
  parts.push(use);
  return parts;
}

/** @param {string} id */
async function deleteDataset(id) {
  const answer = await api.deleteDataset(id);
  $('dataset-error').textContent = answer.ok ? '' : answer.body.error;
  if (answer.ok) $('dataset-report').hidden = true;
  await loadCatalog();
}
