// @ts-check
/**
 * The "Experiments" list and the comparison panel: an experiment's runs, or jobs ticked in the
 * list, in one table with one loss and one accuracy curve per run, refreshed until every run ended.
 * @import { Experiment, ExperimentSummary } from '../contract/experiment.ts'
 * @import { Job, JobState } from '../contract/job.ts'
 * @import { Point } from './curves.js'
 * @import { Comparison, ComparisonSpec } from './state.js'
 */
import * as api from './api.js';
import { accuracyAxes, drawChart } from './chart.js';
import { bestByAccuracy, differingFields, lossHistory, testAccuracy, trainingLoss } from './curves.js';
import { $, element, swatch } from './dom.js';
import { countsText, lossText, percent, progressFraction } from './format.js';
import { closeJob, openJob } from './job-panel.js';
import { refreshJobs } from './job-list.js';
import { datasetName, state } from './state.js';

/** One colour per run; the eleventh run takes the first again. */
const palette = [
  '#0a58ca',
  '#d63384',
  '#198754',
  '#fd7e14',
  '#6f42c1',
  '#20c997',
  '#dc3545',
  '#795548',
  '#0dcaf0',
  '#6c757d',
];
const colourOf = (/** @type {number} */ index) => palette[index % palette.length] ?? '';

/** @type {JobState[]} */
const endedStates = ['completed', 'failed', 'cancelled'];

/** @param {unknown} value  a request field's */
const describeValue = (value) => (typeof value === 'string' ? datasetName(value) : JSON.stringify(value));

/** @typedef {{ id: string, label: string }} Run */

export async function refreshExperiments() {
  const answer = await api.listExperiments();
  if (!answer.ok) return;
  const rows = answer.body.experiments.map(experimentRow);
  $('experiments').replaceChildren(...rows);
  $('experiments-empty').hidden = rows.length > 0;
}

/** @param {ExperimentSummary} experiment */
function experimentRow(experiment) {
  const best = experiment.best?.result ? ` · best ${percent(experiment.best.result.testAccuracy)}` : '';
  const row = element(
    'li',
    { 'data-testid': 'experiment-row', 'data-experiment-id': experiment.id, title: experiment.id },
    element(
      'div',
      { className: 'row' },
      element('span', {
        className: 'name',
        text: experiment.name ?? `grid over ${Object.keys(experiment.grid).join(' × ')}`,
      }),
      element('span', {
        className: `state ${experiment.ended ? 'completed' : 'running'}`,
        text: experiment.ended ? 'ended' : 'running',
      }),
    ),
    element('div', {
      className: 'meta',
      text: `${experiment.id.slice(0, 8)} · ${countsText(experiment.counts)}${best}`,
    }),
  );
  row.addEventListener('click', () => openComparison({ experimentId: experiment.id }));
  return row;
}

