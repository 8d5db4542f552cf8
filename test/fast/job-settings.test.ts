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

describe('model: auto', () => {
  const upload = (imageKind: 'strokes' | 'natural', trainSize: number, side = 32, channels = 3) => ({
    shape: { height: side, width: side, channels },
    classNames: ['a', 'b', 'c'],
    trainSize,
    testSize: 100,
    validationSize: 0,
    augmentByDefault: false,
    imageKind,
  });
  const auto = (request: Record<string, unknown>, dataset: ReturnType<typeof upload>) =>
    settingsFor(
      jobRequest.parse({ dataset: '00000000-0000-4000-8000-000000000000', ...request }),
      dataset,
      () => 1,
      3600,
    );

  it('is the default, and says what it picked and why', () => {
    const picked = auto({}, upload('strokes', 1200, 32, 1));
    assert.equal(picked.model, 'lenet5');
    assert.equal(picked.optimizer, 'adam');
    assert.equal(picked.augment, true);
    assert.equal(picked.epochs, 60, 'a small set gets many epochs');
    assert.ok((picked.autoChoice?.reasons.length ?? 0) >= 2);
    assert.match(picked.autoChoice?.reasons[0] ?? '', /strokes/);
  });

  it('photographs start from ImageNet, training the top; many small ones train ResNet-20 from scratch', () => {
    const few = auto({}, upload('natural', 1500));
    assert.deepEqual(
      [few.model, few.initFrom, few.trainLayers, few.inputSize, few.epochs],
      ['mobilenetv2', 'imagenet', 'top', 96, 4],
    );
    const many = auto({}, upload('natural', 50_000));
    assert.deepEqual([many.model, many.initFrom, many.trainLayers], ['resnet20', null, 'all']);
    const large = auto({}, upload('natural', 50_000, 128));
    assert.equal(large.model, 'mobilenetv2', 'photographs larger than 48 pixels start from ImageNet however many');
  });

  it("the request's own settings win over auto's", () => {
    const picked = auto({ epochs: 2, optimizer: 'sgd', trainLayers: 'head' }, upload('natural', 1500));
    assert.deepEqual(
      [picked.epochs, picked.optimizer, picked.trainLayers, picked.model],
      [2, 'sgd', 'head', 'mobilenetv2'],
    );
    assert.equal(picked.autoChoice?.reasons.at(-1), "the request's own trainLayers, epochs, optimizer replace auto's");
  });

  it("a named mobilenetv2 from the ImageNet base gets the base's recipe for what the request leaves out", () => {
    const named = auto({ model: 'mobilenetv2', initFrom: 'imagenet', epochs: 2 }, upload('natural', 1500));
    assert.equal(named.autoChoice, null);
    assert.deepEqual(
      [
        named.inputSize,
        named.trainLayers,
        named.optimizer,
        named.learningRate,
        named.batchSize,
        named.augment,
        named.epochs,
      ],
      [96, 'top', 'adam', 0.001, 32, true, 2],
    );
  });

  it('a named model gets no auto choice, and the defaults of before', () => {
    const named = auto({ model: 'lenet5' }, upload('strokes', 1200, 32, 1));
    assert.equal(named.autoChoice, null);
    assert.deepEqual(
      [named.epochs, named.optimizer, named.initFrom, named.trainLayers, named.inputSize],
      [10, 'sgd', null, 'all', null],
    );
  });
});
