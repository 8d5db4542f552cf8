/* global sessionStorage, document, window, location, history, CSS, EventSource, fetch, FormData, URL, HTMLInputElement, requestAnimationFrame, XMLHttpRequest */
/**
 * The dashboard: plain DOM code over the public HTTP API (GET /jobs, POST /jobs, GET /jobs/:id,
 * GET /jobs/:id/events, POST /jobs/:id/cancel, POST /jobs/:id/predict, GET /models, /datasets, /health,
 * POST /datasets, GET and DELETE /datasets/:id, GET /experiments, GET /experiments/:id,
 * POST /experiments/:id/cancel).
 */

const $ = (testId, root = document) => root.querySelector(`[data-testid="${testId}"]`);

const numberFields = [
  'epochs',
  'batchSize',
  'learningRate',
  'momentum',
  'weightDecay',
  'seed',
  'trainLimit',
  'testLimit',
  'logEvery',
  'validationSplit',
];
const activeStates = ['queued', 'running'];
const endedStates = ['completed', 'failed', 'cancelled'];
const percent = (fraction) => `${(fraction * 100).toFixed(1)}%`;

/** Data set names by the id jobs name them by (an uploaded data set's is a UUID), from GET /datasets. */
const datasetNames = new Map();
const datasetName = (id) => datasetNames.get(id) ?? id;

/** The API key, when the service wants one (kept for this browser tab only). */
const apiKey = () => sessionStorage.getItem('apiKey') ?? '';

