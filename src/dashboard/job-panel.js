// @ts-check
/**
 * The job panel: one job followed live through its events (state, progress, the loss curves, the
 * epoch table, the result), with its cancel and delete buttons.
 * @import { Job, EpochSummary, JobProgress, JobState } from '../contract/job.ts'
 * @import { FollowedJob } from './state.js'
 */
import * as api from './api.js';
import { drawChart } from './chart.js';
import { closeComparison } from './experiments.js';
import { trainingLoss, validationLoss } from './curves.js';
import { $, element, showError } from './dom.js';
import { earlyStopText, lossText, percent, progressFraction, progressText, settingsText } from './format.js';
import { followJob } from './job-events.js';
import { refreshJobs } from './job-list.js';
import { showResult } from './job-result.js';
import { baseName, datasetName, state } from './state.js';

/** @type {JobState[]} */
const activeStates = ['queued', 'running'];
/** @type {JobState[]} */
const endedStates = ['completed', 'failed', 'cancelled'];

const trainingColour = '#0a58ca';
const validationColour = '#c2185b';

const epochRows = () => $('epochs', HTMLTableElement).tBodies[0] ?? $('epochs', HTMLTableElement).createTBody();

/** @param {string} id */
export function openJob(id) {
  closeJob();
  closeComparison();
  if (location.hash !== `#job=${id}`) history.replaceState(null, '', `#job=${id}`);
  for (const row of document.querySelectorAll('[data-testid="job-row"]'))
    if (row instanceof HTMLElement) row.classList.toggle('selected', row.dataset.jobId === id);

  const panel = $('job-panel');
  panel.hidden = false;
  panel.dataset.jobId = id;
  $('job-id').textContent = id;
  $('job-settings').textContent = '';
  $('auto-choice').hidden = true;
  $('job-error').hidden = true;
  $('result').hidden = true;
  epochRows().replaceChildren();
  $('predictions').replaceChildren();
  $('predict-error').hidden = true;
  $('chart-key').hidden = true;
  /** @type {FollowedJob} */
  const job = {
    id,
    state: 'queued',
    model: null,
    logs: [],
    epochs: [],
    batchesPerEpoch: 0,
    events: null,
    drawPending: false,
  };
  state.job = job;
  drawJobChart(job);

  void api.getJob(id).then((answer) => {
    if (state.job !== job) return;
    if (!answer.ok) {
      showError($('job-error'), answer.body.error);
      return;
    }
    const { request } = answer.body;
    job.model = request.model;
    $('job-settings').textContent = settingsText(request, datasetName(request.dataset), baseName);
    showAutoChoice(request.autoChoice);
    // The events, which may have come first, are newer.
    if (job.logs.length === 0 && job.epochs.length === 0) {
      showState(answer.body.state);
      showProgress(answer.body.progress, answer.body.state);
    }
  });
  job.events = follow(job);
}

/**
 * The job's events, each handled while the panel still shows this job.
 * @param {FollowedJob} job
 */
function follow(job) {
  /**
   * @template D
   * @param {(data: D) => void} handle
   * @returns {(data: D) => void}
   */
  const whileShown = (handle) => (data) => {
    if (state.job === job) handle(data);
  };
  /** @param {JobProgress} progress */
  const progressed = (progress) => {
    job.batchesPerEpoch = progress.batchesPerEpoch;
    showProgress(progress, job.state);
  };
  return followJob(job.id, {
    state: whileShown((data) => {
      job.state = data.state;
      showState(data.state);
    }),
    // Its worker stopped: what came after the checkpoint (or the start) is trained again.
    rewind: whileShown((data) => {
      job.logs.length = Math.min(job.logs.length, data.logLines);
      job.epochs.length = Math.min(job.epochs.length, data.epochs);
      const rows = epochRows();
      while (rows.rows.length > data.epochs) rows.deleteRow(-1);
      progressed(data.progress);
      scheduleDraw(job);
    }),
    progress: whileShown((data) => progressed(data.progress)),
    log: whileShown((data) => {
      job.logs.push(data.line);
      progressed(data.progress);
      scheduleDraw(job);
    }),
    epoch: whileShown((data) => {
      job.epochs.push(data.summary);
      addEpoch(data.summary);
      if (data.summary.validationLoss !== undefined) $('chart-key').hidden = false;
      progressed(data.progress);
      scheduleDraw(job);
    }),
    end: whileShown((data) => {
      job.events?.close();
      job.state = data.state;
      showState(data.state);
      if (data.result) {
        showResult(data.result);
        $('job-progress-bar').style.width = '100%';
        const stopped = earlyStopText(data.result);
        if (stopped) $('job-progress').textContent = stopped;
      }
      if (data.error) showError($('job-error'), data.error.message);
      void refreshJobs();
    }),
  });
}

