// @ts-check
/**
 * The "Jobs" list (GET /jobs, polled): each job's state and progress, and boxes to tick jobs to
 * compare; the job form starts from the completed ones.
 * @import { JobSummary } from '../contract/job.ts'
 */
import * as api from './api.js';
import { $, element } from './dom.js';
import { percent, plural, progressFraction } from './format.js';
import { showStartChoices } from './job-form.js';
import { openJob } from './job-panel.js';
import { datasetName, state } from './state.js';

export async function refreshJobs() {
  const answer = await api.listJobs();
  if (!answer.ok) return;
  state.jobs = answer.body.jobs;
  showStartChoices();
  const rows = answer.body.jobs.map(jobRow);
  $('jobs').replaceChildren(...rows);
  $('jobs-empty').hidden = rows.length > 0;
}

/** @param {JobSummary} job */
function jobRow(job) {
  const accuracy = job.result ? ` · ${percent(job.result.testAccuracy)}` : '';
  const row = element(
    'li',
    {
      'data-testid': 'job-row',
      'data-job-id': job.id,
      'data-state': job.state,
      className: job.id === state.job?.id ? 'selected' : '',
      title: job.id,
    },
    element(
      'div',
      { className: 'row' },
      element(
        'label',
        {},
        tickBox(job.id),
        element('span', { className: 'name', text: `${job.request.model} · ${datasetName(job.request.dataset)}` }),
      ),
      element('span', { className: `state ${job.state}`, 'data-testid': 'job-row-state', text: job.state }),
    ),
    element('div', {
      className: 'meta',
      text: `${job.id.slice(0, 8)} · ${plural(job.request.epochs, 'epoch')} · ${new Date(job.createdAt).toLocaleString()}${accuracy}${job.experimentId ? ` · experiment ${job.experimentId.slice(0, 8)}` : ''}`,
    }),
    element(
      'div',
      { className: 'progress' },
      element('div', { className: 'bar', style: { width: percent(progressFraction(job.progress, job.state)) } }),
    ),
  );
  row.addEventListener('click', () => openJob(job.id));
  return row;
}

/** @param {string} id */
function tickBox(id) {
  const box = element('input', { type: 'checkbox', 'data-testid': 'job-select', 'aria-label': `compare job ${id}` });
  box.checked = state.ticked.has(id);
  box.addEventListener('click', (event) => event.stopPropagation());
  box.addEventListener('change', () => {
    if (box.checked) state.ticked.add(id);
    else state.ticked.delete(id);
    updateCompareButton();
  });
  return box;
}

function updateCompareButton() {
  const button = $('compare', HTMLButtonElement);
  button.disabled = state.ticked.size < 2;
  button.textContent = state.ticked.size < 2 ? 'Compare selected' : `Compare ${state.ticked.size}`;
}
