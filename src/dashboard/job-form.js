// @ts-check
/**
 * The "New training job" form: POST /jobs from its fields, and a 400 answer's messages next to the
 * fields they are about.
 * @import { ErrorBody } from '../contract/errors.ts'
 */
import * as api from './api.js';
import { $ } from './dom.js';
import { openJob } from './job-panel.js';
import { refreshJobs } from './job-list.js';
import { numberFields, requestFromForm } from './job-request.js';

const form = () => $('job-form', HTMLFormElement);

export function wireJobForm() {
  form().addEventListener('submit', (event) => void submitJob(event));
  $('field-optimizer', HTMLSelectElement).addEventListener('change', showOptimizerDefaults);
}

/** Adam and AdamW have no momentum (a disabled field is not sent) and other defaults, which the placeholders show. */
function showOptimizerDefaults() {
  const optimizer = $('field-optimizer', HTMLSelectElement).value;
  const sgd = optimizer === 'sgd';
  $('field-momentum', HTMLInputElement).disabled = !sgd;
  $('field-learningRate', HTMLInputElement).placeholder = sgd ? '0.01' : '0.001';
  $('field-weightDecay', HTMLInputElement).placeholder = optimizer === 'adamw' ? '0.01' : 'model default';
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
 * The form set to start from this job's model, in view.
 * @param {string} jobId
 */
export function fineTuneFrom(jobId) {
  $('field-initFrom', HTMLInputElement).value = jobId;
  form().scrollIntoView({ behavior: 'smooth' });
}
