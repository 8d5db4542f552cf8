/**
 * The defaults a job gets from its model: ResNet-20's published recipe, the notebook's settings
 * for LeNet-5 and AlexNet exactly as before, and a user's explicit values over either.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobRequest } from '../../src/contract/job-request.ts';
import { settingsFor } from '../../src/api/job-settings.ts';
import { datasets } from '../../src/datasets/index.ts';

const cifar10 = { ...datasets.cifar10, validationSize: 0 };

function settings(request: Record<string, unknown>) {
  const { learningRate, batchSize, learningRateSchedule, weightDecay, momentum, augment } = settingsFor(
    jobRequest.parse({ dataset: 'cifar10', ...request }),
    cifar10,
    () => 1,
    3600,
  );
  return { learningRate, batchSize, learningRateSchedule, weightDecay, momentum, augment };
}

describe('per-model defaults', () => {
  it('resnet20 asked by name gets the paper’s recipe, with a cosine for its divisions by 10', () => {
    assert.deepEqual(settings({ model: 'resnet20' }), {
      learningRate: 0.1,
      batchSize: 128,
      learningRateSchedule: { type: 'cosine', warmupEpochs: 0, minLearningRate: 0.001 },
      weightDecay: 1e-4,
      momentum: 0.9,
      augment: true,
    });
  });

  it('lenet5 and alexnet keep the notebook’s settings exactly', () => {
    const notebook = { learningRate: 0.01, batchSize: 64, learningRateSchedule: null, momentum: 0.9, augment: true };
    assert.deepEqual(settings({ model: 'lenet5' }), { ...notebook, weightDecay: 0 });
    assert.deepEqual(settings({ model: 'alexnet' }), { ...notebook, weightDecay: 1e-4 });
  });

  it('a user’s explicit values win, a null schedule (constant) included', () => {
    assert.deepEqual(
      settings({
        model: 'resnet20',
        learningRate: 0.05,
        batchSize: 32,
        learningRateSchedule: null,
        weightDecay: 0,
        augment: false,
      }),
      { learningRate: 0.05, batchSize: 32, learningRateSchedule: null, weightDecay: 0, momentum: 0.9, augment: false },
    );
    const step = { type: 'step', stepEpochs: 2, factor: 0.5 };
    assert.deepEqual(settings({ model: 'resnet20', learningRateSchedule: step }).learningRateSchedule, step);
  });
});
