/**
 * The chaos soak (bench/chaos.ts, `npm run bench -- --chaos`) in short: 4 tiny seeded jobs on 2
 * worker processes, one of them SIGKILLed while it trains and started again. Every job must
 * complete exactly once with its undisturbed run's losses and accuracies, no log line twice and
 * no checkpoint left behind.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { runChaos } from '../../bench/chaos.ts';
import { deleteKeys, testRedisUrl } from '../support/service.ts';

describe('chaos, in short', () => {
  const prefix = `test-${randomUUID()}`;
  after(() => deleteKeys(prefix));

  it('a worker killed mid-job: every job completes once, exactly as undisturbed, with no checkpoint left', async () => {
    const report = await runChaos({
      jobs: 4,
      workers: 2,
      killEveryMs: 1000,
      maxKills: 1,
      timeLimitSeconds: 90,
      // 20 batches an epoch, a log line every 2: about a second a job.
      job: {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 3,
        batchSize: 32,
        trainLimit: 640,
        testLimit: 100,
        logEvery: 2,
      },
      redis: { url: testRedisUrl, prefix },
      seed: 1,
    });
    assert.deepEqual(report.failures, []);
    assert.equal(report.kills, 1);
    assert.ok(report.takeovers >= 1, 'the kill hit no job: nothing was taken over');
  });
});
