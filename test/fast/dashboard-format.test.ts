/** What the dashboard writes, from the API's answers (src/dashboard/format.js, in Node). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Base } from '../../src/contract/bases.ts';
import type { DatasetCatalog } from '../../src/contract/catalog.ts';
import type { UploadedDataset } from '../../src/contract/datasets.ts';
import type { Job } from '../../src/contract/job.ts';
import {
  countsText,
  describePreprocessing,
  heat,
  networkText,
  ownBases,
  ownDatasets,
  percent,
  plural,
  processingText,
  progressText,
  settingsText,
  skippedText,
} from '../../src/dashboard/format.js';

describe('dashboard text', () => {
  it('writes fractions as percentages with one decimal, and counts with their noun', () => {
    assert.equal(percent(0.6061), '60.6%');
    assert.equal(percent(1), '100.0%');
    assert.deepEqual([plural(1, 'epoch'), plural(3, 'epoch')], ['1 epoch', '3 epochs']);
  });

  it('counts only what is there, joined as asked', () => {
    assert.equal(countsText({ queued: 0, running: 1, completed: 3, failed: 0 }), '1 running · 3 completed');
    assert.equal(countsText({ notAnImage: 2, tooSmall: 1, link: 0 }, ', '), '2 notAnImage, 1 tooSmall');
  });

  it("fills a completed job's bar even when its last progress report came before the last batch", () => {
    const progress = { epoch: 2, epochs: 2, batch: 93, batchesPerEpoch: 94, fraction: 0.994 };
    assert.equal(progressText(progress, 'running'), 'epoch 2/2 · batch 93/94 · 99.4%');
    assert.equal(progressText(progress, 'completed'), 'epoch 2/2 · batch 93/94 · 100.0%');
  });

  it('says what preprocessing did', () => {
    const crop = { left: 40, top: 12, width: 120, height: 96 };
    assert.equal(
      describePreprocessing({ preprocess: 'strokes', inverted: true, crop, input: '' }),
      'strokes, inverted, crop 120×96 at 40,12',
    );
    assert.equal(describePreprocessing({ preprocess: 'natural', inverted: false, crop: null, input: '' }), 'natural');
  });

  it('shades a heat-map cell darker with more, and writes white on the dark ones', () => {
    assert.deepEqual(heat(0), { background: 'hsl(214, 80%, 98%)', color: '#1b1f24' });
    assert.deepEqual(heat(1), { background: 'hsl(214, 80%, 36%)', color: '#fff' });
  });

  it("writes a job's settings in one line, its data set by name, a fine-tune start and limits only when set", () => {
    const request = {
      model: 'lenet5',
      dataset: '3f2a',
      initFrom: '0b7c6c3e-0000-4000-8000-000000000000',
      trainLayers: 'dense',
      validationSplit: null,
      earlyStopping: null,
      learningRateSchedule: null,
      epochs: 1,
      batchSize: 16,
      optimizer: 'sgd',
      learningRate: 0.01,
      momentum: 0.9,
      weightDecay: 0,
      labelSmoothing: 0,
      augment: false,
      seed: 1,
      trainLimit: 2000,
      testLimit: 0,
      logEvery: 5,
      timeoutSeconds: 3600,
      inputSize: null,
      autoChoice: null,
    } satisfies Job['request'];
    assert.equal(
      settingsText(request, 'three-digits'),
      'lenet5 from job 0b7c6c3e (dense) on three-digits · 1 epoch · batch 16 · lr 0.01 · momentum 0.9 · weight decay 0 · augment off · seed 1 · train 2000 · log every 5',
    );
    assert.match(
      settingsText({ ...request, initFrom: null, trainLayers: 'all' }, 'three-digits'),
      /^lenet5 on three-digits · /,
      'from scratch, every layer: nothing said',
    );
    assert.match(
      settingsText({ ...request, optimizer: 'adamw', learningRate: 0.001, weightDecay: 0.01 }, 'three-digits'),
      / · batch 16 · adamw lr 0\.001 · weight decay 0\.01 · /,
      'no momentum for Adam',
    );
  });

  it('says where a network starts: a built-in base by name, an uploaded base by its name, a job by its id, with the layers and input size', () => {
    const settings = { model: 'mobilenetv2', initFrom: 'imagenet', trainLayers: 'top', inputSize: 96 } as const;
    assert.equal(networkText(settings), 'mobilenetv2 from imagenet (top) at 96 px');
    const uploaded = { ...settings, initFrom: '5d1e0c3e-0000-4000-8000-000000000000', trainLayers: 'head' } as const;
    const names = (id: string) => (id === uploaded.initFrom ? 'my-net' : undefined);
    assert.equal(networkText(uploaded, names), 'mobilenetv2 from base “my-net” (head) at 96 px');
    assert.equal(networkText(uploaded), 'mobilenetv2 from job 5d1e0c3e (head) at 96 px', 'a base no longer listed');
    assert.equal(
      networkText({ model: 'lenet5', initFrom: null, trainLayers: 'all', inputSize: null }),
      'lenet5',
      'from scratch',
    );
  });

  it("lists the client's bases with their network, input, classes, layers and size", () => {
    const base = {
      id: 'b-1',
      name: 'digits-net',
      network: 'lenet5',
      input: { height: 28, width: 28, channels: 1 },
      classes: 10,
      coveredLayers: ['conv2d', 'conv2d_1', 'dense', 'dense_1', 'dense_2'],
      bytes: 246_784,
      createdAt: '2026-01-01T00:00:00.000Z',
    } satisfies Base;
    assert.deepEqual(ownBases([base, { ...base, id: 'b-2', classes: null, coveredLayers: ['conv2d'] }]), [
      { id: 'b-1', name: 'digits-net', detail: 'lenet5 · 28×28×1 · 10 classes · 5 layers · 241 KiB' },
      { id: 'b-2', name: 'digits-net', detail: 'lenet5 · 28×28×1 · 1 layer · 241 KiB' },
    ]);
  });

  it("lists the client's own data sets: uploads processing or failed first, then the ready ones, no built-in", () => {
    const shape = { height: 28, width: 28, channels: 1 };
    const catalog = {
      datasets: [
        { id: 'mnist', name: 'mnist', builtIn: true, shape, classNames: [], trainSize: 60000, testSize: 10000 },
        { id: 'a1', name: 'digits', builtIn: false, shape, classNames: ['0', '1'], trainSize: 48, testSize: 12 },
      ],
      uploads: [
        { id: 'b2', name: 'photos', state: 'processing', progress: { phase: 'converting' }, error: null },
        { id: 'c3', name: 'broken', state: 'failed', progress: null, error: { message: 'no class folders' } },
      ],
    } as unknown as DatasetCatalog;
    assert.deepEqual(ownDatasets(catalog), [
      { id: 'b2', name: 'photos', state: 'processing', detail: 'converting' },
      { id: 'c3', name: 'broken', state: 'failed', detail: 'no class folders' },
      { id: 'a1', name: 'digits', state: 'ready', detail: '2 classes · 48/12 images · 28×28×1' },
    ]);
  });

  it("says where an upload's processing is", () => {
    const dataset = (fields: Partial<UploadedDataset>) => ({ name: 'digits', ...fields }) as UploadedDataset;
    assert.equal(processingText(dataset({ state: 'processing', progress: null })), 'Processing…');
    assert.equal(
      processingText(dataset({ state: 'processing', progress: { phase: 'reading', done: 10, total: 60 } })),
      'Processing: reading 10 of 60',
    );
    assert.equal(processingText(dataset({ state: 'ready' })), 'digits is ready');
  });

  it('says what was skipped and why, or nothing', () => {
    const byReason = {
      notAnImage: 1,
      unreadable: 0,
      tooSmall: 0,
      tooLarge: 0,
      link: 0,
      hidden: 0,
      outsideClassFolder: 0,
    };
    assert.equal(skippedText({ count: 1, byReason, files: [] }), 'Skipped 1 file: 1 notAnImage');
    assert.equal(skippedText({ count: 0, byReason: { ...byReason, notAnImage: 0 }, files: [] }), null);
  });
});
