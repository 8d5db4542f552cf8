// @ts-check
/**
 * The dashboard: plain DOM code over the public HTTP API, as native ES modules with no build
 * step. This entry module wires the page's controls to the panels and starts the pollers.
 */
import { apiKey, setApiKey } from './api.js';
import { checkHealth, loadCatalog } from './catalog.js';
import { wireBaseForm } from './bases.js';
import { wireDatasetForm } from './dataset-upload.js';
import { $ } from './dom.js';
import { cancelExperiment, deleteExperiment, openComparison, refreshExperiments } from './experiments.js';
import { fineTuneFrom, wireJobForm } from './job-form.js';
import { refreshJobs } from './job-list.js';
import { cancelJob, deleteJob, openJob, redrawJobChart } from './job-panel.js';
import { wirePredictions } from './predictions.js';
import { state } from './state.js';

async function start() {
  wireJobForm();
  wireDatasetForm();
  wireBaseForm();
  wirePredictions();
  $('fine-tune').addEventListener('click', () => {
    if (state.job?.model) fineTuneFrom(state.job.id, state.job.model);
  });
  $('cancel').addEventListener('click', () => void cancelJob());
  $('delete').addEventListener('click', () => void deleteJob());
  $('experiment-cancel').addEventListener('click', () => void cancelExperiment());
  $('experiment-delete').addEventListener('click', () => void deleteExperiment());
  $('compare').addEventListener('click', () => openComparison({ jobIds: [...state.ticked] }));
  const keyInput = $('api-key', HTMLInputElement);
  keyInput.value = apiKey();
  keyInput.addEventListener('change', () => {
    setApiKey(keyInput.value.trim());
    void loadCatalog().then(refreshJobs);
  });
  await Promise.all([loadCatalog(), refreshJobs(), refreshExperiments(), checkHealth()]);
  const [, kind, ids] = /^#(job|experiment|compare)=([\w,-]+)$/.exec(location.hash) ?? [];
  if (kind === 'job' && ids) openJob(ids);
  if (kind === 'experiment' && ids) openComparison({ experimentId: ids });
  if (kind === 'compare' && ids) openComparison({ jobIds: ids.split(',') });
  window.setInterval(() => void refreshJobs(), 2000);
  window.setInterval(() => void refreshExperiments(), 2000);
  window.setInterval(() => void checkHealth(), 10000);
  window.addEventListener('resize', redrawJobChart);
  document.body.dataset.ready = 'true';
}

void start();