/** fetch + JSON: `{ status, body }`; a network failure becomes status 0. */
async function api(path, init = {}) {
  try {
    const headers = { ...init.headers, ...(apiKey() ? { authorization: `Bearer ${apiKey()}` } : {}) };
    const response = await fetch(path, { ...init, headers });
    if (response.status === 401) $('api-key').setAttribute('aria-invalid', 'true');
    else if (path !== '/health') $('api-key').removeAttribute('aria-invalid');
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = { error: text };
    }
    return { status: response.status, body };
  } catch (error) {
    return { status: 0, body: { error: `the service is unreachable (${error.message})` } };
  }
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else if (name === 'className') node.className = value;
    else if (name === 'style') Object.assign(node.style, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// ---------------------------------------------------------------- catalog and health

async function loadCatalog() {
  const [models, datasets] = await Promise.all([api('/models'), api('/datasets')]);
  const modelSelect = $('field-model');
  const datasetSelect = $('field-dataset');
  if (models.status === 401 || datasets.status === 401)
    $('form-error').textContent = 'This service wants an API key: enter it at the top.';
  if (models.status !== 200 || datasets.status !== 200) return;
  $('form-error').textContent = '';
  const [chosenModel, chosenDataset] = [modelSelect.value, datasetSelect.value];
  modelSelect.replaceChildren();
  datasetSelect.replaceChildren();
  for (const model of models.body?.models ?? [])
    modelSelect.append(element('option', { value: model.name, text: model.name }));
  for (const dataset of datasets.body?.datasets ?? []) {
    datasetNames.set(dataset.id, dataset.name);
    const label = `${dataset.name} (${dataset.shape.height}×${dataset.shape.width}×${dataset.shape.channels}${dataset.builtIn ? '' : `, ${dataset.classNames.length} classes, yours`}${dataset.availableLocally ? '' : ', will download'})`;
    datasetSelect.append(element('option', { value: dataset.id, text: label }));
  }
  if (chosenModel) modelSelect.value = chosenModel;
  if ([...datasetSelect.options].some((option) => option.value === chosenDataset)) datasetSelect.value = chosenDataset;
  showDatasets(datasets.body);
}

async function checkHealth() {
  const badge = $('health');
  const { status, body } = await api('/health');
  badge.className = `health ${status === 200 ? 'ok' : 'down'}`;
  badge.textContent =
    status === 200
      ? `up · ${body.backend}${body.device?.kind === 'gpu' ? ` (${body.device.name})` : ''}`
      : status === 0
        ? 'unreachable'
        : `Redis ${body?.redis ?? 'down'}`;
}

// ---------------------------------------------------------------- the form

function clearErrors(form) {
  for (const span of form.querySelectorAll('[data-error-for]')) span.textContent = '';
  for (const field of form.querySelectorAll('[aria-invalid]')) field.removeAttribute('aria-invalid');
  $('form-error').textContent = '';
}

function requestFromForm(form) {
  const data = new FormData(form);
  const body = { model: data.get('model'), dataset: data.get('dataset') };
  for (const name of numberFields) {
    const raw = String(data.get(name) ?? '').trim();
    // A number input hands over '' for text it can't parse: send it anyway, so the server says why.
    const input = form.elements.namedItem(name);
    if (raw === '' && !(input instanceof HTMLInputElement && input.validity.badInput)) continue;
    body[name] = raw === '' ? 'not a number' : Number(raw);
  }
  const augment = data.get('augment');
  if (augment === 'true' || augment === 'false') body.augment = augment === 'true';
  const initFrom = String(data.get('initFrom') ?? '').trim();
  if (initFrom) body.initFrom = initFrom;
  if (data.get('trainLayers') === 'dense') body.trainLayers = 'dense';
  return body;
}

async function submitJob(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = $('submit');
  clearErrors(form);
  button.disabled = true;
  try {
    const { status, body } = await api('/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(requestFromForm(form)),
    });
    if (status === 201) {
      await refreshJobs();
      openJob(body.id);
      return;
    }
    const unplaced = [];
    for (const detail of body?.details ?? []) {
      const field = detail.path.split('.')[0];
      const span = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
      if (span) {
        span.textContent = span.textContent ? `${span.textContent}; ${detail.message}` : detail.message;
        form.elements.namedItem(field)?.setAttribute('aria-invalid', 'true');
      } else {
        unplaced.push(detail.path ? `${detail.path}: ${detail.message}` : detail.message);
      }
    }
    if (unplaced.length > 0 || !body?.details?.length)
      $('form-error').textContent = unplaced.length > 0 ? unplaced.join('; ') : (body?.error ?? `HTTP ${status}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- data sets

/** The client's own data sets from GET /datasets: ready ones (with the built-ins) and those processing or failed. */
function showDatasets(catalog) {
  const own = [
    ...(catalog?.uploads ?? []).map((upload) => ({
      id: upload.id,
      name: upload.name,
      state: upload.state,
      detail: upload.state === 'failed' ? (upload.error?.message ?? '') : (upload.progress?.phase ?? ''),
    })),
    ...(catalog?.datasets ?? [])
      .filter((dataset) => !dataset.builtIn)
      .map((dataset) => ({
        id: dataset.id,
        name: dataset.name,
        state: 'ready',
        detail: `${dataset.classNames.length} classes · ${dataset.trainSize}/${dataset.testSize} images · ${dataset.shape.height}×${dataset.shape.width}×${dataset.shape.channels}`,
      })),
  ];
  $('datasets').replaceChildren(
    ...own.map((dataset) => {
      const remove = element('button', {
        type: 'button',
        className: 'danger',
        'data-testid': 'dataset-delete',
        text: 'Delete',
      });
      remove.addEventListener('click', (event) => {
        event.stopPropagation();
        void deleteDataset(dataset.id);
      });
      const row = element(
        'li',
        { 'data-testid': 'dataset-row', 'data-dataset-id': dataset.id, 'data-state': dataset.state, title: dataset.id },
        element(
          'div',
          { className: 'row' },
          element('span', { className: 'name', text: dataset.name }),
          element('span', { className: `state ${dataset.state}`, text: dataset.state }),
        ),
        element('div', { className: 'row' }, element('span', { className: 'meta', text: dataset.detail }), remove),
      );
      row.addEventListener('click', () => void showReport(dataset.id));
      return row;
    }),
  );
}

/** An uploaded data set's report: classes and their images per split, what was skipped and why, warnings. */
async function showReport(id) {
  const { status, body } = await api(`/datasets/${encodeURIComponent(id)}`);
  const panel = $('dataset-report');
  panel.hidden = false;
  if (status !== 200) {
    panel.replaceChildren(element('p', { className: 'error', text: body?.error ?? `HTTP ${status}` }));
    return body;
  }
  const parts = [element('h4', { text: `${body.name} · ${body.state}` })];
  if (body.state === 'failed')
    parts.push(element('p', { className: 'error', 'data-testid': 'dataset-failure', text: body.error?.message ?? '' }));
  const report = body.report;
  if (report) {
    const { splits, shape } = report;
    parts.push(
      element('p', {
        className: 'muted',
        text: `${shape.height}×${shape.width}×${shape.channels} ${report.imageKind} images · test split ${report.testSplit === 'folder' ? 'from its test/ folder' : 'held out'} · ${(report.bytes / 1024).toFixed(0)} KiB`,
      }),
    );
    const head = element(
      'tr',
      {},
      element('th', { text: 'class' }),
      element('th', { text: 'train' }),
      element('th', { text: 'test' }),
      ...(splits.val ? [element('th', { text: 'val' })] : []),
    );
    const rows = report.classNames.map((name, index) =>
      element(
        'tr',
        { 'data-testid': 'dataset-class' },
        element('th', { text: name }),
        element('td', { text: String(splits.train.perClass[index]) }),
        element('td', { text: String(splits.test.perClass[index]) }),
        ...(splits.val ? [element('td', { text: String(splits.val.perClass[index]) })] : []),
      ),
    );
    parts.push(element('table', {}, element('thead', {}, head), element('tbody', {}, ...rows)));
    if (report.skipped.count > 0) {
      const reasons = Object.entries(report.skipped.byReason)
        .filter(([, count]) => count > 0)
        .map(([reason, count]) => `${count} ${reason}`);
      parts.push(
        element('p', {
          'data-testid': 'dataset-skipped',
          text: `Skipped ${report.skipped.count} file${report.skipped.count === 1 ? '' : 's'}: ${reasons.join(', ')}`,
        }),
      );
    }
    for (const warning of report.warnings)
      parts.push(element('p', { className: 'warning', 'data-testid': 'dataset-warning', text: `⚠ ${warning}` }));
    const use = element('button', {
      type: 'button',
      className: 'secondary',
      'data-testid': 'dataset-use',
      text: 'Train on it',
    });
    use.addEventListener('click', () => {
      $('field-dataset').value = body.id;
      $('job-form').scrollIntoView({ behavior: 'smooth' });
    });
    parts.push(use);
  }
  panel.replaceChildren(...parts);
  return body;
}

async function deleteDataset(id) {
  const { status, body } = await api(`/datasets/${encodeURIComponent(id)}`, { method: 'DELETE' });
  $('dataset-error').textContent = status === 204 ? '' : (body?.error ?? `HTTP ${status}`);
  if (status === 204) $('dataset-report').hidden = true;
  await loadCatalog();
}

/** POST /datasets as multipart, with the upload's progress; then the processing's, until it is ready or failed. */
function uploadDataset(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const file = $('dataset-input').files?.[0];
  $('dataset-error').textContent = '';
  if (!file) {
    $('dataset-error').textContent = 'Choose an archive first.';
    return;
  }
  const data = new FormData();
  for (const [name, value] of new FormData(form))
    if (String(value).trim() !== '' && !(value instanceof window.File)) data.append(name, String(value).trim());
  data.append('archive', file, file.name);
  const bar = $('upload-progress-bar');
  $('upload-progress').hidden = false;
  bar.style.width = '0%';
  $('upload').disabled = true;
  const request = new XMLHttpRequest();
  request.open('POST', '/datasets');
  if (apiKey()) request.setRequestHeader('authorization', `Bearer ${apiKey()}`);
  request.upload.addEventListener('progress', (progress) => {
    if (!progress.lengthComputable) return;
    bar.style.width = percent(progress.loaded / progress.total);
    $('upload-status').textContent =
      `Uploading ${(progress.loaded / 1048576).toFixed(1)} of ${(progress.total / 1048576).toFixed(1)} MB`;
  });
  const done = () => {
    $('upload').disabled = false;
    $('upload-progress').hidden = true;
  };
  request.addEventListener('error', () => {
    done();
    $('dataset-error').textContent = 'the upload failed: the service is unreachable';
  });
  request.addEventListener('load', () => {
    done();
    let body;
    try {
      body = JSON.parse(request.responseText);
    } catch {
      body = { error: request.responseText };
    }
    if (request.status !== 202) {
      $('dataset-error').textContent = body?.error ?? `HTTP ${request.status}`;
      return;
    }
    form.reset();
    $('dataset-file').textContent = 'A zip, tar or tar.gz with a folder per class';
    void followProcessing(body.id);
  });
  request.send(data);
}

async function followProcessing(id) {
  await loadCatalog();
  for (;;) {
    const { status, body } = await api(`/datasets/${encodeURIComponent(id)}`);
    if (status !== 200) return;
    const progress = body.progress;
    $('upload-status').textContent =
      body.state === 'processing'
        ? `Processing${progress && progress.done > 0 ? `: ${progress.phase} ${progress.done}${progress.total ? ` of ${progress.total}` : ''}` : '…'}`
        : `${body.name} is ${body.state}`;
    if (body.state !== 'processing') break;
    await new Promise((resolve) => window.setTimeout(resolve, 500));
  }
  await loadCatalog();
  await showReport(id);
}

// ---------------------------------------------------------------- the jobs list

let selectedId = null;
/** Jobs ticked in the list, to compare side by side. */
const ticked = new Set();

function updateCompareButton() {
  const button = $('compare');
  button.disabled = ticked.size < 2;
  button.textContent = ticked.size < 2 ? 'Compare selected' : `Compare ${ticked.size}`;
}

async function refreshJobs() {
  const { status, body } = await api('/jobs?limit=50');
  if (status !== 200) return;
  const list = $('jobs');
  const rows = body.jobs.map((job) => {
    const fraction = job.state === 'completed' ? 1 : job.progress.fraction;
    const accuracy = job.result ? ` · ${percent(job.result.testAccuracy)}` : '';
    const row = element(
      'li',
      {
        'data-testid': 'job-row',
        'data-job-id': job.id,
        'data-state': job.state,
        className: job.id === selectedId ? 'selected' : '',
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
        text: `${job.id.slice(0, 8)} · ${job.request.epochs} epoch${job.request.epochs === 1 ? '' : 's'} · ${new Date(job.createdAt).toLocaleString()}${accuracy}${job.experimentId ? ` · experiment ${job.experimentId.slice(0, 8)}` : ''}`,
      }),
      element(
        'div',
        { className: 'progress' },
        element('div', { className: 'bar', style: { width: percent(fraction) } }),
      ),
    );
    row.addEventListener('click', () => openJob(job.id));
    return row;
  });
  list.replaceChildren(...rows);
  $('jobs-empty').hidden = rows.length > 0;
}

function tickBox(id) {
  const box = element('input', { type: 'checkbox', 'data-testid': 'job-select', 'aria-label': `compare job ${id}` });
  box.checked = ticked.has(id);
  box.addEventListener('click', (event) => event.stopPropagation());
  box.addEventListener('change', () => {
    if (box.checked) ticked.add(id);
    else ticked.delete(id);
    updateCompareButton();
  });
  return box;
}

async function refreshExperiments() {
  const { status, body } = await api('/experiments?limit=20');
  if (status !== 200) return;
  const rows = body.experiments.map((experiment) => {
    const counts = Object.entries(experiment.counts)
      .filter(([, count]) => count > 0)
      .map(([state, count]) => `${count} ${state}`)
      .join(' · ');
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
      element('div', { className: 'meta', text: `${experiment.id.slice(0, 8)} · ${counts}${best}` }),
    );
    row.addEventListener('click', () => openComparison({ experimentId: experiment.id }));
    return row;
  });
  $('experiments').replaceChildren(...rows);
  $('experiments-empty').hidden = rows.length > 0;
}

// ---------------------------------------------------------------- the job panel

let source = null;
let current = null;

function showState(state) {
  const badge = $('job-state');
  badge.textContent = state;
  badge.className = `state ${state}`;
  $('job-panel').dataset.state = state;
  $('cancel').hidden = !activeStates.includes(state);
  $('delete').hidden = !endedStates.includes(state);
  $('predict').hidden = state !== 'completed';
}

function showProgress(progress, state) {
  const fraction = state === 'completed' ? 1 : progress.fraction;
  $('job-progress-bar').style.width = percent(fraction);
  $('job-progress').textContent =
    `epoch ${progress.epoch}/${progress.epochs} · batch ${progress.batch}/${progress.batchesPerEpoch} · ${percent(fraction)}`;
}

function addEpoch(summary) {
  const body = $('epochs').tBodies[0];
  const optional = (value, format) => (value === undefined ? '–' : format(value));
  body.append(
    element(
      'tr',
      { 'data-testid': 'epoch-row' },
      element('td', { text: String(summary.epoch) }),
      element('td', { text: summary.loss.toFixed(4) }),
      element('td', {
        'data-testid': 'epoch-validation-loss',
        text: optional(summary.validationLoss, (loss) => loss.toFixed(4)),
      }),
      element('td', {
        'data-testid': 'epoch-validation-accuracy',
        text: optional(summary.validationAccuracy, percent),
      }),
      element('td', { text: percent(summary.testAccuracy) }),
      element('td', { 'data-testid': 'epoch-test-loss', text: optional(summary.testLoss, (loss) => loss.toFixed(4)) }),
      element('td', {
        'data-testid': 'epoch-learning-rate',
        text: optional(summary.learningRate, (rate) => String(Number(rate.toPrecision(4)))),
      }),
      element('td', { text: summary.seconds.toFixed(1) }),
      element('td', { text: Math.round(summary.imagesPerSecond).toLocaleString() }),
    ),
  );
}

/** A heat-map colour for a fraction in [0, 1]: white to deep blue, and the text colour that reads on it. */
function heat(fraction) {
  const lightness = 98 - fraction * 62;
  return { background: `hsl(214, 80%, ${lightness}%)`, color: lightness < 60 ? '#fff' : '#1b1f24' };
}

function showResult(result) {
  $('result').hidden = false;
  $('test-accuracy').textContent = percent(result.testAccuracy);
  $('result-detail').textContent =
    `${result.correct.toLocaleString()} of ${result.total.toLocaleString()} test images · loss ${result.testLoss.toFixed(4)} · ${result.params.toLocaleString()} parameters · ${result.trainSeconds.toFixed(1)} s on ${result.backend}${result.device?.kind === 'gpu' ? ` (${result.device.name})` : ''}${result.replicas > 1 ? ` · ${result.replicas} threads` : ''}`;

  const names = result.classNames;
  const matrix = $('confusion-matrix');
  const head = element(
    'tr',
    {},
    element('th', { className: 'axis', text: 'true \\ predicted' }),
    ...names.map((name) => element('th', { text: name, scope: 'col' })),
  );
  const rows = result.confusionMatrix.map((counts, row) => {
    const total = counts.reduce((sum, count) => sum + count, 0) || 1;
    return element(
      'tr',
      {},
      element('th', { text: names[row], scope: 'row' }),
      ...counts.map((count, column) =>
        element('td', {
          'data-testid': 'confusion-cell',
          text: String(count),
          title: `true ${names[row]}, predicted ${names[column]}: ${count} (${percent(count / total)} of ${names[row]})`,
          style: heat(count / total),
        }),
      ),
    );
  });
  matrix.replaceChildren(element('thead', {}, head), element('tbody', {}, ...rows));

  // Jobs trained before precision and F1 were recorded have only the per-class accuracy (recall).
  const metrics = result.perClass;
  const classHead = element(
    'tr',
    {},
    element('th', { text: 'Class', scope: 'col' }),
    element('th', { text: 'Accuracy (recall)', scope: 'col' }),
    ...(metrics ? ['Precision', 'F1', 'Support'].map((name) => element('th', { text: name, scope: 'col' })) : []),
  );
  const classRows = result.perClassAccuracy.map((accuracy, index) =>
    element(
      'tr',
      { 'data-testid': 'per-class-row' },
      element('th', { text: names[index], scope: 'row' }),
      element(
        'td',
        { className: 'recall' },
        element('span', { className: 'bar', style: { width: `${accuracy * 8}rem` } }),
        percent(accuracy),
      ),
      ...(metrics
        ? [
            element('td', { text: percent(metrics[index].precision) }),
            element('td', { text: percent(metrics[index].f1) }),
            element('td', { text: String(metrics[index].support) }),
          ]
        : []),
    ),
  );
  const macro = result.macro
    ? [
        element(
          'tfoot',
          {},
          element(
            'tr',
            { 'data-testid': 'per-class-macro' },
            element('th', { text: 'macro average', scope: 'row' }),
            element('td', { className: 'recall', text: percent(result.macro.recall) }),
            element('td', { text: percent(result.macro.precision) }),
            element('td', { text: percent(result.macro.f1) }),
            element('td'),
          ),
        ),
      ]
    : [];
  $('per-class').replaceChildren(element('thead', {}, classHead), element('tbody', {}, ...classRows), ...macro);
}

function openJob(id) {
  if (source) source.close();
  source = null;
  closeComparison();
  selectedId = id;
  if (location.hash !== `#job=${id}`) history.replaceState(null, '', `#job=${id}`);
  for (const row of document.querySelectorAll('[data-testid="job-row"]'))
    row.classList.toggle('selected', row.dataset.jobId === id);

  const panel = $('job-panel');
  panel.hidden = false;
  panel.dataset.jobId = id;
  $('job-id').textContent = id;
  $('job-settings').textContent = '';
  $('job-error').hidden = true;
  $('result').hidden = true;
  $('epochs').tBodies[0].replaceChildren();
  $('predictions').replaceChildren();
  $('predict-error').hidden = true;
  // `validation`: one point per epoch that validated, at the epoch's last batch.
  const state = { id, points: [], validation: [], state: 'queued' };
  $('chart-key').hidden = true;
  current = state;
  drawChart($('loss-chart'), jobSeries(state));

  void api(`/jobs/${id}`).then(({ status, body }) => {
    if (current !== state) return;
    if (status !== 200) {
      $('job-error').hidden = false;
      $('job-error').textContent = body?.error ?? `HTTP ${status}`;
      return;
    }
    const r = body.request;
    $('job-settings').textContent =
      `${r.model} on ${datasetName(r.dataset)}${r.initFrom ? `, fine-tuned from job ${r.initFrom.slice(0, 8)}${r.trainLayers === 'dense' ? ' (dense layers only)' : ''}` : ''} · ${r.epochs} epoch${r.epochs === 1 ? '' : 's'} · batch ${r.batchSize} · lr ${r.learningRate} · momentum ${r.momentum} · weight decay ${r.weightDecay} · augment ${r.augment ? 'on' : 'off'} · seed ${r.seed}${r.trainLimit ? ` · train ${r.trainLimit}` : ''}${r.testLimit ? ` · test ${r.testLimit}` : ''} · log every ${r.logEvery}`;
    if (state.points.length === 0 && $('epochs').tBodies[0].rows.length === 0) {
      showState(body.state);
      showProgress(body.progress, body.state);
    }
  });

  // The stream replays every event from the job's creation, then follows it live.
  const token = apiKey() ? `?access_token=${encodeURIComponent(apiKey())}` : '';
  const events = new EventSource(`/jobs/${encodeURIComponent(id)}/events${token}`);
  source = events;
  const on = (type, handle) =>
    events.addEventListener(type, (message) => {
      if (current === state) handle(JSON.parse(message.data));
    });
  on('state', (data) => {
    state.state = data.state;
    showState(data.state);
  });
  // Its worker stopped: what came after the checkpoint (or the start) is trained again.
  on('rewind', (data) => {
    state.points.length = Math.min(state.points.length, data.logLines);
    state.validation.length = Math.min(state.validation.length, data.epochs);
    const rows = $('epochs').tBodies[0];
    while (rows.rows.length > data.epochs) rows.deleteRow(-1);
    showProgress(data.progress, state.state);
    scheduleDraw(state);
  });
  on('progress', (data) => showProgress(data.progress, state.state));
  on('log', (data) => {
    state.points.push({
      x: (data.line.epoch - 1) * data.progress.batchesPerEpoch + data.line.batch,
      y: data.line.loss,
    });
    showProgress(data.progress, state.state);
    scheduleDraw(state);
  });
  on('epoch', (data) => {
    addEpoch(data.summary);
    if (data.summary.validationLoss !== undefined) {
      state.validation.push({ x: data.summary.epoch * data.progress.batchesPerEpoch, y: data.summary.validationLoss });
      $('chart-key').hidden = false;
      scheduleDraw(state);
    }
    showProgress(data.progress, state.state);
  });
  on('end', (data) => {
    events.close();
    state.state = data.state;
    showState(data.state);
    if (data.result) {
      showResult(data.result);
      $('job-progress-bar').style.width = '100%';
      const stopping = data.result.earlyStopping;
      if (stopping?.stoppedAfterEpoch)
        $('job-progress').textContent =
          `stopped early after epoch ${stopping.stoppedAfterEpoch}: no better ${stopping.metric} · kept epoch ${stopping.keptEpoch}'s weights`;
    }
    if (data.error) {
      $('job-error').hidden = false;
      $('job-error').textContent = data.error.message;
    }
    void refreshJobs();
  });
}

const jobColour = '#0a58ca';
const validationColour = '#c2185b';

/** A job's curves: the training loss by batch, and the validation loss at each epoch's end. */
function jobSeries(state) {
  return [
    { points: state.points, colour: jobColour },
    { points: state.validation, colour: validationColour },
  ];
}
let drawPending = false;
function scheduleDraw(state) {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    if (current === state) drawChart($('loss-chart'), jobSeries(state));
  });
}

