/**
 * Issue 24's digits target through the real service: real handwritten digits no one on the project
 * made (the UCI optical digits, test/fixtures/optical-digits.csv.gz, 1,200 to train and 400 to
 * test) uploaded as class folders, then LeNet-5 trained with the measured recipe, every setting
 * explicit: Adam, cosine decay, label smoothing 0.1 and shifts (a strokes data set is never
 * mirrored). The notebook's SGD reached 0.93 on it; the recipe must reach 0.98. The recipe and its
 * measurements are on docs/performance.md; the 3-class photo recipe takes minutes and is a bench
 * (`npm run bench -- --own-images`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { UploadedDataset } from '../../src/contract/datasets.ts';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import { clientOf, processedDataset, runJob } from '../support/jobs.ts';
import { opticalDigitsRecipe, opticalDigitsZip } from '../support/own-images.ts';
import { startTestService, type TestService } from '../support/service.ts';

describe('own images: the UCI optical digits, uploaded as class folders', () => {
  let service: TestService;
  let dataset: UploadedDataset;

  before(async () => {
    // Two replicas, as a 2-core worker trains by default.
    service = await startTestService({ TRAIN_THREADS: '2' });
    const uploaded = await clientOf(service).uploadDataset(
      { name: 'optical-digits.zip', bytes: new Uint8Array(await opticalDigitsZip()), type: 'application/zip' },
      { imageKind: 'strokes' },
    );
    dataset = await processedDataset(service, uploaded.id, { timeoutMs: 60_000 });
  });
  after(async () => service?.close());

  it('is processed into 32×32 grey strokes, 1,200 to train and 400 to test, classes 0-9', () => {
    assert.equal(dataset.state, 'ready', JSON.stringify(dataset.error));
    const report = dataset.report;
    assert.ok(report);
    assert.deepEqual(report.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(report.shape, { height: 32, width: 32, channels: 1 });
    assert.equal(report.imageKind, 'strokes');
    const sum = (counts: readonly number[]) => counts.reduce((total, count) => total + count, 0);
    assert.equal(sum(report.splits.train.perClass), 1200);
    assert.equal(sum(report.splits.test.perClass), 400);
    assert.equal(report.skipped.count, 0);
  });

  it('LeNet-5 with the measured recipe (Adam, cosine, label smoothing 0.1, shifts) reaches 0.98 test accuracy', async () => {
    const request: JobRequestInput = { ...opticalDigitsRecipe, dataset: dataset.id };
    const job = await runJob(service, request, { timeoutMs: 120_000, intervalMs: 250 });
    assert.equal(job.state, 'completed', JSON.stringify(job.error));
    assert.equal(job.request.labelSmoothing, 0.1);
    assert.equal(job.request.augment, true);
    assert.ok(job.result, 'a result');
    assert.ok(job.result.testAccuracy >= 0.98, `test accuracy ${job.result.testAccuracy}, the target 0.98`);
  });
});
