/**
 * The web dashboard at GET /, in a real headless browser (Debian's chromium driven by
 * playwright-core) against a real service (API + worker, wasm backend): submit a job through the
 * form, follow it live, read its result, classify an uploaded digit, see validation errors next to
 * their fields, upload a data set and train on it, cancel a job, follow an experiment and compare
 * jobs, upload a base and start from it, see what auto picked. Saves screenshots in
 * test-results/dashboard.png, dashboard-form.png, dashboard-datasets.png, dashboard-experiment.png
 * and dashboard-auto.png.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Redis } from 'ioredis';
import type { ErrorBody } from '../../src/contract/errors.ts';
import type { Experiment } from '../../src/contract/experiment.ts';
import type { Job } from '../../src/contract/job.ts';
import { progressAt } from '../../src/contract/progress.ts';
import type { PredictResponse } from '../../src/contract/predict.ts';
import { mnist } from '../../src/datasets/mnist.ts';
import { JobStore } from '../../src/store/job-store.ts';
import { imageFolderEntries, zipOf } from '../support/archives.ts';
import { digitPhoto } from '../support/digit-photos.ts';
import { submitJob, waitForJob } from '../support/jobs.ts';
import { request, startTestService, testRedisUrl, type TestService } from '../support/service.ts';

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const browserArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let service: TestService;
let browser: Browser;
let page: Page;
let folder: string;
const pageErrors: string[] = [];

const byTestId = (id: string) => page.getByTestId(id);
const optionValues = (id: string) =>
  byTestId(id)
    .locator('option')
    .evaluateAll((options) => options.map((option) => option.getAttribute('value')));
const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;

before(async () => {
  assert.ok(existsSync(executablePath), `no browser at ${executablePath}: apt-get install -y chromium`);
  folder = await mkdtemp(path.join(tmpdir(), 'dashboard-test-'));
  service = await startTestService();
  browser = await chromium.launch({ executablePath, args: browserArgs });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // The 400 of the validation test is expected; anything else is not.
    if (message.type() === 'error' && !/status of 400/.test(message.text())) pageErrors.push(message.text());
  });
  await page.goto(`${service.url}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
});

after(async () => {
  await browser?.close();
  await service?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe('dashboard', () => {
  it('is served at / next to the API, which still answers 404 for unknown routes', async () => {
    const html = await fetch(`${service.url}/`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    const text = await html.text();
    assert.match(text, /<title>Trainer dashboard<\/title>/);
    assert.match(text, /<style>[^]*font:\s+15px\/1\.45 system-ui/, 'the style sheet is inline');
    assert.match(text, /<script type="module" src="\/dashboard\/main\.js"><\/script>/, 'the entry module');
    assert.doesNotMatch(text, /(src|href)="https?:/, 'no external resources');
    // Every module the entry imports, and theirs, is served as it is, with the page's caching.
    const served = new Map<string, string>();
    const pending = ['main.js'];
    for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
      if (served.has(file)) continue;
      const module = await fetch(`${service.url}/dashboard/${file}`);
      assert.equal(module.status, 200, file);
      assert.equal(module.headers.get('content-type'), 'text/javascript; charset=utf-8', file);
      assert.equal(module.headers.get('cache-control'), 'no-cache', file);
      const source = await module.text();
      assert.match(source, /^\/\/ @ts-check\n/, `${file} is type-checked`);
      assert.doesNotMatch(source, /^\s*import\s[^;]*from '(?!\.\/)/m, `${file} imports only its siblings`);
      served.set(file, source);
      for (const [, imported] of source.matchAll(/^import [^;]* from '\.\/([\w-]+\.js)';$/gm))
        pending.push(imported ?? '');
    }
    assert.ok(served.size > 10, 'the dashboard is split into modules');
    assert.match([...served.values()].join('\n'), /new EventSource\(/, 'the modules follow a job live');
    const missing = await request<ErrorBody>(`${service.url}/dashboard/nope.js`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /no route GET \/dashboard\/nope\.js/);
    const document = await request<{ paths: Record<string, unknown> }>(`${service.url}/openapi.json`);
    assert.equal('/' in document.body.paths, false, 'the page is not part of the API document');
  });

  it('fills the selects from GET /models and GET /datasets, auto first and chosen', async () => {
    const models = await byTestId('field-model')
      .locator('option')
      .evaluateAll((options) => options.map((option) => option.getAttribute('value')));
    const datasets = await byTestId('field-dataset')
      .locator('option')
      .evaluateAll((options) => options.map((option) => option.getAttribute('value')));
    assert.deepEqual(models, ['auto', 'lenet5', 'alexnet', 'resnet20', 'mobilenetv2']);
    assert.equal(await byTestId('field-model').inputValue(), 'auto', 'auto is the default');
    assert.deepEqual(datasets, ['mnist', 'cifar10']);
    // Auto decides the start, the recipe and what is left empty: the form says so rather than a model's figures.
    assert.deepEqual(await optionValues('field-initFrom'), ['']);
    assert.deepEqual(
      [
        await byTestId('field-batchSize').getAttribute('placeholder'),
        await byTestId('field-learningRate').getAttribute('placeholder'),
      ],
      ['auto', 'auto'],
    );
    assert.equal(await byTestId('field-inputSize').isVisible(), false);
  });

  it('offers the ImageNet base and the input size when mobilenetv2 is chosen, and neither for lenet5', async () => {
    await byTestId('field-model').selectOption('mobilenetv2');
    assert.deepEqual(await optionValues('field-initFrom'), ['', 'imagenet']);
    assert.equal(await byTestId('field-inputSize').isVisible(), true);
    assert.equal(await byTestId('field-batchSize').getAttribute('placeholder'), 'model default');
    await byTestId('field-initFrom').selectOption('imagenet');
    await byTestId('field-trainLayers').selectOption('top');
    await byTestId('field-inputSize').fill('96');
    await mkdir('test-results', { recursive: true });
    await byTestId('job-form').screenshot({ path: 'test-results/dashboard-form.png' });
    await byTestId('field-model').selectOption('lenet5');
    assert.deepEqual(await optionValues('field-initFrom'), [''], 'lenet5 has no built-in base');
    assert.equal(await byTestId('field-inputSize').isVisible(), false);
    await byTestId('field-trainLayers').selectOption('');
  });

  it('shows a 400 answer’s messages next to their fields and starts no job', async () => {
    await byTestId('field-epochs').fill('0');
    await byTestId('field-batchSize').fill('99999');
    await byTestId('submit').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="error-epochs"]')?.textContent !== '',
      undefined,
      { timeout: 5000 },
    );
    assert.match(await byTestId('error-epochs').innerText(), /1|small|>=/i);
    assert.notEqual(await byTestId('error-batchSize').innerText(), '');
    assert.equal(await byTestId('error-learningRate').innerText(), '', 'fields without problems show none');
    assert.equal(await byTestId('field-epochs').getAttribute('aria-invalid'), 'true');
    const jobs = await request<{ jobs: Job[] }>(`${service.url}/jobs`);
    assert.equal(jobs.body.jobs.length, 0);
  });

  let job: Job;

  it('submits a job through the form and follows it live to its result', async () => {
    await byTestId('field-model').selectOption('lenet5');
    await byTestId('field-dataset').selectOption('mnist');
    const fields = { epochs: '1', batchSize: '16', trainLimit: '2000', testLimit: '500', logEvery: '5', seed: '1' };
    for (const [name, value] of Object.entries(fields)) await byTestId(`field-${name}`).fill(value);
    await byTestId('submit').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-panel"]')?.getAttribute('data-job-id'),
      undefined,
      { timeout: 5000 },
    );
    assert.equal(await byTestId('error-epochs').innerText(), '', 'the earlier errors are cleared');

    const id = (await byTestId('job-panel').getAttribute('data-job-id')) ?? '';
    const created = await request<Job>(`${service.url}/jobs/${id}`);
    assert.equal(created.status, 200);
    assert.deepEqual(
      {
        model: created.body.request.model,
        dataset: created.body.request.dataset,
        epochs: created.body.request.epochs,
        batchSize: created.body.request.batchSize,
        trainLimit: created.body.request.trainLimit,
        testLimit: created.body.request.testLimit,
        logEvery: created.body.request.logEvery,
        seed: created.body.request.seed,
      },
      {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 1,
        batchSize: 16,
        trainLimit: 2000,
        testLimit: 500,
        logEvery: 5,
        seed: 1,
      },
    );
    assert.equal(created.body.request.learningRate, 0.01, 'empty fields take the defaults');

    // The chart gets points from the event stream while the job runs.
    await page.waitForFunction(
      () => Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points')) > 0,
      undefined,
      { timeout: 30_000 },
    );
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-panel"]')?.getAttribute('data-state') === 'completed',
      undefined,
      { timeout: 45_000 },
    );
    job = (await request<Job>(`${service.url}/jobs/${id}`)).body;
    assert.equal(job.state, 'completed');
    assert.ok(job.result);

    assert.equal(
      Number(await byTestId('loss-chart').getAttribute('data-points')),
      job.logs.length,
      'one point per loss log line',
    );
    assert.equal(job.logs.length, 25);
    assert.equal(await byTestId('job-state').innerText(), 'completed');
    assert.equal(await byTestId('epoch-row').count(), 1);
    assert.match(
      await byTestId('epoch-row').innerText(),
      new RegExp(percent(job.epochs[0]?.testAccuracy ?? -1).replace('.', '\\.')),
    );
    assert.equal(await byTestId('epoch-test-loss').innerText(), job.epochs[0]?.testLoss?.toFixed(4));
    assert.equal(await byTestId('test-accuracy').innerText(), percent(job.result.testAccuracy));
    assert.equal(await byTestId('confusion-cell').count(), 100);
    const diagonal = await byTestId('confusion-matrix')
      .locator('tbody tr')
      .nth(3)
      .getByTestId('confusion-cell')
      .nth(3)
      .innerText();
    assert.equal(Number(diagonal), job.result.confusionMatrix[3]?.[3]);
    const columnHeads = await byTestId('confusion-matrix').locator('thead th').allInnerTexts();
    assert.deepEqual(columnHeads.slice(1), job.result.classNames);
    assert.equal(await byTestId('per-class-row').count(), 10);
    // Precision, F1 and support beside each class's accuracy (its recall), and their macro averages under them.
    const { perClass, macro } = job.result;
    assert.ok(perClass && macro, 'the result has precision, recall and F1');
    assert.deepEqual(
      perClass.map((metrics) => [metrics.className, metrics.recall, metrics.support]),
      job.result.classNames.map((name, label) => [
        name,
        job.result?.perClassAccuracy[label],
        job.result?.confusionMatrix[label]?.reduce((sum, count) => sum + count, 0),
      ]),
    );
    const firstRow = (await byTestId('per-class-row').first().locator('td').allInnerTexts()).map((text) => text.trim());
    assert.deepEqual(firstRow, [
      percent(job.result.perClassAccuracy[0] ?? -1),
      percent(perClass[0]?.precision ?? -1),
      percent(perClass[0]?.f1 ?? -1),
      String(perClass[0]?.support),
    ]);
    const macroRow = (await byTestId('per-class-macro').locator('td').allInnerTexts()).map((text) => text.trim());
    assert.deepEqual(macroRow, [percent(macro.recall), percent(macro.precision), percent(macro.f1), '']);
    assert.equal(await byTestId('cancel').isVisible(), false, 'no cancel button once the job ended');

    // The list (polled every 2 s) shows it too.
    const row = page.locator(`[data-testid="job-row"][data-job-id="${id}"]`);
    await page.waitForFunction(
      (jobId) =>
        document.querySelector(`[data-testid="job-row"][data-job-id="${jobId}"]`)?.getAttribute('data-state') ===
        'completed',
      id,
      { timeout: 5000 },
    );
    assert.equal(await row.getByTestId('job-row-state').innerText(), 'completed');
  });

  it('classifies a photo of an MNIST digit with the trained model, showing what the model saw', async () => {
    assert.ok(job, 'needs the job of the previous test');
    const data = await mnist.load({ dataDir: path.join(folder, 'data') });
    const size = data.shape.height * data.shape.width;
    // A digit the model gets right, found through the API: the test is about the page, not the model.
    let chosen: { file: string; label: number } | null = null;
    for (let index = 0; index < 30 && !chosen; index += 1) {
      const label = data.test.labels[index] ?? -1;
      const photo = await digitPhoto(data.test.images.subarray(index * size, (index + 1) * size), 'photo', index);
      const answer = await request<PredictResponse>(`${service.url}/jobs/${job.id}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'image/jpeg' },
        body: new Uint8Array(photo),
      });
      assert.equal(answer.status, 200);
      if (answer.body.predictions[0]?.label === label) {
        const file = path.join(folder, `digit-${label}.jpg`);
        await writeFile(file, photo);
        chosen = { file, label };
      }
    }
    assert.ok(chosen, 'the model gets none of the first 30 test digits right');

    assert.equal(await byTestId('predict').isVisible(), true);
    await byTestId('predict-input').setInputFiles(chosen.file);
    await byTestId('prediction').first().waitFor({ timeout: 10_000 });
    assert.equal(await byTestId('prediction').first().getAttribute('data-label'), String(chosen.label));
    assert.match(
      await byTestId('prediction-top').first().innerText(),
      new RegExp(`^${chosen.label} \\(\\d+\\.\\d%\\)$`),
    );
    assert.equal(await byTestId('prediction').first().locator('ol li').count(), 5, 'the top 5');
    assert.match((await byTestId('model-input').first().getAttribute('src')) ?? '', /^data:image\/png;base64,/);
    // Dark ink on light paper, somewhere in the photo: inverted and cropped to the digit.
    assert.match(await byTestId('preprocessing').first().innerText(), /^strokes, inverted, crop \d+×\d+ at \d+,\d+$/);
    assert.equal(await byTestId('prediction-blank').count(), 0);

    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });
  });

  it("downloads the job's model zip with its button, as GET /jobs/:id/model serves it", async () => {
    assert.ok(job, 'needs the job of the earlier test');
    const [download] = await Promise.all([page.waitForEvent('download'), byTestId('download-model').click()]);
    assert.equal(download.suggestedFilename(), `lenet5-mnist-${job.id}.zip`);
    const saved = await readFile(await download.path());
    const served = Buffer.from(await (await fetch(`${service.url}/jobs/${job.id}/model`)).arrayBuffer());
    assert.ok(saved.length > 0 && saved.equals(served), 'the browser saved the bytes the API serves');
  });

  it("uploads the job's model as a base, offers it and the job to start lenet5 from, and deletes it", async () => {
    assert.ok(job, 'needs the job of the earlier test');
    const zip = path.join(folder, 'digits-net.zip');
    await writeFile(zip, Buffer.from(await (await fetch(`${service.url}/jobs/${job.id}/model`)).arrayBuffer()));
    await byTestId('base-input').setInputFiles(zip);
    await byTestId('base-upload').click();
    const row = byTestId('base-row');
    await row.waitFor({ timeout: 30_000 });
    const id = (await row.getAttribute('data-base-id')) ?? '';
    assert.equal(await row.locator('.name').innerText(), 'digits-net');
    assert.match(await row.locator('.meta').innerText(), /^lenet5 · 28×28×1 · 10 classes · \d+ layers · \d+ KiB$/);
    assert.equal(await byTestId('base-status').innerText(), 'digits-net: a lenet5 base');
    await byTestId('field-model').selectOption('lenet5');
    assert.deepEqual(await optionValues('field-initFrom'), ['', id, job.id], 'the base, then the completed job');
    assert.deepEqual(
      await byTestId('field-initFrom')
        .locator('optgroup')
        .evaluateAll((groups) => groups.map((group) => group.getAttribute('label'))),
      ['Your bases', 'Completed jobs'],
    );
    await byTestId('field-model').selectOption('mobilenetv2');
    assert.deepEqual(
      await optionValues('field-initFrom'),
      ['', 'imagenet'],
      'a lenet5 base is not offered to mobilenetv2',
    );
    await byTestId('field-model').selectOption('lenet5');

    await row.getByTestId('base-delete').click();
    await byTestId('base-row').waitFor({ state: 'detached', timeout: 5000 });
    assert.equal((await request(`${service.url}/bases/${id}`)).status, 404);
    assert.deepEqual(await optionValues('field-initFrom'), ['', job.id]);
  });

  it('uploads an archive of class folders with its progress, shows the report, trains on it and deletes it', async () => {
    const digits = (await mnist.load({ dataDir: service.config.DATA_DIR })).test;
    const names = ['zero', 'one', 'two'];
    const entries = await imageFolderEntries(digits, mnist.shape, {
      classes: [0, 1, 2],
      perClass: 20,
      className: (label) => names[label] as string,
    });
    const archive = path.join(folder, 'three-digits.zip');
    await writeFile(archive, await zipOf([...entries, { name: 'zero/notes.txt', data: Buffer.from('my notes') }]));
    await byTestId('dataset-input').setInputFiles(archive);
    await byTestId('dataset-imageKind').selectOption('strokes');
    await byTestId('upload').click();
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid="dataset-class"]').length === 3,
      undefined,
      { timeout: 30_000 },
    );
    assert.equal(await byTestId('upload-status').innerText(), 'three-digits is ready');
    assert.deepEqual(await byTestId('dataset-class').locator('th').allInnerTexts(), ['one', 'two', 'zero']);
    assert.match(await byTestId('dataset-skipped').innerText(), /Skipped 1 file: 1 notAnImage/);
    const row = page.locator('[data-testid="dataset-row"][data-state="ready"]');
    await row.waitFor({ timeout: 5000 });
    const id = (await row.getAttribute('data-dataset-id')) ?? '';
    await page.screenshot({ path: 'test-results/dashboard-datasets.png', fullPage: true });

    await byTestId('dataset-use').click();
    assert.equal(await byTestId('field-dataset').inputValue(), id, 'the job form trains on it');
    for (const [name, value] of Object.entries({
      epochs: '3',
      batchSize: '16',
      trainLimit: '',
      testLimit: '',
      logEvery: '1',
      seed: '2',
      validationSplit: '0.25',
    }))
      await byTestId(`field-${name}`).fill(value);
    await byTestId('submit').click();
    await page.waitForFunction(
      (datasetId) =>
        document.querySelector('[data-testid="job-settings"]')?.textContent?.startsWith('lenet5 on three-digits') &&
        datasetId !== '',
      id,
      { timeout: 10_000 },
    );
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-panel"]')?.getAttribute('data-state') === 'completed',
      undefined,
      { timeout: 30_000 },
    );
    assert.deepEqual(
      (await byTestId('confusion-matrix').locator('thead th').allInnerTexts()).slice(1),
      ['one', 'two', 'zero'],
      'the folder names as class names',
    );
    // Validated after every epoch: its figures in the epoch table and its curve beside the training loss.
    assert.equal(await byTestId('epoch-validation-accuracy').count(), 3);
    assert.match(await byTestId('epoch-validation-accuracy').first().innerText(), /^\d+\.\d%$/);
    assert.equal(await byTestId('loss-chart').getAttribute('data-series'), '2');
    assert.equal(await byTestId('chart-key').isVisible(), true);
    await byTestId('field-validationSplit').fill('');

    await row.getByTestId('dataset-delete').click();
    await page.waitForFunction(
      (datasetId) => !document.querySelector(`[data-testid="dataset-row"][data-dataset-id="${datasetId}"]`),
      id,
      { timeout: 5000 },
    );
    assert.equal((await request(`${service.url}/datasets/${id}`)).status, 404);
  });

  it('cancels a running job with its button, then deletes it with its own', async () => {
    await byTestId('field-epochs').fill('50');
    await byTestId('field-trainLimit').fill('');
    await byTestId('field-testLimit').fill('');
    await byTestId('submit').click();
    await page.waitForFunction(
      (previous) => {
        const panel = document.querySelector('[data-testid="job-panel"]');
        return (
          panel?.getAttribute('data-job-id') !== previous &&
          ['queued', 'running'].includes(panel?.getAttribute('data-state') ?? '')
        );
      },
      job.id,
      { timeout: 10_000 },
    );
    const id = (await byTestId('job-panel').getAttribute('data-job-id')) ?? '';
    await byTestId('cancel').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-panel"]')?.getAttribute('data-state') === 'cancelled',
      undefined,
      { timeout: 15_000 },
    );
    const cancelled = await waitForJob(service, id, 'cancelled', { timeoutMs: 5000 });
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(await byTestId('cancel').isVisible(), false);

    // An ended job can be deleted, once the browser's confirmation is accepted.
    page.once('dialog', (dialog) => void dialog.accept());
    await byTestId('delete').click();
    await page.waitForFunction(
      (gone) => !document.querySelector(`[data-testid="job-row"][data-job-id="${gone}"]`),
      id,
      { timeout: 10_000 },
    );
    assert.equal(await byTestId('job-panel').isHidden(), true);
    assert.equal((await request(`${service.url}/jobs/${id}`)).status, 404);
    assert.deepEqual(pageErrors, [], 'the page logged no errors');
  });

  it('drops the log lines and epochs a rewind tells it to, when a job is taken over', async () => {
    // A job no worker sees (recorded, never queued), given a history and then taken over.
    const redis = new Redis(testRedisUrl);
    const id = randomUUID();
    try {
      const store = new JobStore(redis, service.config.KEY_PREFIX);
      const at = (epoch: number, batch: number) => progressAt(2, 4, epoch, batch);
      const settings = { ...job.request, epochs: 2, batchSize: 500, trainLimit: 2000, logEvery: 1 };
      assert.equal(await store.create(id, settings, at(0, 0), new Date()), 'created');
      await store.lifecycle.start(id, new Date());
      for (let batch = 1; batch <= 4; batch++)
        await store.appendLog(id, { epoch: 1, batch, loss: 2 - batch / 4 }, at(1, batch));
      await store.appendEpoch(
        id,
        { epoch: 1, loss: 1.4, testAccuracy: 0.5, seconds: 1, imagesPerSecond: 2000 },
        at(1, 4),
      );
      await store.appendLog(id, { epoch: 2, batch: 1, loss: 0.9 }, at(2, 1));
      await store.lifecycle.start(id);
      await store.rewind(id, { logLines: 2, epochs: 0 }, at(1, 2));
      await store.appendLog(id, { epoch: 1, batch: 3, loss: 1.2 }, at(1, 3));
    } finally {
      redis.disconnect();
    }
    await page.waitForSelector(`[data-testid="job-row"][data-job-id="${id}"]`, { timeout: 10_000 });
    await page.locator(`[data-testid="job-row"][data-job-id="${id}"]`).click();
    await page.waitForFunction(
      (jobId) => document.querySelector('[data-testid="job-panel"]')?.getAttribute('data-job-id') === jobId,
      id,
      { timeout: 5000 },
    );
    // 5 log lines and an epoch before the rewind, which keeps 2 lines and no epoch, then 1 line more.
    await page.waitForFunction(
      () => document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') === '3',
      undefined,
      { timeout: 5000 },
    );
    assert.equal(await byTestId('epoch-row').count(), 0);
    assert.deepEqual(pageErrors, [], 'the page logged no errors');
  });

  it("shows an experiment's runs in a table with one loss and one accuracy curve per run, compares jobs ticked in the list, and deletes the experiment", async () => {
    const base = {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 2,
      batchSize: 16,
      trainLimit: 128,
      testLimit: 64,
      logEvery: 1,
      seed: 4,
    };
    const created = await request<Experiment>(`${service.url}/experiments`, {
      method: 'POST',
      json: { name: 'rates', base, grid: { learningRate: [0.2, 0.05, 0.005] } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { id, runs } = created.body;
    await page.locator(`[data-testid="experiment-row"][data-experiment-id="${id}"]`).click({ timeout: 10_000 });
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-testid="compare-run"]')].filter(
          (row) => row.getAttribute('data-state') === 'completed',
        ).length === 3,
      undefined,
      { timeout: 30_000 },
    );
    assert.equal(await byTestId('job-panel').isHidden(), true);
    assert.equal(await byTestId('compare-title').innerText(), 'Experiment “rates”');
    assert.deepEqual(await byTestId('legend-item').allInnerTexts(), [
      'learningRate=0.2',
      'learningRate=0.05',
      'learningRate=0.005',
    ]);
    const chart = byTestId('compare-chart');
    await page.waitForFunction(
      () => document.querySelector('[data-testid="compare-chart"]')?.getAttribute('data-points') === '48',
      undefined,
      { timeout: 5000 },
    );
    assert.equal(await chart.getAttribute('data-series'), '3', 'one curve per run');
    const accuracy = byTestId('compare-accuracy-chart');
    assert.deepEqual(
      [await accuracy.getAttribute('data-points'), await accuracy.getAttribute('data-series')],
      ['6', '3'],
      "one accuracy point per run's epoch",
    );
    const ended = (await request<Experiment>(`${service.url}/experiments/${id}`)).body;
    const best = page.locator('[data-testid="compare-run"].best');
    assert.equal(await best.getAttribute('data-job-id'), ended.best?.id);
    assert.match(
      await byTestId('compare-summary').innerText(),
      /^3 runs: 3 completed · best by testAccuracy: learningRate=/,
    );
    await page.screenshot({ path: 'test-results/dashboard-experiment.png', fullPage: true });

    // Two runs ticked in the job list, compared the same way: the field they differ in names them.
    for (const run of runs.slice(0, 2))
      await page.locator(`[data-testid="job-row"][data-job-id="${run.id}"] [data-testid="job-select"]`).check();
    await byTestId('compare').click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="compare-chart"]')?.getAttribute('data-series') === '2',
      undefined,
      { timeout: 5000 },
    );
    assert.equal(await byTestId('compare-title').innerText(), 'Comparing 2 jobs');
    assert.deepEqual(await byTestId('legend-item').allInnerTexts(), ['learningRate=0.2', 'learningRate=0.05']);
    assert.equal(await byTestId('compare-run').count(), 2);

    // The ended experiment deleted from its page, with its runs.
    await page.locator(`[data-testid="experiment-row"][data-experiment-id="${id}"]`).click();
    await byTestId('experiment-delete').waitFor({ state: 'visible', timeout: 5000 });
    page.once('dialog', (dialog) => void dialog.accept());
    await byTestId('experiment-delete').click();
    await page.waitForFunction(
      (gone) => !document.querySelector(`[data-testid="experiment-row"][data-experiment-id="${gone}"]`),
      id,
      { timeout: 10_000 },
    );
    assert.equal(await byTestId('compare-panel').isHidden(), true);
    assert.equal((await request(`${service.url}/experiments/${id}`)).status, 404);
    for (const run of runs) assert.equal((await request(`${service.url}/jobs/${run.id}`)).status, 404);
    assert.deepEqual(pageErrors, [], 'the page logged no errors');
  });

  it("draws a job's training loss from its epochs when they were too short to log a line", async () => {
    // 10 batches an epoch, a log line every 100: the job logs none.
    const { id } = await submitJob(service, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 2,
      batchSize: 16,
      trainLimit: 160,
      testLimit: 64,
      logEvery: 100,
    });
    await page.locator(`[data-testid="job-row"][data-job-id="${id}"]`).click({ timeout: 10_000 });
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-panel"]')?.getAttribute('data-state') === 'completed',
      undefined,
      { timeout: 30_000 },
    );
    const ended = (await request<Job>(`${service.url}/jobs/${id}`)).body;
    assert.deepEqual([ended.logs.length, ended.epochs.length], [0, 2]);
    await page.waitForFunction(
      () => document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') === '2',
      undefined,
      { timeout: 5000 },
    );
    assert.equal(await byTestId('loss-chart').getAttribute('data-series'), '1');
    assert.equal(await byTestId('epoch-row').count(), 2);
    assert.deepEqual(pageErrors, [], 'the page logged no errors');
  });

  it('sends auto when the model is left at its default, and the job panel lists what auto picked and why', async () => {
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
    assert.equal(await byTestId('field-model').inputValue(), 'auto');
    for (const [name, value] of Object.entries({
      epochs: '1',
      batchSize: '32',
      trainLimit: '256',
      testLimit: '64',
      logEvery: '2',
    }))
      await byTestId(`field-${name}`).fill(value);
    await byTestId('submit').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="auto-reason"]').length > 0, undefined, {
      timeout: 10_000,
    });
    const id = (await byTestId('job-panel').getAttribute('data-job-id')) ?? '';
    const created = (await request<Job>(`${service.url}/jobs/${id}`)).body;
    assert.equal(created.request.model, 'lenet5', 'auto picks LeNet-5 for strokes');
    assert.deepEqual(await byTestId('auto-reason').allInnerTexts(), created.request.autoChoice?.reasons);
    assert.match(
      await byTestId('job-settings').innerText(),
      /^lenet5 on mnist · 1 epoch · batch 32 · adam lr 0\.003 · /,
    );
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-panel"]')?.getAttribute('data-state') === 'completed',
      undefined,
      { timeout: 30_000 },
    );
    await byTestId('job-panel').screenshot({ path: 'test-results/dashboard-auto.png' });

    // A job that named its model shows no reasons.
    await page.locator(`[data-testid="job-row"][data-job-id="${job.id}"]`).click();
    await page.waitForFunction(
      () => document.querySelector('[data-testid="job-settings"]')?.textContent?.startsWith('lenet5 on mnist'),
      undefined,
      { timeout: 5000 },
    );
    assert.equal(await byTestId('auto-choice').isVisible(), false);
    assert.deepEqual(pageErrors, [], 'the page logged no errors');
  });
});
