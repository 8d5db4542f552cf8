// @ts-check
/**
 * The "New training job" form: POST /jobs from its fields, and a 400 answer's messages next to the
 * fields they are about.
 * @import { ErrorBody } from '../contract/errors.ts'
 */
import * as api from './api.js';
import { $, element } from './dom.js';
import { fieldDefaults, startChoices, takesInputSize } from './form-choices.js';
import { openJob } from './job-panel.js';
import { refreshJobs } from './job-list.js';
import { numberFields, requestFromForm } from './job-request.js';
import { datasetName, state } from './state.js';

const form = () => $('job-form', HTMLFormElement);

export function wireJobForm() {
  form().addEventListener('submit', (event) => void submitJob(event));
  $('field-optimizer', HTMLSelectElement).addEventListener('change', showDefaults);
  $('field-model', HTMLSelectElement).addEventListener('change', showModelChoices);
}

/** Everything in the form that depends on the model chosen: what it can start from, the input size, the defaults. */
export function showModelChoices() {
  const model = $('field-model', HTMLSelectElement).value;
  showStartChoices();
  const inputSize = $('field-inputSize', HTMLInputElement);
  $('label-inputSize').hidden = !takesInputSize(model);
  // A disabled field is not sent.
  inputSize.disabled = !takesInputSize(model);
  showDefaults();
}

/**
 * The "Start from" select for the model chosen, keeping what was chosen when it is still offered;
 * rebuilt only when its choices changed, so that polling doesn't close it under the user's pointer.
 */
export function showStartChoices() {
  const select = $('field-initFrom', HTMLSelectElement);
  const choices = startChoices(
    $('field-model', HTMLSelectElement).value,
    state.models,
    state.bases,
    state.jobs,
    datasetName,
  );
  const key = JSON.stringify(choices);
  if (select.dataset.choices === key) return;
  select.dataset.choices = key;
  const chosen = select.value;
  /** @type {Map<string, HTMLOptGroupElement>} */
  const groups = new Map();
  select.replaceChildren();
  for (const choice of choices) {
    const option = element('option', { value: choice.value, text: choice.text });
    if (choice.group === null) {
      select.append(option);
      continue;
    }
    let group = groups.get(choice.group);
    if (!group) {
      group = element('optgroup', { label: choice.group });
      groups.set(choice.group, group);
      select.append(group);
    }
    group.append(option);
  }
  if (choices.some((choice) => choice.value === chosen)) select.value = chosen;
}

/**
 * The placeholders and the selects' default options say what the server will use: auto's choice,
 * or the model's and optimizer's defaults. Adam and AdamW have no momentum (a disabled field is not sent).
 */
function showDefaults() {
  const model = $('field-model', HTMLSelectElement).value;
  const optimizer = $('field-optimizer', HTMLSelectElement).value;
  const defaults = fieldDefaults(model, optimizer);
  $('field-momentum', HTMLInputElement).disabled = optimizer === 'adam' || optimizer === 'adamw';
  for (const name of /** @type {const} */ (['epochs', 'batchSize', 'learningRate', 'weightDecay', 'inputSize']))
    $(`field-${name}`, HTMLInputElement).placeholder = defaults[name];
  for (const name of /** @type {const} */ (['optimizer', 'trainLayers', 'augment'])) {
    const option = $(`field-${name}`, HTMLSelectElement).querySelector('option[data-default]');
    if (option) option.textContent = defaults[name];
  }
}

/** @param {SubmitEvent} event */
async function submitJob(event) {
  event.preventDefault();
  const button = $('submit', HTMLButtonElement);
  clearErrors();
  button.disabled = true;
  try {
    const answer = await api.createJob(requestFromForm(new FormData(form()), unparsableFields()));
    if (answer.ok) {
      await refreshJobs();
      openJob(answer.body.id);
      return;
    }
    showErrors(answer.body);
  } finally {
    button.disabled = false;
  }
}

/** The number fields whose input holds text it cannot parse (which the form hands over as ''). */
function unparsableFields() {
  return new Set(
    numberFields.filter((name) => {
      const input = form().elements.namedItem(name);
      return input instanceof HTMLInputElement && input.validity.badInput;
    }),
  );
}

function clearErrors() {
  for (const span of form().querySelectorAll('[data-error-for]')) span.textContent = '';
  for (const field of form().querySelectorAll('[aria-invalid]')) field.removeAttribute('aria-invalid');
  $('form-error').textContent = '';
}

/**
 * Each detail next to its field; those about no field, or the error itself when there are no details, under the form.
 * @param {ErrorBody} body
 */
function showErrors(body) {
  const unplaced = [];
  for (const detail of body.details ?? []) {
    const field = detail.path.split('.')[0] ?? '';
    const span = form().querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (span) {
      span.textContent = span.textContent ? `${span.textContent}; ${detail.message}` : detail.message;
      const input = form().elements.namedItem(field);
      if (input instanceof Element) input.setAttribute('aria-invalid', 'true');
    } else {
      unplaced.push(detail.path ? `${detail.path}: ${detail.message}` : detail.message);
    }
  }
  if (unplaced.length > 0 || !body.details?.length)
    $('form-error').textContent = unplaced.length > 0 ? unplaced.join('; ') : body.error;
}

/**
 * The form set to train on this data set, in view.
 * @param {string} datasetId
 */
export function trainOn(datasetId) {
  $('field-dataset', HTMLSelectElement).value = datasetId;
  form().scrollIntoView({ behavior: 'smooth' });
}

/**
 * The form set to start from this job's model (its network chosen), in view.
 * @param {string} jobId
 * @param {string} model  the job's network
 */
export function fineTuneFrom(jobId, model) {
  $('field-model', HTMLSelectElement).value = model;
  showModelChoices();
  const select = $('field-initFrom', HTMLSelectElement);
  // A job older than the polled list's page is not among the choices.
  if (![...select.options].some((option) => option.value === jobId))
    select.append(element('option', { value: jobId, text: `job ${jobId.slice(0, 8)}` }));
  select.value = jobId;
  form().scrollIntoView({ behavior: 'smooth' });
}
