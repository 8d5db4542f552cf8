/** What the job form offers for the model chosen (src/dashboard/form-choices.js, in Node). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Base } from '../../src/contract/bases.ts';
import type { ModelCatalog } from '../../src/contract/catalog.ts';
import type { JobSummary } from '../../src/contract/job.ts';
import { fieldDefaults, startChoices, takesInputSize } from '../../src/dashboard/form-choices.js';
import { storedJobSettings } from '../support/job-settings.ts';

const params = { mnist: 1, cifar10: 1 };
const models: ModelCatalog['models'] = [
  { name: 'lenet5', description: '', defaultWeightDecay: 0, params, bases: [] },
  {
    name: 'mobilenetv2',
    description: '',
    defaultWeightDecay: 4e-5,
    params,
    bases: [{ name: 'imagenet', description: '', source: '', lastLayer: 'block_10_project_BN', inputRange: [0, 1] }],
  },
];

const base = (id: string, network: Base['network']): Base => ({
  id,
  name: `${network}-base`,
  network,
  input: { height: 28, width: 28, channels: 1 },
  classes: 10,
  coveredLayers: [],
  bytes: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
});

const job = (id: string, state: JobSummary['state'], model: JobSummary['request']['model']): JobSummary => ({
  id,
  state,
  request: { ...storedJobSettings, model, dataset: 'mnist' },
  progress: { epoch: 1, epochs: 1, batch: 1, batchesPerEpoch: 1, fraction: 1 },
  result: null,
  error: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  startedAt: null,
  finishedAt: null,
});

describe('the job form’s choices', () => {
  const bases = [base('b-lenet', 'lenet5'), base('b-mobile', 'mobilenetv2')];
  const jobs = [
    job('11111111-aaaa', 'completed', 'lenet5'),
    job('22222222-bbbb', 'running', 'lenet5'),
    job('33333333-cccc', 'completed', 'mobilenetv2'),
  ];
  const names = (id: string) => (id === 'mnist' ? 'MNIST' : id);

  it('leaves the start to auto when auto picks the network', () => {
    assert.deepEqual(startChoices('auto', models, bases, jobs, names), [
      { value: '', text: 'picked by auto', group: null },
    ]);
  });

  it("offers a network's built-in bases, the client's bases of that network and its completed jobs", () => {
    assert.deepEqual(startChoices('mobilenetv2', models, bases, jobs, names), [
      { value: '', text: 'from scratch', group: null },
      { value: 'imagenet', text: 'imagenet', group: 'Built in' },
      { value: 'b-mobile', text: 'mobilenetv2-base (28×28×1)', group: 'Your bases' },
      { value: '33333333-cccc', text: 'job 33333333 on MNIST', group: 'Completed jobs' },
    ]);
    assert.deepEqual(
      startChoices('lenet5', models, bases, jobs, names).map((choice) => choice.value),
      ['', 'b-lenet', '11111111-aaaa'],
      'no base built in, the running job left out',
    );
  });

  it('says "auto" where auto decides, and never claims the recipe of a model it does not know', () => {
    const auto = fieldDefaults('auto', '');
    assert.deepEqual(
      [auto.epochs, auto.batchSize, auto.learningRate, auto.optimizer],
      ['auto', 'auto', 'auto', 'picked by auto'],
    );
    const named = fieldDefaults('resnet20', '');
    assert.deepEqual([named.epochs, named.batchSize, named.learningRate], ['10', 'model default', 'model default']);
    assert.equal(fieldDefaults('resnet20', 'adam').learningRate, '0.001');
    assert.equal(fieldDefaults('resnet20', 'adamw').weightDecay, '0.01');
  });

  it('takes an input size for mobilenetv2 only', () => {
    assert.deepEqual(['mobilenetv2', 'lenet5', 'resnet20', 'auto'].map(takesInputSize), [true, false, false, false]);
  });
});
