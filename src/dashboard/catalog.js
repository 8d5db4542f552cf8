// @ts-check
/**
 * The header's health badge, and the catalog: the job form's models, data sets and bases, and the
 * client's own data sets and bases.
 */
import * as api from './api.js';
import { showBases } from './bases.js';
import { showDatasets } from './datasets.js';
import { $, element } from './dom.js';
import { autoModel } from './form-choices.js';
import { datasetLabel } from './format.js';
import { showModelChoices } from './job-form.js';
import { state } from './state.js';

/**
 * Fills the job form's selects (keeping what was chosen; auto first and by default) and the lists
 * of data sets and bases, from GET /models, GET /datasets and GET /bases.
 */
export async function loadCatalog() {
  const [models, datasets, bases] = await Promise.all([api.listModels(), api.listDatasets(), api.listBases()]);
  const modelSelect = $('field-model', HTMLSelectElement);
  const datasetSelect = $('field-dataset', HTMLSelectElement);
  if (models.status === 401 || datasets.status === 401)
    $('form-error').textContent = 'This service wants an API key: enter it at the top.';
  if (!models.ok || !datasets.ok) return;
  $('form-error').textContent = '';
  const [chosenModel, chosenDataset] = [modelSelect.value, datasetSelect.value];
  state.models = models.body.models;
  modelSelect.replaceChildren(
    element('option', { value: autoModel, text: 'auto (picked for the data set)' }),
    ...models.body.models.map((model) => element('option', { value: model.name, text: model.name })),
  );
  datasetSelect.replaceChildren();
  for (const dataset of datasets.body.datasets) {
    state.datasetNames.set(dataset.id, dataset.name);
    datasetSelect.append(element('option', { value: dataset.id, text: datasetLabel(dataset) }));
  }
  if (chosenModel) modelSelect.value = chosenModel;
  if ([...datasetSelect.options].some((option) => option.value === chosenDataset)) datasetSelect.value = chosenDataset;
  showDatasets(datasets.body);
  if (bases.ok) {
    state.bases = bases.body.bases;
    showBases(state.bases);
  }
  showModelChoices();
}

export async function checkHealth() {
  const badge = $('health');
  const answer = await api.health();
  badge.className = `health ${answer.ok ? 'ok' : 'down'}`;
  // Only a lost Redis makes /health fail (503); status 0 is no answer at all.
  badge.textContent = answer.ok
    ? `up · ${answer.body.backend}${answer.body.device.kind === 'gpu' ? ` (${answer.body.device.name})` : ''}`
    : answer.status === 0
      ? 'unreachable'
      : 'Redis down';
}
