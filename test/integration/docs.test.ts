/** GET /docs (the interactive OpenAPI page) and what the OpenAPI document says of the newer routes. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, startTestService, type TestService } from '../support/service.ts';

interface Parameter {
  in: string;
  name: string;
  required?: boolean;
}
interface Operation {
  summary?: string;
  parameters?: Parameter[];
  responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string; type?: string } }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: {
    schemas?: Record<
      string,
      { anyOf?: { $ref?: string }[]; oneOf?: { $ref?: string }[]; properties?: Record<string, unknown> }
    >;
  };
}

describe('API documentation', () => {
  let service: TestService;
  let document: Document;

  before(async () => {
    service = await startTestService({ ROLE: 'api' });
    const answer = await request<Document>(`${service.url}/openapi.json`);
    assert.equal(answer.status, 200);
    document = answer.body;
  });
  after(async () => service?.close());

  it('GET /docs serves the interactive page, its scripts, and the same document it renders', async () => {
    const page = await fetch(`${service.url}/docs`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /<html/i);
    assert.match(html, /swagger-ui/i);
    for (const asset of ['swagger-ui-bundle.js', 'swagger-initializer.js']) {
      assert.match(html, new RegExp(asset.replace('.', '\\.')), `the page loads ${asset}`);
      const script = await fetch(`${service.url}/docs/static/${asset}`);
      assert.equal(script.status, 200, `${asset} is served`);
      assert.match(script.headers.get('content-type') ?? '', /javascript/);
      await script.text();
    }
    const rendered = await request<Document>(`${service.url}/docs/json`);
    assert.equal(rendered.status, 200);
    assert.deepEqual(rendered.body, document, 'the page renders /openapi.json');
  });

  it('/openapi.json still lists every route, now with /jobs/{id}/events and /metrics, and not the page itself', () => {
    assert.match(document.openapi, /^3\.\d+\.\d+$/);
    for (const path of [
      '/jobs',
      '/jobs/{id}',
      '/jobs/{id}/cancel',
      '/jobs/{id}/predict',
      '/jobs/{id}/model',
      '/jobs/{id}/events',
      '/metrics',
      '/models',
      '/datasets',
      '/health',
    ]) {
      assert.ok(document.paths[path], `${path} is missing`);
    }
    assert.equal(
      Object.keys(document.paths).some((path) => path.startsWith('/docs') || path === '/openapi.json'),
      false,
      'the documentation routes are not part of the API',
    );
  });

  it('describes the event stream: its media type, the event schemas, resuming and its errors', () => {
    const events = document.paths['/jobs/{id}/events']?.get;
    assert.ok(events, 'GET /jobs/{id}/events is missing');
    const stream = events.responses?.['200']?.content?.['text/event-stream']?.schema;
    assert.equal(stream?.$ref, '#/components/schemas/JobEventData');
    const union = document.components?.schemas?.JobEventData;
    const members = (union?.anyOf ?? union?.oneOf ?? []).map((member) =>
      member.$ref?.replace('#/components/schemas/', ''),
    );
    assert.deepEqual(members.sort(), [
      'EndEvent',
      'EpochEvent',
      'LogEvent',
      'ProgressEvent',
      'RewindEvent',
      'StateEvent',
    ]);
    for (const status of ['204', '400', '404', '503']) assert.ok(events.responses?.[status], `it lists ${status}`);
    const parameters = (events.parameters ?? []).map((parameter) => `${parameter.in}:${parameter.name}`).sort();
    assert.deepEqual(parameters, ['header:last-event-id', 'path:id', 'query:lastEventId']);
  });

  it("describes the model download as a zip, and predict's preprocess and explain with what a prediction adds", () => {
    const download = document.paths['/jobs/{id}/model']?.get;
    assert.ok(download, 'GET /jobs/{id}/model is missing');
    assert.equal(download.responses?.['200']?.content?.['application/zip']?.schema?.type, 'string');
    for (const status of ['404', '409', '503']) assert.ok(download.responses?.[status], `it lists ${status}`);
    const predict = document.paths['/jobs/{id}/predict']?.post;
    const parameters = (predict?.parameters ?? []).map((parameter) => `${parameter.in}:${parameter.name}`).sort();
    assert.deepEqual(parameters, ['path:id', 'query:explain', 'query:preprocess']);
    const prediction = document.components?.schemas?.Prediction?.properties ?? {};
    assert.ok('blank' in prediction && 'explanation' in prediction, JSON.stringify(Object.keys(prediction)));
    assert.ok(
      document.components?.schemas?.PredictionExplanation?.properties?.crop,
      'the explanation has its crop box',
    );
  });

  it("describes a job's webhook (asked for, shown without its secret, its deliveries) and the result's precision, recall and F1", () => {
    const schemas = document.components?.schemas ?? {};
    assert.deepEqual(Object.keys(schemas.WebhookRequest?.properties ?? {}), ['url', 'secret']);
    assert.ok(schemas.JobRequest?.properties?.webhook, 'POST /jobs takes a webhook');
    assert.deepEqual(Object.keys(schemas.JobWebhook?.properties ?? {}), ['url', 'secretSet', 'deliveries']);
    assert.ok(schemas.Job?.properties?.webhook && schemas.JobSummary?.properties?.webhook, 'a job shows its webhook');
    assert.deepEqual(Object.keys(schemas.WebhookDelivery?.properties ?? {}), [
      'webhookId',
      'attempt',
      'at',
      'ok',
      'statusCode',
      'error',
    ]);
    assert.ok(
      schemas.JobResult?.properties?.perClass && schemas.JobResult.properties.macro,
      'the result has perClass and macro',
    );
    assert.match(
      JSON.stringify(schemas.ClassMetrics),
      /zero_division=0/,
      'it says what a ratio without a denominator is',
    );
  });

  it('describes /metrics as Prometheus text', () => {
    const metrics = document.paths['/metrics']?.get;
    assert.ok(metrics, 'GET /metrics is missing');
    assert.equal(metrics.responses?.['200']?.content?.['text/plain']?.schema?.type, 'string');
    assert.match(metrics.summary ?? '', /Prometheus/);
  });
});
