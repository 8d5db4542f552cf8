// @ts-check
/** The header's health badge, and the catalog: the job form's models and data sets, and the client's own data sets. */
import * as api from './api.js';
import { showDatasets } from './datasets.js';
import { $, element } from './dom.js';
import { datasetLabel } from './format.js';
import { state } from './state.js';

/** Fills the job form's selects (keeping what was chosen) and the data set list, from GET /models and GET /datasets. */
export async function loadCatalog() {
  const [models, datasets] = await Promise.all([api.listModels(), api.listDatasets()]);
  const modelSelect = $('field-model', HTMLSelectElement);
  const datasetSelect = $('field-dataset', HTMLSelectElement);
  if (models.status === 401 || datasets.status === 401)
    $('form-error').textContent = 'This service wants an API key: enter it at the top.';
  if (!models.ok || !datasets.ok) return;
  $('form-error').textContent = '';
  const [chosenModel, chosenDataset] = [modelSelect.value, datasetSelect.value];
  modelSelect.replaceChildren(
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
