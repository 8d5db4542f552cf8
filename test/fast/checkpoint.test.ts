import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { pino } from 'pino';
import { startBackend } from '../../src/backends/select.ts';
import { CheckpointError, CheckpointStore, type TrainingPosition } from '../../src/training/checkpoint.ts';

const position: TrainingPosition = {
  epochsDone: 2,
  batchesDone: 7,
  orderRandom: -12345,
  random: 987654321,
  dropoutRandom: [1, -2],
  optimizerIterations: 320,
  epochLoss: 12.5,
  windowLoss: 3.25,
  windowBatches: 2,
  trainSeconds: 10.5,
  epochSeconds: 1.25,
  activeSeconds: 13,
  logLines: 44,
};

describe('checkpoint files', () => {
  let root: string;
  let store: CheckpointStore;
  before(async () => {
    await startBackend('wasm', pino({ level: 'silent' }));
    root = await mkdtemp(path.join(tmpdir(), 'trainer-checkpoints-'));
    store = new CheckpointStore(root);
  });
  after(async () => rm(root, { recursive: true, force: true }));

  async function saveOne(jobId: string): Promise<void> {
    const tensors = [tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), tf.tensor1d([0.5, -0.25]), tf.scalar(7)];
    await store.save(jobId, { position, tensors });
    tf.dispose(tensors);
  }

  it('round-trips the position and every tensor, and a new one replaces the old without leftovers', async () => {
    await saveOne('job-a');
    await saveOne('job-a');
    assert.deepEqual(await readdir(root), ['job-a'], 'no temporary folders left');
    assert.deepEqual(await store.jobIds(), ['job-a']);
    assert.deepEqual(await new CheckpointStore(path.join(root, 'not-yet-created')).jobIds(), []);
    const loaded = await store.load('job-a');
    assert.ok(loaded);
    assert.deepEqual(loaded.position, position);
    assert.deepEqual(
      loaded.tensors.map((tensor) => tensor.shape),
      [[2, 3], [2], []],
    );
    assert.deepEqual(
      loaded.tensors.map((tensor) => [...tensor.dataSync()]),
      [[1, 2, 3, 4, 5, 6], [0.5, -0.25], [7]],
    );
    tf.dispose([...loaded.tensors]);
  });

  it('a job without a checkpoint has none; a removed one is gone', async () => {
    assert.equal(await store.load('job-none'), null);
    await saveOne('job-removed');
    await store.remove('job-removed');
    assert.equal(await store.load('job-removed'), null);
  });

  it('counts and removes what a write cut short by a crash left: a temporary folder, with or without the checkpoint', async () => {
    const cutShort = (jobId: string) => mkdir(path.join(root, `.${jobId}.${randomUUID()}.tmp`));
    await saveOne('job-crashed');
    await cutShort('job-crashed');
    await cutShort('job-crashed-first');
    await mkdir(path.join(root, '.not-a-write-of-ours'));
    assert.deepEqual((await store.jobIds()).sort(), ['job-a', 'job-crashed', 'job-crashed-first']);
    await store.remove('job-crashed');
    await store.remove('job-crashed-first');
    assert.deepEqual((await readdir(root)).sort(), ['.not-a-write-of-ours', 'job-a']);
  });

  const refusals: [string, (folder: string) => Promise<void>, RegExp][] = [
    [
      'a truncated tensor file',
      (folder) => truncate(path.join(folder, 'tensors.bin'), 20),
      /tensors.bin has 20 bytes, 36 expected \(truncated\?\)/,
    ],
    [
      'an altered tensor byte',
      async (folder) => {
        const bytes = await readFile(path.join(folder, 'tensors.bin'));
        bytes[5] = (bytes[5] as number) ^ 0xff;
        await writeFile(path.join(folder, 'tensors.bin'), bytes);
      },
      /tensors.bin doesn't match its checksum/,
    ],
    [
      'a description cut short',
      (folder) => truncate(path.join(folder, 'checkpoint.json'), 30),
      /checkpoint.json is not a checkpoint description of this service/,
    ],
    [
      'another job’s checkpoint',
      async (folder) => {
        const description = JSON.parse(await readFile(path.join(folder, 'checkpoint.json'), 'utf8')) as Record<
          string,
          unknown
        >;
        await writeFile(path.join(folder, 'checkpoint.json'), JSON.stringify({ ...description, jobId: 'job-other' }));
      },
      /it belongs to job job-other/,
    ],
    ['a missing tensor file', (folder) => rm(path.join(folder, 'tensors.bin')), /is unusable: .*ENOENT/],
  ];
  for (const [what, damage, message] of refusals) {
    it(`refuses ${what}, saying which job and why, and leaves no tensors behind`, async () => {
      const jobId = `job-${what.replaceAll(/\W+/g, '-')}`;
      await saveOne(jobId);
      await damage(path.join(root, jobId));
      const before = tf.memory().numTensors;
      await assert.rejects(store.load(jobId), (error: unknown) => {
        assert.ok(error instanceof CheckpointError);
        assert.match(error.message, new RegExp(`the checkpoint of job ${jobId} in .* is unusable`));
        assert.match(error.message, message);
        return true;
      });
      assert.equal(tf.memory().numTensors, before);
    });
  }
});