/** "Nice" tick values covering [min, max]. */
function ticks(min, max, count) {
  const span = max - min || 1;
  const step0 = span / count;
  const power = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= step0) ?? step0;
  const values = [];
  for (let value = Math.ceil(min / step) * step; value <= max + step * 1e-9; value += step)
    values.push(Number(value.toPrecision(12)));
  return values;
}

/** What a chart's axes say, and what it shows before it has a point. */
const lossAxes = {
  x: 'batch',
  y: 'loss',
  empty: 'waiting for the first loss log line…',
  xFrom: 0,
  wholeX: false,
  yText: String,
};
const accuracyAxes = {
  x: 'epoch',
  y: 'accuracy',
  empty: 'waiting for the first epoch to end…',
  xFrom: 1,
  wholeX: true,
  yText: (fraction) => `${Number((fraction * 100).toPrecision(3))}%`,
};

/**
 * Line charts of `series` ({points: [{x, y}], colour}) on `canvas`, on shared axes, sized to its
 * CSS box; the points drawn go to data-points and the series that have any to data-series.
 */
function drawChart(canvas, series, axes = lossAxes) {
  const drawn = series.filter((one) => one.points.length > 0);
  const points = drawn.flatMap((one) => one.points);
  canvas.dataset.points = String(points.length);
  canvas.dataset.series = String(drawn.length);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 640;
  const height = canvas.clientHeight || 260;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const context = canvas.getContext('2d');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.font = '12px system-ui, sans-serif';
  const pad = { left: 60, right: 16, top: 14, bottom: 34 };
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;

  if (points.length === 0) {
    context.fillStyle = '#57606a';
    context.textAlign = 'center';
    context.fillText(axes.empty, width / 2, height / 2);
    return;
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const xMin = Math.min(axes.xFrom, ...xs);
  const xMax = Math.max(...xs, xMin + 1);
  // From 0, unless every loss stays in a narrow band (curves to tell apart): then the band, with a margin.
  const [low, high] = [Math.min(...ys), Math.max(...ys)];
  const narrow = low > high / 2 && high > low;
  const yMin = narrow ? Math.max(0, low - (high - low) * 0.1) : 0;
  const yMax = narrow ? high + (high - low) * 0.1 : high * 1.05 || 1;
  const px = (x) => pad.left + ((x - xMin) / (xMax - xMin)) * plotWidth;
  const py = (y) => pad.top + (1 - (y - yMin) / (yMax - yMin)) * plotHeight;

  context.strokeStyle = '#e1e4e8';
  context.fillStyle = '#57606a';
  context.lineWidth = 1;
  context.textAlign = 'right';
  context.textBaseline = 'middle';
  for (const value of ticks(yMin, yMax, 5)) {
    const y = Math.round(py(value)) + 0.5;
    context.beginPath();
    context.moveTo(pad.left, y);
    context.lineTo(width - pad.right, y);
    context.stroke();
    context.fillText(axes.yText(value), pad.left - 6, y);
  }
  context.textAlign = 'center';
  context.textBaseline = 'top';
  for (const value of ticks(xMin, xMax, 6))
    if (!axes.wholeX || Number.isInteger(value)) context.fillText(String(value), px(value), height - pad.bottom + 6);
  context.fillText(axes.x, pad.left + plotWidth / 2, height - 14);
  context.save();
  context.translate(12, pad.top + plotHeight / 2);
  context.rotate(-Math.PI / 2);
  context.fillText(axes.y, 0, -6);
  context.restore();
  context.strokeStyle = '#8c959f';
  context.strokeRect(pad.left + 0.5, pad.top + 0.5, plotWidth, plotHeight);

  for (const { points: line, colour } of drawn) {
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.lineJoin = 'round';
    context.beginPath();
    line.forEach((point, index) =>
      index === 0 ? context.moveTo(px(point.x), py(point.y)) : context.lineTo(px(point.x), py(point.y)),
    );
    context.stroke();
    if (line.length === 1) {
      context.fillStyle = colour;
      context.beginPath();
      context.arc(px(line[0].x), py(line[0].y), 3, 0, 2 * Math.PI);
      context.fill();
    }
  }
}

async function cancelJob() {
  if (!selectedId) return;
  const { status, body } = await api(`/jobs/${encodeURIComponent(selectedId)}/cancel`, { method: 'POST' });
  if (status !== 200) {
    $('job-error').hidden = false;
    $('job-error').textContent = body?.error ?? `HTTP ${status}`;
  }
  void refreshJobs();
}

/** Closes the job panel and stops following its job's events. */
function closeJob() {
  if (source) source.close();
  source = null;
  current = null;
  selectedId = null;
  $('job-panel').hidden = true;
}

/** DELETE /jobs/:id, once confirmed: the job, its logs and its model go; the panel closes. */
async function deleteJob() {
  const id = selectedId;
  if (!id || !window.confirm(`Delete job ${id.slice(0, 8)}, its history and its model? This cannot be undone.`)) return;
  const { status, body } = await api(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  if (status !== 204) {
    $('job-error').hidden = false;
    $('job-error').textContent = body?.error ?? `HTTP ${status}`;
    return;
  }
  if (selectedId === id) {
    closeJob();
    history.replaceState(null, '', location.pathname);
  }
  void refreshJobs();
}

// ---------------------------------------------------------------- experiments and comparisons

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

/** What the comparison panel shows: `{ experimentId }` or `{ jobIds }`, with each job as last read; null while closed. */
let comparison = null;

const describeValue = (value) => (typeof value === 'string' ? datasetName(value) : JSON.stringify(value));
const lossPoints = (job) =>
  job.logs.map((line) => ({ x: (line.epoch - 1) * job.progress.batchesPerEpoch + line.batch, y: line.loss }));
const accuracyPoints = (job) => job.epochs.map((summary) => ({ x: summary.epoch, y: summary.testAccuracy }));

/** The request fields in which the jobs differ, which is what tells them apart in a legend. */
function differingFields(jobs) {
  return Object.keys(jobs[0]?.request ?? {}).filter(
    (field) => new Set(jobs.map((job) => JSON.stringify(job.request[field]))).size > 1,
  );
}

function openComparison(spec) {
  closeJob();
  closeComparison();
  const hash = spec.experimentId ? `#experiment=${spec.experimentId}` : `#compare=${spec.jobIds.join(',')}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
  const state = { ...spec, jobs: new Map(), timer: null };
  comparison = state;
  const panel = $('compare-panel');
  panel.hidden = false;
  panel.dataset.experimentId = spec.experimentId ?? '';
  $('compare-title').textContent = spec.experimentId
    ? `Experiment ${spec.experimentId.slice(0, 8)}`
    : `Comparing ${spec.jobIds.length} jobs`;
  $('compare-summary').textContent = '';
  $('experiment-cancel').hidden = true;
  $('experiment-delete').hidden = true;
  $('compare-legend').replaceChildren();
  $('compare-runs').tHead.replaceChildren();
  $('compare-runs').tBodies[0].replaceChildren();
  drawChart($('compare-chart'), []);
  drawChart($('compare-accuracy-chart'), [], accuracyAxes);
  void refreshComparison(state);
}

function closeComparison() {
  if (comparison?.timer) window.clearTimeout(comparison.timer);
  comparison = null;
  $('compare-panel').hidden = true;
}

/** Reads the runs (GET /experiments/:id, or the jobs themselves), the logs of those not yet ended, and draws; again in 2 s until every run ended. */
async function refreshComparison(state) {
  let runs;
  let bestId = null;
  if (state.experimentId) {
    const { status, body } = await api(`/experiments/${encodeURIComponent(state.experimentId)}`);
    if (comparison !== state) return;
    if (status !== 200) {
      $('compare-summary').textContent = body?.error ?? `HTTP ${status}`;
      return;
    }
    runs = body.runs.map((run) => ({
      id: run.id,
      label: Object.entries(run.values)
        .map(([field, value]) => `${field}=${describeValue(value)}`)
        .join(', '),
    }));
    bestId = body.best?.id ?? null;
    $('compare-title').textContent = `Experiment ${body.name ? `“${body.name}”` : body.id.slice(0, 8)}`;
    const counts = Object.entries(body.counts)
      .filter(([, count]) => count > 0)
      .map(([name, count]) => `${count} ${name}`)
      .join(' · ');
    $('compare-summary').textContent =
      `${body.runs.length} runs: ${counts} · best by ${body.metric}: ${body.best ? runs.find((run) => run.id === bestId)?.label : 'none completed yet'}`;
    $('experiment-cancel').hidden = body.ended;
    $('experiment-delete').hidden = !body.ended;
  } else {
    runs = state.jobIds.map((id) => ({ id, label: '' }));
  }
  const stale = runs.filter((run) => !endedStates.includes(state.jobs.get(run.id)?.state));
  const answers = await Promise.all(stale.map((run) => api(`/jobs/${encodeURIComponent(run.id)}`)));
  if (comparison !== state) return;
  answers.forEach(({ status, body }, index) => status === 200 && state.jobs.set(stale[index].id, body));
  const jobs = runs.map((run) => state.jobs.get(run.id)).filter(Boolean);
  if (!state.experimentId) {
    const fields = differingFields(jobs);
    for (const run of runs) {
      const job = state.jobs.get(run.id);
      run.label =
        job && fields.length > 0
          ? fields.map((field) => `${field}=${describeValue(job.request[field])}`).join(', ')
          : run.id.slice(0, 8);
    }
    const completed = jobs.filter((job) => job.result);
    bestId = completed.sort((a, b) => b.result.testAccuracy - a.result.testAccuracy)[0]?.id ?? null;
    $('compare-summary').textContent =
      `${jobs.length} jobs · differing in ${fields.join(', ') || 'nothing but their ids'}`;
  }
  showComparison(state, runs, bestId);
  if (runs.some((run) => !endedStates.includes(state.jobs.get(run.id)?.state)))
    state.timer = window.setTimeout(() => void refreshComparison(state), 2000);
}

function showComparison(state, runs, bestId) {
  const colourOf = (index) => palette[index % palette.length];
  const head = ['', 'run', 'state', 'progress', 'test accuracy', 'test loss'];
  $('compare-runs').tHead.replaceChildren(element('tr', {}, ...head.map((title) => element('th', { text: title }))));
  $('compare-runs').tBodies[0].replaceChildren(
    ...runs.map((run, index) => {
      const job = state.jobs.get(run.id);
      const fraction = job?.state === 'completed' ? 1 : (job?.progress.fraction ?? 0);
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
        element('td', { text: percent(fraction) }),
        element('td', { text: job?.result ? percent(job.result.testAccuracy) : '–' }),
        element('td', { text: job?.result ? job.result.testLoss.toFixed(4) : '–' }),
      );
      row.addEventListener('click', () => openJob(run.id));
      return row;
    }),
  );
  $('compare-legend').replaceChildren(
    ...runs.map((run, index) => swatch(colourOf(index), 'li', { 'data-testid': 'legend-item', text: run.label })),
  );
  const curves = (points) =>
    runs.map((run, index) => ({
      points: state.jobs.has(run.id) ? points(state.jobs.get(run.id)) : [],
      colour: colourOf(index),
    }));
  drawChart($('compare-chart'), curves(lossPoints));
  drawChart($('compare-accuracy-chart'), curves(accuracyPoints), accuracyAxes);
}

/** An element whose line marker (CSS .swatch) has the run's colour. */
function swatch(colour, tag = 'span', attributes = {}) {
  const node = element(tag, { ...attributes, className: 'swatch' });
  node.style.setProperty('--colour', colour);
  return node;
}

async function cancelExperiment() {
  const state = comparison;
  if (!state?.experimentId) return;
  const { status, body } = await api(`/experiments/${encodeURIComponent(state.experimentId)}/cancel`, {
    method: 'POST',
  });
  if (status !== 200) $('compare-summary').textContent = body?.error ?? `HTTP ${status}`;
  if (state.timer) window.clearTimeout(state.timer);
  await refreshComparison(state);
  void refreshJobs();
}

/** DELETE /experiments/:id, once confirmed: the experiment and its runs' jobs go; the panel closes. */
async function deleteExperiment() {
  const state = comparison;
  if (
    !state?.experimentId ||
    !window.confirm(`Delete this experiment and its runs' jobs and models? This cannot be undone.`)
  )
    return;
  const { status, body } = await api(`/experiments/${encodeURIComponent(state.experimentId)}`, { method: 'DELETE' });
  if (status !== 204) {
    $('compare-summary').textContent = body?.error ?? `HTTP ${status}`;
    return;
  }
  if (comparison === state) {
    closeComparison();
    history.replaceState(null, '', location.pathname);
  }
  void refreshExperiments();
  void refreshJobs();
}

// ---------------------------------------------------------------- predictions

async function predict(files) {
  const images = [...files].filter((file) => file.type === '' || file.type.startsWith('image/'));
  const errorLine = $('predict-error');
  errorLine.hidden = true;
  if (!selectedId || images.length === 0) return;
  const data = new FormData();
  images.forEach((file, index) => data.append(`image${index}`, file, file.name));
  const { status, body } = await api(`/jobs/${encodeURIComponent(selectedId)}/predict?explain=1`, {
    method: 'POST',
    body: data,
  });
  if (status !== 200) {
    errorLine.hidden = false;
    errorLine.textContent = body?.error ?? `HTTP ${status}`;
    return;
  }
  const items = body.predictions.map((prediction, index) =>
    element(
      'li',
      { 'data-testid': 'prediction', 'data-label': String(prediction.label), 'data-class-name': prediction.className },
      element(
        'figure',
        {},
        element('img', { src: URL.createObjectURL(images[index]), alt: images[index].name }),
        element('figcaption', { text: 'uploaded' }),
      ),
      element(
        'figure',
        {},
        element('img', { src: prediction.explanation.input, alt: 'what the model saw', 'data-testid': 'model-input' }),
        element('figcaption', { 'data-testid': 'preprocessing', text: describePreprocessing(prediction.explanation) }),
      ),
      element(
        'div',
        {},
        element('div', {
          className: 'best',
          'data-testid': 'prediction-top',
          text: `${prediction.className} (${percent(prediction.probability)})`,
        }),
        ...(prediction.blank
          ? [
              element('div', {
                className: 'error',
                'data-testid': 'prediction-blank',
                text: 'blank image: this is a guess',
              }),
            ]
          : []),
        element(
          'ol',
          {},
          ...prediction.top.map((entry) =>
            element('li', { text: `${entry.className}: ${percent(entry.probability)}` }),
          ),
        ),
      ),
    ),
  );
  $('predictions').prepend(...items);
}

/** What preprocessing did, in a few words: "strokes, inverted, crop 120×96 at 40,12". */
function describePreprocessing({ preprocess, inverted, crop }) {
  const parts = [preprocess];
  if (inverted) parts.push('inverted');
  if (crop) parts.push(`crop ${crop.width}×${crop.height} at ${crop.left},${crop.top}`);
  return parts.join(', ');
}

/** Downloads the model zip with the API key (a plain link could not send it) under the name the server gives. */
async function downloadModel() {
  const errorLine = $('predict-error');
  errorLine.hidden = true;
  try {
    const response = await fetch(`/jobs/${encodeURIComponent(selectedId)}/model`, {
      headers: apiKey() ? { authorization: `Bearer ${apiKey()}` } : {},
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body?.error ?? `HTTP ${response.status}`);
    }
    const name =
      /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? `${selectedId}.zip`;
    const link = element('a', { href: URL.createObjectURL(await response.blob()), download: name });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    errorLine.hidden = false;
    errorLine.textContent = `the model could not be downloaded: ${error.message}`;
  }
}

function wireDropZone() {
  const zone = $('dropzone');
  const input = $('predict-input');
  input.addEventListener('change', () => {
    void predict(input.files ?? []).finally(() => (input.value = ''));
  });
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    void predict(event.dataTransfer?.files ?? []);
  });
}

