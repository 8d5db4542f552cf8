/** The body of POST /jobs the dashboard's job form sends (src/dashboard/job-request.js, in Node with its FormData). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobRequest } from '../../src/contract/job-request.ts';
import { requestFromForm } from '../../src/dashboard/job-request.js';

const form = (fields: Record<string, string>) => {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) data.append(name, value);
  return data;
};
const blank = {
  model: 'lenet5',
  dataset: 'mnist',
  epochs: '',
  batchSize: '',
  learningRate: '',
  augment: '',
  initFrom: '',
  trainLayers: '',
  optimizer: '',
};

describe('requestFromForm', () => {
  it('leaves empty fields out, so that the service fills in their defaults', () => {
    const request = requestFromForm(form(blank), new Set());
    assert.deepEqual(request, { model: 'lenet5', dataset: 'mnist' });
    assert.equal(jobRequest.safeParse(request).success, true);
  });

  it('sends numbers as numbers, the augment choice as a boolean, and a fine-tune start trimmed', () => {
    const fields = {
      ...blank,
      epochs: ' 3 ',
      learningRate: '0.05',
      validationSplit: '0.25',
      augment: 'false',
      initFrom: ' 0b7c6c3e-0000-4000-8000-000000000000 ',
      trainLayers: 'dense',
    };
    const request = requestFromForm(form(fields), new Set());
    assert.deepEqual(request, {
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 3,
      learningRate: 0.05,
      validationSplit: 0.25,
      augment: false,
      initFrom: '0b7c6c3e-0000-4000-8000-000000000000',
      trainLayers: 'dense',
    });
    assert.equal(jobRequest.safeParse(request).success, true);
  });

  it('sends the optimizer and the layers to train when one is chosen, and leaves them to the server (or auto) when not', () => {
    const unchosen = requestFromForm(form({ ...blank, optimizer: '', trainLayers: '' }), new Set());
    assert.equal('optimizer' in unchosen || 'trainLayers' in unchosen, false);
    for (const optimizer of ['sgd', 'adam', 'adamw'] as const) {
      const request = requestFromForm(form({ ...blank, optimizer }), new Set());
      assert.equal(request.optimizer, optimizer);
      assert.equal(jobRequest.safeParse(request).success, true);
    }
    for (const trainLayers of ['all', 'top', 'head', 'dense'] as const)
      assert.equal(requestFromForm(form({ ...blank, trainLayers }), new Set()).trainLayers, trainLayers);
  });

  it('sends auto with only the data set when every other field is empty, so that auto decides the rest', () => {
    const request = requestFromForm(
      form({ ...blank, model: 'auto', trainLayers: '', optimizer: '', inputSize: '' }),
      new Set(),
    );
    assert.deepEqual(request, { model: 'auto', dataset: 'mnist' });
    assert.equal(jobRequest.safeParse(request).success, true);
  });

  it('sends a built-in base and the input size with mobilenetv2, and no input size with another network', () => {
    const fields = { ...blank, model: 'mobilenetv2', initFrom: 'imagenet', trainLayers: 'top', inputSize: '96' };
    const request = requestFromForm(form(fields), new Set());
    assert.deepEqual(request, {
      model: 'mobilenetv2',
      dataset: 'mnist',
      initFrom: 'imagenet',
      trainLayers: 'top',
      inputSize: 96,
    });
    assert.equal(jobRequest.safeParse(request).success, true);
    for (const model of ['lenet5', 'auto'])
      assert.equal(requestFromForm(form({ ...fields, model }), new Set()).inputSize, undefined, model);
  });

  it('sends a number field holding text it cannot parse as text, so that the service says why', () => {
    const request = requestFromForm(form(blank), new Set(['batchSize']));
    assert.equal(request.batchSize, 'not a number');
    const parsed = jobRequest.safeParse(request);
    assert.equal(parsed.success, false);
    assert.deepEqual(
      parsed.error?.issues.map((issue) => issue.path.join('.')),
      ['batchSize'],
    );
  });
});
