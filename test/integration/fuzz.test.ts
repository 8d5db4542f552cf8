/**
 * Fuzzing the two routes that take arbitrary input (issue 5): thousands of generated bodies at
 * POST /jobs, and garbage images at POST /jobs/:id/predict. Every answer must be a 4xx in the
 * contract's shape, or a success; never a 5xx. Afterwards the service still serves valid requests.
 *
 * - `apiOnly` (ROLE=api) takes the POST /jobs bodies: nothing trains, and the jobs that valid
 *   bodies create are cancelled at once.
 * - `service` (API and worker) trains one small job, whose model the predict fuzzing uses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import sharp from 'sharp';
import type { ErrorBody } from '../../src/contract/errors.ts';
import type { Job } from '../../src/contract/job.ts';
import { jobRequest } from '../../src/contract/job-request.ts';
import { modelNames } from '../../src/contract/names.ts';
import { request, startTestService, waitFor, type JsonResponse, type TestService } from '../support/service.ts';

const smallJob = {
  model: 'lenet5',
  dataset: 'mnist',
  trainLimit: 256,
  testLimit: 100,
  epochs: 1,
  batchSize: 32,
  logEvery: 2,
  seed: 7,
};
/** Every field the server takes: the contract's and its own, straight from the schema. */
const FIELDS = Object.keys(jobRequest.shape);
/** Seeded, so that a failure is repeatable; FUZZ_SEED=<n> to explore further. */
const seed = Number(process.env.FUZZ_SEED ?? 20260529);

let apiOnly: TestService;
let service: TestService;
let completed: Job;
let png: Buffer;
let jpeg: Buffer;

const settings = {
  RATE_LIMIT_PER_MINUTE: '0',
  MAX_QUEUED_JOBS: '100000',
  MAX_UPLOAD_BYTES: '200000',
  MAX_UPLOAD_FILES: '4',
  MAX_IMAGE_PIXELS: '1000000',
};

before(async () => {
  // One after the other: the TensorFlow.js backend of the process is set up by the first.
  apiOnly = await startTestService({ ...settings, ROLE: 'api' });
  service = await startTestService(settings);
  const created = await request<Job>(`${service.url}/jobs`, { method: 'POST', json: smallJob });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  completed = await waitFor(
    'the small job to complete',
    async () => {
      const job = (await request<Job>(`${service.url}/jobs/${created.body.id}`)).body;
      if (job.state === 'failed') throw new Error(`the small job failed: ${job.error?.message}`);
      return job.state === 'completed' ? job : null;
    },
    60_000,
  );
  const pixels = Buffer.alloc(28 * 28, 0);
  for (let y = 4; y < 24; y++) pixels[y * 28 + 14] = 255;
  png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
    .png()
    .toBuffer();
  jpeg = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
    .jpeg()
    .toBuffer();
});

after(async () => {
  await Promise.all([apiOnly?.close(), service?.close()]);
});

/** A 4xx in the contract's shape exactly, or one of the `ok` statuses; never a 5xx. */
function assertAnswer(answer: JsonResponse<unknown>, ok: number[], what: string): void {
  if (ok.includes(answer.status)) return;
  assert.ok(
    answer.status >= 400 && answer.status < 500,
    `${what}: status ${answer.status} ${JSON.stringify(answer.body)}`,
  );
  const body = answer.body as ErrorBody;
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), `${what}: body ${JSON.stringify(body)}`);
  for (const key of Object.keys(body))
    assert.ok(key === 'error' || key === 'details', `${what}: unexpected key ${key}`);
  assert.equal(typeof body.error, 'string', what);
  assert.ok(body.error.length > 0, what);
  if (body.details !== undefined) {
    assert.ok(Array.isArray(body.details), what);
    for (const detail of body.details) {
      assert.deepEqual(Object.keys(detail).sort(), ['message', 'path'], what);
      assert.equal(typeof detail.path, 'string', what);
      assert.equal(typeof detail.message, 'string', what);
    }
  }
}

