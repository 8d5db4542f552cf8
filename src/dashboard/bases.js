// @ts-check
/**
 * The "Your bases" panel: the client's uploaded bases (GET /bases), uploading one (POST /bases, a
 * zip, checked by the server before it answers) and deleting one.
 * @import { Base } from '../contract/bases.ts'
 */
import * as api from './api.js';
import { loadCatalog } from './catalog.js';
import { $, element } from './dom.js';
import { ownBases, percent, uploadText } from './format.js';

const noFileChosen = "A TF.js layers model zip (a job's model download, or tensorflowjs_converter's output)";

export function wireBaseForm() {
  const input = $('base-input', HTMLInputElement);
  $('base-form').addEventListener('submit', (event) => void uploadBase(event));
  input.addEventListener('change', () => {
    $('base-file').textContent = input.files?.[0]?.name ?? noFileChosen;
  });
}

/** @param {readonly Base[]} bases */
export function showBases(bases) {
  $('bases').replaceChildren(
    ...ownBases(bases).map((base) => {
      const remove = element('button', {
        type: 'button',
        className: 'danger',
        'data-testid': 'base-delete',
        text: 'Delete',
      });
      remove.addEventListener('click', () => void deleteBase(base.id));
      return element(
        'li',
        { 'data-testid': 'base-row', 'data-base-id': base.id, title: base.id },
        element('div', { className: 'row' }, element('span', { className: 'name', text: base.name })),
        element('div', { className: 'row' }, element('span', { className: 'meta', text: base.detail }), remove),
      );
    }),
  );
}

/** @param {SubmitEvent} event */
async function uploadBase(event) {
  event.preventDefault();
  const form = $('base-form', HTMLFormElement);
  const file = $('base-input', HTMLInputElement).files?.[0];
  const errorLine = $('base-error');
  errorLine.textContent = '';
  if (!file) {
    errorLine.textContent = 'Choose a zip first.';
    return;
  }
  const data = new FormData();
  const name = $('base-name', HTMLInputElement).value.trim();
  if (name) data.append('name', name);
  data.append('archive', file, file.name);
  const bar = $('base-progress-bar');
  $('base-progress').hidden = false;
  bar.style.width = '0%';
  $('base-upload', HTMLButtonElement).disabled = true;
  const answer = await api.uploadBase(data, (loaded, total) => {
    bar.style.width = percent(loaded / total);
    // Once sent, the server reads the model before it answers.
    $('base-status').textContent = loaded < total ? uploadText(loaded, total) : 'Checking the model…';
  });
  $('base-upload', HTMLButtonElement).disabled = false;
  $('base-progress').hidden = true;
  $('base-status').textContent = answer.ok ? `${answer.body.name}: a ${answer.body.network} base` : '';
  if (!answer.ok) {
    errorLine.textContent = answer.body.error;
    return;
  }
  form.reset();
  $('base-file').textContent = noFileChosen;
  await loadCatalog();
}

/** @param {string} id */
async function deleteBase(id) {
  const answer = await api.deleteBase(id);
  $('base-error').textContent = answer.ok ? '' : answer.body.error;
  $('base-status').textContent = '';
  await loadCatalog();
}
