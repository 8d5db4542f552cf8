// @ts-check
/** Uploading a data set (POST /datasets) with the upload's progress, then following its processing. */
import * as api from './api.js';
import { loadCatalog } from './catalog.js';
import { $ } from './dom.js';
import { percent, processingText, uploadText } from './format.js';
import { showReport } from './datasets.js';

const noFileChosen = 'A zip, tar or tar.gz with a folder per class';

export function wireDatasetForm() {
  const input = $('dataset-input', HTMLInputElement);
  $('dataset-form').addEventListener('submit', (event) => void uploadDataset(event));
  input.addEventListener('change', () => {
    $('dataset-file').textContent = input.files?.[0]?.name ?? noFileChosen;
  });
}

/** @param {SubmitEvent} event */
async function uploadDataset(event) {
  event.preventDefault();
  const form = $('dataset-form', HTMLFormElement);
  const file = $('dataset-input', HTMLInputElement).files?.[0];
  const errorLine = $('dataset-error');
  errorLine.textContent = '';
  if (!file) {
    errorLine.textContent = 'Choose an archive first.';
    return;
  }
  const data = new FormData();
  for (const [name, value] of new FormData(form))
    if (typeof value === 'string' && value.trim() !== '') data.append(name, value.trim());
  data.append('archive', file, file.name);
  const bar = $('upload-progress-bar');
  $('upload-progress').hidden = false;
  bar.style.width = '0%';
  $('upload', HTMLButtonElement).disabled = true;
  const answer = await api.uploadDataset(data, (loaded, total) => {
    bar.style.width = percent(loaded / total);
    $('upload-status').textContent = uploadText(loaded, total);
  });
  $('upload', HTMLButtonElement).disabled = false;
  $('upload-progress').hidden = true;
  if (!answer.ok) {
    errorLine.textContent = answer.body.error;
    return;
  }
  form.reset();
  $('dataset-file').textContent = noFileChosen;
  void followProcessing(answer.body.id);
}

/**
 * Polls the data set until it is ready or failed, then shows its report.
 * @param {string} id
 */
async function followProcessing(id) {
  await loadCatalog();
  for (;;) {
    const answer = await api.getDataset(id);
    if (!answer.ok) return;
    $('upload-status').textContent = processingText(answer.body);
    if (answer.body.state !== 'processing') break;
    await new Promise((resolve) => window.setTimeout(resolve, 500));
  }
  await loadCatalog();
  await showReport(id);
}