/** Posts a body as given (text, or bytes), with a content type. */
async function postRaw(
  url: string,
  body: string | Uint8Array,
  contentType: string | null,
): Promise<JsonResponse<unknown>> {
  const response = await fetch(url, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: contentType === null ? {} : { 'content-type': contentType },
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // left as text: assertAnswer then fails on its shape, unless the status is an accepted one
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

const created: string[] = [];

/** Posts a JSON text to POST /jobs; a job it creates is cancelled at once. */
async function postJobText(text: string, contentType = 'application/json'): Promise<void> {
  const answer = await postRaw(`${apiOnly.url}/jobs`, text, contentType);
  assertAnswer(answer, [201], `POST /jobs ${text.slice(0, 300)}`);
  if (answer.status === 201) {
    const id = (answer.body as Job).id;
    created.push(id);
    const cancelled = await request(`${apiOnly.url}/jobs/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
  }
}

/** Values of every kind and the edges of the contract's ranges. */
const wild = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    -1,
    1,
    1000,
    1001,
    4096,
    4097,
    10,
    10.000001,
    0.999999,
    1e21,
    1e308,
    -1e308,
    2 ** 53,
    2 ** 53 + 2,
    Number.MIN_VALUE,
    0.5,
  ),
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('lenet5', 'alexnet', 'mnist', 'cifar10', 'LENET5', ' mnist', '10', 'true', ''),
  fc.array(fc.jsonValue(), { maxLength: 4 }),
  fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }),
);

const contractRecord = fc.record(Object.fromEntries(FIELDS.map((field) => [field, wild])), { requiredKeys: [] });

/** Mostly valid bodies with one or two fields off. */
const nearlyValid = fc
  .tuple(fc.constantFrom(...FIELDS), wild, fc.option(fc.tuple(fc.constantFrom(...FIELDS), wild), { nil: undefined }))
  .map(([field, value, second]) => ({ ...smallJob, [field]: value, ...(second ? { [second[0]]: second[1] } : {}) }));

const validBody = fc.record(
  {
    model: fc.constantFrom(...modelNames),
    optimizer: fc.constantFrom('sgd', 'adam', 'adamw'),
    dataset: fc.constantFrom('mnist', 'cifar10'),
    epochs: fc.integer({ min: 1, max: 1000 }),
    batchSize: fc.integer({ min: 1, max: 4096 }),
    learningRate: fc.double({ min: 1e-6, max: 10, noNaN: true }),
    momentum: fc.double({ min: 0, max: 0.99, noNaN: true }),
    seed: fc.integer(),
    trainLimit: fc.integer({ min: 1, max: 1_000_000 }),
    testLimit: fc.integer({ min: 1, max: 1_000_000 }),
    logEvery: fc.integer({ min: 1, max: 1_000_000 }),
    augment: fc.boolean(),
    labelSmoothing: fc.double({ min: 0, max: 0.5, noNaN: true }),
  },
  { requiredKeys: ['model', 'dataset'] },
);

/** Keys that prototype pollution tries, and keys in any script, written into the JSON text as own keys. */
const oddKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', ''),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }),
);
const oddKeyBody = fc
  .tuple(fc.array(fc.tuple(oddKey, fc.jsonValue({ maxDepth: 2 })), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([pairs, withBase]) => {
    const members = pairs.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value) ?? 'null'}`);
    if (withBase) members.unshift('"model":"lenet5"', '"dataset":"mnist"');
    return `{${members.join(',')}}`;
  });

/** Numbers no double holds, and deep nesting, as JSON text. */
const hugeText = fc.oneof(
  fc.constantFrom(...FIELDS).map((field) => `{"model":"lenet5","dataset":"mnist","${field}":1e999}`),
  fc.constantFrom(...FIELDS).map((field) => `{"model":"lenet5","dataset":"mnist","${field}":-1e999}`),
  fc
    .constantFrom(...FIELDS)
    .map((field) => `{"model":"lenet5","dataset":"mnist","${field}":123456789012345678901234567890123456789}`),
  fc
    .integer({ min: 1, max: 3000 })
    .map((depth) => `{"model":"lenet5","dataset":"mnist","epochs":${'['.repeat(depth)}${']'.repeat(depth)}}`),
  fc.integer({ min: 1, max: 3000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
);

/** Not JSON at all, or JSON under other content types. */
const garbageText = fc.tuple(
  fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc
      .jsonValue()
      .map((value) => JSON.stringify(value) ?? '')
      .map((text) => text.slice(0, Math.max(0, text.length - 1))),
  ),
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/octet-stream',
    'multipart/form-data',
    'image/png',
    'application/json; charset=latin1',
  ),
);

describe('fuzzing POST /jobs', () => {
  it('answers arbitrary JSON values with 4xx in the contract shape (or 201), never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (value) => postJobText(JSON.stringify(value) ?? 'null')),
      { numRuns: 350, seed, includeErrorInReport: true },
    );
  });

  it('answers records of the contract fields with wrong types and out-of-range values', async () => {
    await fc.assert(
      fc.asyncProperty(contractRecord, async (body) => postJobText(JSON.stringify(body))),
      { numRuns: 400, seed, includeErrorInReport: true },
    );
    await fc.assert(
      fc.asyncProperty(nearlyValid, async (body) => postJobText(JSON.stringify(body))),
      { numRuns: 300, seed, includeErrorInReport: true },
    );
  });

  it('creates jobs from valid bodies (201) or refuses them by the per-job limit (400)', async () => {
    await fc.assert(
      fc.asyncProperty(validBody, async (body) => postJobText(JSON.stringify(body))),
      { numRuns: 150, seed, includeErrorInReport: true },
    );
  });

  it('answers __proto__, constructor and unicode keys, huge numbers, deep nesting and garbage', async () => {
    await fc.assert(
      fc.asyncProperty(oddKeyBody, async (text) => postJobText(text)),
      { numRuns: 250, seed, includeErrorInReport: true },
    );
    await fc.assert(
      fc.asyncProperty(hugeText, async (text) => postJobText(text)),
      { numRuns: 150, seed, includeErrorInReport: true },
    );
    await fc.assert(
      fc.asyncProperty(garbageText, async ([text, type]) => postJobText(text, type)),
      { numRuns: 250, seed, includeErrorInReport: true },
    );
    // Prototype pollution would show on every object of the process.
    assert.equal(({} as Record<string, unknown>).model, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('still serves a valid request afterwards', async () => {
    const answer = await request<Job>(`${apiOnly.url}/jobs`, { method: 'POST', json: smallJob });
    assert.equal(answer.status, 201);
    assert.equal((await request(`${apiOnly.url}/jobs/${answer.body.id}/cancel`, { method: 'POST' })).status, 200);
    assert.equal((await request(`${apiOnly.url}/health`)).status, 200);
    assert.ok(created.length > 0, 'no valid body was generated');
  });
});

describe('fuzzing POST /jobs/:id/predict', () => {
  const imageTypes = [
    'image/png',
    'image/jpeg',
    'image/webp',
    'image/gif',
    'application/octet-stream',
    'text/plain',
    'application/json',
    'multipart/form-data',
    'multipart/form-data; boundary=xyz',
    'image/svg+xml',
    'IMAGE/PNG',
  ];

  /** A real image, truncated, with bytes flipped, or both; or plain random bytes. */
  const damaged = fc.oneof(
    fc.uint8Array({ maxLength: 4000 }).map((bytes) => Buffer.from(bytes)),
    fc.tuple(fc.boolean(), fc.double({ min: 0, max: 1, noNaN: true })).map(([usePng, fraction]) => {
      const source = usePng ? png : jpeg;
      return source.subarray(0, Math.floor(source.length * fraction));
    }),
    fc
      .tuple(
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 20 }),
      )
      .map(([usePng, flips]) => {
        const copy = Buffer.from(usePng ? png : jpeg);
        for (const [position, value] of flips) copy[position % copy.length] = value;
        return copy;
      }),
  );

  const predictUrl = () => `${service.url}/jobs/${completed.id}/predict`;

  it('answers raw garbage images of any content type with 4xx in the contract shape (or 200), never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(damaged, fc.constantFrom(...imageTypes), async (bytes, type) => {
        assertAnswer(await postRaw(predictUrl(), bytes, type), [200], `predict raw ${type} (${bytes.length} bytes)`);
      }),
      { numRuns: 300, seed, includeErrorInReport: true },
    );
  });

  it('answers garbage multipart uploads the same way', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(damaged, fc.constantFrom('image/png', 'image/jpeg', 'application/octet-stream', 'text/plain', '')),
          { minLength: 0, maxLength: 3 },
        ),
        async (files) => {
          const form = new FormData();
          files.forEach(([bytes, type], index) =>
            form.append(`file${index}`, new Blob([new Uint8Array(bytes)], type ? { type } : {}), `f${index}`),
          );
          const response = await fetch(predictUrl(), { method: 'POST', body: form });
          const text = await response.text();
          assertAnswer(
            { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as unknown) : null },
            [200],
            'predict multipart',
          );
        },
      ),
      { numRuns: 150, seed, includeErrorInReport: true },
    );
  });

  it('still predicts a valid image afterwards', async () => {
    const answer = await postRaw(predictUrl(), png, 'image/png');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal((answer.body as { predictions: unknown[] }).predictions.length, 1);
  });
});
