/** The `trainer` command's live progress bar and its lines, fed events as the event stream delivers them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FollowReport } from '../../src/cli/follow.ts';

describe('the live progress bar (on a terminal)', () => {
  it('names the GPU adapter a job was trained on, and gives the macro F1 of a result that has it', () => {
    let stdout = '';
    const report = new FollowReport('job-2', {
      stdout: { write: (text) => (stdout += text) },
      stderr: { write: () => undefined },
      live: false,
      columns: 80,
    });
    const device = {
      kind: 'gpu' as const,
      name: 'NVIDIA H200',
      vendor: 'nvidia',
      architecture: 'hopper',
      fallback: false,
    };
    const result = {
      testAccuracy: 0.8,
      testLoss: 1,
      correct: 8,
      total: 10,
      perClassAccuracy: [],
      confusionMatrix: [],
      classNames: [],
      params: 1,
      trainSeconds: 2,
      backend: 'webgpu',
      device,
      macro: { precision: 0.8, recall: 0.8, f1: 0.79123 },
    };
    report.handle({
      id: '1-0',
      type: 'end',
      data: { at: new Date(0).toISOString(), state: 'completed', error: null, result },
    });
    assert.match(stdout, /\(8\/10 correct\), macro F1 0\.7912, trained in 2\.0 s on webgpu \(NVIDIA H200\)\n$/);
  });

  it('redraws one line with epoch, batch, loss and ETA, and prints epochs and the result as lines', () => {
    let stdout = '';
    let stderr = '';
    const report = new FollowReport('job-1', {
      stdout: { write: (text) => (stdout += text) },
      stderr: { write: (text) => (stderr += text) },
      live: true,
      columns: 200,
    });
    const progress = (batch: number, epoch = 1) => ({
      epoch,
      epochs: 2,
      batch,
      batchesPerEpoch: 10,
      fraction: ((epoch - 1) * 10 + batch) / 20,
    });
    const at = (seconds: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, seconds)).toISOString();
    report.handle({ id: '1-0', type: 'state', data: { at: at(0), state: 'running', previous: 'queued' } });
    report.handle({
      id: '2-0',
      type: 'log',
      data: { at: at(10), line: { epoch: 1, batch: 5, loss: 1.23456 }, progress: progress(5) },
    });
    assert.equal(
      stderr.split('\r\x1b[2K').at(-1),
      '[######··················]  25%  epoch 1/2  batch 5/10  loss 1.2346  ETA 0:30',
    );
    report.handle({ id: '3-0', type: 'progress', data: { at: at(20), progress: progress(10) } });
    assert.equal(
      stderr.split('\r\x1b[2K').at(-1),
      '[############············]  50%  epoch 1/2  batch 10/10  loss 1.2346  ETA 0:20',
    );
    report.handle({
      id: '4-0',
      type: 'epoch',
      data: {
        at: at(21),
        summary: { epoch: 1, loss: 1, testAccuracy: 0.5, seconds: 20, imagesPerSecond: 32 },
        progress: progress(10),
      },
    });
    assert.match(
      stdout,
      /^job job-1 running\nepoch 1\/2: loss 1\.0000, test accuracy 0\.5000, 32 images\/s, 20\.0 s\n$/,
    );
    report.handle({
      id: '5-0',
      type: 'end',
      data: {
        at: at(40),
        state: 'completed',
        error: null,
        result: {
          testAccuracy: 0.75,
          testLoss: 1,
          correct: 75,
          total: 100,
          perClassAccuracy: [],
          confusionMatrix: [],
          classNames: [],
          params: 1,
          trainSeconds: 40,
          backend: 'cpu',
        },
      },
    });
    assert.ok(stderr.endsWith('\r\x1b[2K'), 'the bar is cleared at the end');
    assert.match(stdout, /completed: test accuracy 0\.7500 \(75\/100 correct\), trained in 40\.0 s on cpu\n$/);
  });

  it('says when a job is handed back, taken over and rewound to its checkpoint or the start', () => {
    let stdout = '';
    const report = new FollowReport('job-2', {
      stdout: { write: (text) => (stdout += text) },
      stderr: { write: () => undefined },
      live: false,
      columns: 80,
    });
    const at = new Date(Date.UTC(2024, 0, 1)).toISOString();
    const progress = (epoch: number, batch: number) => ({ epoch, epochs: 3, batch, batchesPerEpoch: 10, fraction: 0 });
    report.handle({ id: '1-0', type: 'state', data: { at, state: 'queued', previous: 'running' } });
    report.handle({ id: '2-0', type: 'state', data: { at, state: 'running', previous: 'queued' } });
    report.handle({ id: '3-0', type: 'rewind', data: { at, logLines: 14, epochs: 1, progress: progress(2, 4) } });
    report.handle({ id: '4-0', type: 'state', data: { at, state: 'running', previous: 'running' } });
    report.handle({ id: '5-0', type: 'rewind', data: { at, logLines: 0, epochs: 0, progress: progress(0, 0) } });
    assert.equal(
      stdout,
      [
        'job job-2 queued again (its worker shut down)',
        'job job-2 running',
        'job job-2 goes on from its checkpoint at epoch 2, batch 4',
        'job job-2 taken over by another worker (its worker stopped)',
        'job job-2 restarts from the beginning',
        '',
      ].join('\n'),
    );
  });
});