// ---------------------------------------------------------------- start

async function start() {
  $('job-form').addEventListener('submit', submitJob);
  $('dataset-form').addEventListener('submit', uploadDataset);
  $('dataset-input').addEventListener('change', () => {
    $('dataset-file').textContent =
      $('dataset-input').files?.[0]?.name ?? 'A zip, tar or tar.gz with a folder per class';
  });
  $('fine-tune').addEventListener('click', () => {
    $('job-form').elements.namedItem('initFrom').value = selectedId ?? '';
    $('job-form').scrollIntoView({ behavior: 'smooth' });
  });
  $('cancel').addEventListener('click', () => void cancelJob());
  $('delete').addEventListener('click', () => void deleteJob());
  $('experiment-cancel').addEventListener('click', () => void cancelExperiment());
  $('experiment-delete').addEventListener('click', () => void deleteExperiment());
  $('compare').addEventListener('click', () => openComparison({ jobIds: [...ticked] }));
  $('download-model').addEventListener('click', () => void downloadModel());
  wireDropZone();
  const keyInput = $('api-key');
  keyInput.value = apiKey();
  keyInput.addEventListener('change', () => {
    sessionStorage.setItem('apiKey', keyInput.value.trim());
    void loadCatalog().then(refreshJobs);
  });
  await Promise.all([loadCatalog(), refreshJobs(), refreshExperiments(), checkHealth()]);
  const fromHash = /^#(job|experiment|compare)=([\w,-]+)$/.exec(location.hash);
  if (fromHash?.[1] === 'job') openJob(fromHash[2]);
  if (fromHash?.[1] === 'experiment') openComparison({ experimentId: fromHash[2] });
  if (fromHash?.[1] === 'compare') openComparison({ jobIds: fromHash[2].split(',') });
  window.setInterval(() => void refreshJobs(), 2000);
  window.setInterval(() => void refreshExperiments(), 2000);
  window.setInterval(() => void checkHealth(), 10000);
  window.addEventListener('resize', () => current && scheduleDraw(current));
  document.body.dataset.ready = 'true';
}

void start();