/**
 * What `model: auto` picked and why, one line a choice; nothing for a job that named its model.
 * @param {Job['request']['autoChoice']} choice
 */
function showAutoChoice(choice) {
  $('auto-choice').hidden = choice === null;
  $('auto-reasons').replaceChildren(
    ...(choice?.reasons ?? []).map((reason) => element('li', { 'data-testid': 'auto-reason', text: reason })),
  );
}

/** @param {JobState} jobState */
function showState(jobState) {
  const badge = $('job-state');
  badge.textContent = jobState;
  badge.className = `state ${jobState}`;
  $('job-panel').dataset.state = jobState;
  $('cancel').hidden = !activeStates.includes(jobState);
  $('delete').hidden = !endedStates.includes(jobState);
  $('predict').hidden = jobState !== 'completed';
}

/**
 * @param {JobProgress} progress
 * @param {JobState} jobState
 */
function showProgress(progress, jobState) {
  $('job-progress-bar').style.width = percent(progressFraction(progress, jobState));
  $('job-progress').textContent = progressText(progress, jobState);
}

/** @param {EpochSummary} summary */
function addEpoch(summary) {
  /**
   * @param {number | undefined} value
   * @param {(value: number) => string} format
   */
  const optional = (value, format) => (value === undefined ? '–' : format(value));
  epochRows().append(
    element(
      'tr',
      { 'data-testid': 'epoch-row' },
      element('td', { text: String(summary.epoch) }),
      element('td', { text: lossText(summary.loss) }),
      element('td', { 'data-testid': 'epoch-validation-loss', text: optional(summary.validationLoss, lossText) }),
      element('td', {
        'data-testid': 'epoch-validation-accuracy',
        text: optional(summary.validationAccuracy, percent),
      }),
      element('td', { text: percent(summary.testAccuracy) }),
      element('td', { 'data-testid': 'epoch-test-loss', text: optional(summary.testLoss, lossText) }),
      element('td', {
        'data-testid': 'epoch-learning-rate',
        text: optional(summary.learningRate, (rate) => String(Number(rate.toPrecision(4)))),
      }),
      element('td', { text: summary.seconds.toFixed(1) }),
      element('td', { text: Math.round(summary.imagesPerSecond).toLocaleString() }),
    ),
  );
}

/**
 * The training loss by batch, and the validation loss at each epoch's end.
 * @param {FollowedJob} job
 */
function drawJobChart(job) {
  drawChart($('loss-chart', HTMLCanvasElement), [
    { points: trainingLoss(job), colour: trainingColour },
    { points: validationLoss(job), colour: validationColour },
  ]);
}

/**
 * Redraws at the next frame, once however many events came before it.
 * @param {FollowedJob} job
 */
function scheduleDraw(job) {
  if (job.drawPending) return;
  job.drawPending = true;
  requestAnimationFrame(() => {
    job.drawPending = false;
    if (state.job === job) drawJobChart(job);
  });
}

/** The open job's chart again, at the canvas's new size. */
export function redrawJobChart() {
  if (state.job) scheduleDraw(state.job);
}

/** Closes the job panel and stops following its job's events. */
export function closeJob() {
  state.job?.events?.close();
  state.job = null;
  $('job-panel').hidden = true;
}

export async function cancelJob() {
  const id = state.job?.id;
  if (!id) return;
  const answer = await api.cancelJob(id);
  if (!answer.ok) showError($('job-error'), answer.body.error);
  void refreshJobs();
}

/** DELETE /jobs/:id, once confirmed: the job, its logs and its model go; the panel closes. */
export async function deleteJob() {
  const id = state.job?.id;
  if (!id || !window.confirm(`Delete job ${id.slice(0, 8)}, its history and its model? This cannot be undone.`)) return;
  const answer = await api.deleteJob(id);
  if (!answer.ok) {
    showError($('job-error'), answer.body.error);
    return;
  }
  if (state.job?.id === id) {
    closeJob();
    history.replaceState(null, '', location.pathname);
  }
  void refreshJobs();
}