/** @param {ComparisonSpec} spec */
export function openComparison(spec) {
  closeJob();
  closeComparison();
  const hash = 'experimentId' in spec ? `#experiment=${spec.experimentId}` : `#compare=${spec.jobIds.join(',')}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  /** @type {Comparison} */
  const comparison = { ...spec, jobs: new Map(), timer: null };
  state.comparison = comparison;
  const panel = $('compare-panel');
  panel.hidden = false;
  panel.dataset.experimentId = 'experimentId' in spec ? spec.experimentId : '';
  $('compare-title').textContent =
    'experimentId' in spec ? `Experiment ${spec.experimentId.slice(0, 8)}` : `Comparing ${spec.jobIds.length} jobs`;
  $('compare-summary').textContent = '';
  $('experiment-cancel').hidden = true;
  $('experiment-delete').hidden = true;
  $('compare-legend').replaceChildren();
  const table = $('compare-runs', HTMLTableElement);
  table.tHead?.replaceChildren();
  table.tBodies[0]?.replaceChildren();
  drawChart($('compare-chart', HTMLCanvasElement), []);
  drawChart($('compare-accuracy-chart', HTMLCanvasElement), [], accuracyAxes);
  void refreshComparison(comparison);
}

export function closeComparison() {
  if (state.comparison?.timer) window.clearTimeout(state.comparison.timer);
  state.comparison = null;
  $('compare-panel').hidden = true;
}

/**
 * Reads the runs (GET /experiments/:id, or the jobs themselves), the jobs of those not yet ended,
 * and draws; again in 2 s until every run ended.
 * @param {Comparison} comparison
 */
async function refreshComparison(comparison) {
  /** @type {Run[]} */
  let runs;
  /** @type {string | null} */
  let bestId = null;
  if ('experimentId' in comparison) {
    const answer = await api.getExperiment(comparison.experimentId);
    if (state.comparison !== comparison) return;
    if (!answer.ok) {
      $('compare-summary').textContent = answer.body.error;
      return;
    }
    runs = experimentRuns(answer.body);
    bestId = answer.body.best?.id ?? null;
  } else {
    runs = comparison.jobIds.map((id) => ({ id, label: '' }));
  }
  const stale = runs.filter((run) => !isEnded(comparison.jobs.get(run.id)));
  const answers = await Promise.all(stale.map((run) => api.getJob(run.id)));
  if (state.comparison !== comparison) return;
  for (const answer of answers) if (answer.ok) comparison.jobs.set(answer.body.id, answer.body);
  if (!('experimentId' in comparison)) bestId = labelJobs(comparison, runs);
  showComparison(comparison, runs, bestId);
  if (runs.some((run) => !isEnded(comparison.jobs.get(run.id))))
    comparison.timer = window.setTimeout(() => void refreshComparison(comparison), 2000);
}

/** @param {Job | undefined} job */
const isEnded = (job) => job !== undefined && endedStates.includes(job.state);

/**
 * The experiment's runs, each labelled by its grid values, with its title, summary and buttons.
 * @param {Experiment} experiment
 * @returns {Run[]}
 */
function experimentRuns(experiment) {
  const runs = experiment.runs.map((run) => ({
    id: run.id,
    label: Object.entries(run.values)
      .map(([field, value]) => `${field}=${describeValue(value)}`)
      .join(', '),
  }));
  $('compare-title').textContent = `Experiment ${experiment.name ? `“${experiment.name}”` : experiment.id.slice(0, 8)}`;
  const best = experiment.best ? runs.find((run) => run.id === experiment.best?.id)?.label : 'none completed yet';
  $('compare-summary').textContent =
    `${experiment.runs.length} runs: ${countsText(experiment.counts)} · best by ${experiment.metric}: ${best}`;
  $('experiment-cancel').hidden = experiment.ended;
  $('experiment-delete').hidden = !experiment.ended;
  return runs;
}

/**
 * Jobs compared on their own: each labelled by the request fields in which they differ.
 * @param {Comparison} comparison
 * @param {Run[]} runs
 * @returns {string | null}  the best job's id
 */
function labelJobs(comparison, runs) {
  const jobs = runs.flatMap((run) => comparison.jobs.get(run.id) ?? []);
  const fields = differingFields(jobs);
  for (const run of runs) {
    const job = comparison.jobs.get(run.id);
    run.label =
      job && fields.length > 0
        ? fields.map((field) => `${field}=${describeValue(job.request[field])}`).join(', ')
        : run.id.slice(0, 8);
  }
  $('compare-summary').textContent =
    `${jobs.length} jobs · differing in ${fields.join(', ') || 'nothing but their ids'}`;
  return bestByAccuracy(jobs);
}

/**
 * @param {Comparison} comparison
 * @param {Run[]} runs
 * @param {string | null} bestId
 */
function showComparison(comparison, runs, bestId) {
  const table = $('compare-runs', HTMLTableElement);
  const head = ['', 'run', 'state', 'progress', 'test accuracy', 'test loss'];
  table.tHead?.replaceChildren(element('tr', {}, ...head.map((title) => element('th', { text: title }))));
  table.tBodies[0]?.replaceChildren(
    ...runs.map((run, index) => {
      const job = comparison.jobs.get(run.id);
      const row = element(
        'tr',
        {
          'data-testid': 'compare-run',
          'data-job-id': run.id,
          'data-state': job?.state ?? '',
          className: run.id === bestId ? 'best' : '',
          title: `job ${run.id}: open it`,
        },
        element('td', {}, swatch(colourOf(index))),
        element('td', { text: `${run.label}${run.id === bestId ? ' ★' : ''}` }),
        element('td', {}, element('span', { className: `state ${job?.state ?? ''}`, text: job?.state ?? '…' })),
        element('td', { text: percent(job ? progressFraction(job.progress, job.state) : 0) }),
        element('td', { text: job?.result ? percent(job.result.testAccuracy) : '–' }),
        element('td', { text: job?.result ? lossText(job.result.testLoss) : '–' }),
      );
      row.addEventListener('click', () => openJob(run.id));
      return row;
    }),
  );
  $('compare-legend').replaceChildren(
    ...runs.map((run, index) => swatch(colourOf(index), 'li', { 'data-testid': 'legend-item', text: run.label })),
  );
  /** @param {(job: Job) => Point[]} points */
  const curves = (points) =>
    runs.map((run, index) => {
      const job = comparison.jobs.get(run.id);
      return { points: job ? points(job) : [], colour: colourOf(index) };
    });
  drawChart(
    $('compare-chart', HTMLCanvasElement),
    curves((job) => trainingLoss(lossHistory(job))),
  );
  drawChart(
    $('compare-accuracy-chart', HTMLCanvasElement),
    curves((job) => testAccuracy(job.epochs)),
    accuracyAxes,
  );
}

export async function cancelExperiment() {
  const comparison = state.comparison;
  if (!comparison || !('experimentId' in comparison)) return;
  const answer = await api.cancelExperiment(comparison.experimentId);
  if (!answer.ok) $('compare-summary').textContent = answer.body.error;
  if (comparison.timer) window.clearTimeout(comparison.timer);
  await refreshComparison(comparison);
  void refreshJobs();
}

/** DELETE /experiments/:id, once confirmed: the experiment and its runs' jobs go; the panel closes. */
export async function deleteExperiment() {
  const comparison = state.comparison;
  if (
    !comparison ||
    !('experimentId' in comparison) ||
    !window.confirm(`Delete this experiment and its runs' jobs and models? This cannot be undone.`)
  )
    return;
  const answer = await api.deleteExperiment(comparison.experimentId);
  if (!answer.ok) {
    $('compare-summary').textContent = answer.body.error;
    return;
  }
  if (state.comparison === comparison) {
    closeComparison();
    history.replaceState(null, '', location.pathname);
  }
  void refreshExperiments();
  void refreshJobs();
}
