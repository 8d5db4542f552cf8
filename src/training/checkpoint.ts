import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { folderNames, removeFolder, replaceFolderAtomically } from '../storage/atomic-folder.ts';

const count = () => z.number().int().nonnegative();
const generatorPosition = () => z.number().int();

/**
 * Where a training run stands between two batches. With the weights and the optimizer's state,
 * it is all a run needs to go on exactly as an uninterrupted one would: the same batches in the
 * same order, the same augmentation and dropout masks, the same log lines.
 */
const trainingPosition = z.object({
  epochsDone: count(),
  /** Batches of the next epoch already trained (0 at an epoch's end). */
  batchesDone: count(),
  /** The shuffling generator's position before it drew the order of the epoch in progress. */
  orderRandom: generatorPosition(),
  /** The shuffling and augmentation generator's position now. */
  random: generatorPosition(),
  /** Each dropout layer's generator, in layer order. */
  dropoutRandom: z.array(generatorPosition()),
  optimizerIterations: count(),
  /** Summed loss of the epoch in progress, and of the log window in progress, with its batch count. */
  epochLoss: z.number(),
  windowLoss: z.number(),
  windowBatches: count(),
  /** Training seconds of the finished epochs and of the one in progress, and all seconds spent (time limit). */
  trainSeconds: z.number().nonnegative(),
  epochSeconds: z.number().nonnegative(),
  activeSeconds: z.number().nonnegative(),
  /** Loss log lines written so far: a resumed job's log is cut back to these. */
  logLines: count(),
  /** Where early stopping stands (absent in checkpoints of jobs without it, and older ones). */
  earlyStopping: z
    .object({ bestEpoch: count(), bestValue: z.number().nullable(), epochsWithoutImprovement: count() })
    .optional(),
  /** Tensors after the weights and the optimizer's state: the best epoch's weights (restoreBest), when kept. */
  bestWeights: count().optional(),
});
export type TrainingPosition = z.infer<typeof trainingPosition>;

/**
 * A checkpoint as the trainer hands it out and takes it back: the position and every tensor of
 * the run (the model's weights, then the optimizer's state: SGD's momentum buffers, or Adam's first
 * moments then its second moments), float32, in a fixed order.
 */
export interface TrainingCheckpoint {
  readonly position: TrainingPosition;
  readonly tensors: readonly tf.Tensor[];
  /** The best epoch's weights, for early stopping's restoreBest, stored after the others. */
  readonly bestWeights?: readonly tf.Tensor[] | undefined;
}

const storedCheckpoint = z.object({
  format: z.literal('trainer-checkpoint/1'),
  jobId: z.string(),
  position: trainingPosition,
  shapes: z.array(z.array(count())),
  tensorBytes: count(),
  tensorsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
type StoredCheckpoint = z.infer<typeof storedCheckpoint>;

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

const descriptionFile = 'checkpoint.json';
const tensorsFile = 'tensors.bin';

/**
 * Checkpoints of unfinished jobs, one folder each under `root`. A new one replaces the old all at
 * once, so a worker killed while writing leaves the previous checkpoint, never half of one.
 */
export class CheckpointStore {
  constructor(private readonly root: string) {}

  private folder(jobId: string): string {
    return path.join(this.root, jobId);
  }

  async save(jobId: string, checkpoint: TrainingCheckpoint): Promise<void> {
    await replaceFolderAtomically(this.root, jobId, async (folder) => {
      // Tensor by tensor: AlexNet's weights and momentum are 450 MB, not to be copied at once.
      const hash = createHash('sha256');
      let tensorBytes = 0;
      const file = await open(path.join(folder, tensorsFile), 'w');
      const all = [...checkpoint.tensors, ...(checkpoint.bestWeights ?? [])];
      try {
        for (const tensor of all) {
          if (tensor.dtype !== 'float32') throw new CheckpointError(`can't checkpoint a ${tensor.dtype} tensor`);
          const values = (await tensor.data()) as Float32Array;
          const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
          hash.update(bytes);
          await file.write(bytes);
          tensorBytes += bytes.byteLength;
        }
        await file.sync();
      } finally {
        await file.close();
      }
      const stored: StoredCheckpoint = {
        format: 'trainer-checkpoint/1',
        jobId,
        position: checkpoint.bestWeights?.length
          ? { ...checkpoint.position, bestWeights: checkpoint.bestWeights.length }
          : checkpoint.position,
        shapes: all.map((tensor) => [...tensor.shape]),
        tensorBytes,
        tensorsSha256: hash.digest('hex'),
      };
      await writeFile(path.join(folder, descriptionFile), JSON.stringify(stored));
    });
  }

  /**
   * The job's checkpoint, or null when it has none. One that is truncated, altered or another
   * job's is refused with a CheckpointError, never handed out. The caller disposes the tensors.
   */
  async load(jobId: string): Promise<TrainingCheckpoint | null> {
    const folder = this.folder(jobId);
    const corrupt = (problem: string) =>
      new CheckpointError(`the checkpoint of job ${jobId} in ${folder} is unusable: ${problem}`);
    let description: string;
    try {
      description = await readFile(path.join(folder, descriptionFile), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw corrupt((error as Error).message);
    }
    let stored: StoredCheckpoint;
    try {
      stored = storedCheckpoint.parse(JSON.parse(description));
    } catch {
      throw corrupt(`${descriptionFile} is not a checkpoint description of this service`);
    }
    if (stored.jobId !== jobId) throw corrupt(`it belongs to job ${stored.jobId}`);
    const expectedBytes = stored.shapes.reduce((sum, shape) => sum + 4 * tf.util.sizeFromShape(shape), 0);
    if (expectedBytes !== stored.tensorBytes)
      throw corrupt(`its tensor shapes need ${expectedBytes} bytes, not ${stored.tensorBytes}`);

    const tensors: tf.Tensor[] = [];
    try {
      const file = await open(path.join(folder, tensorsFile), 'r');
      try {
        const { size } = await file.stat();
        if (size !== stored.tensorBytes)
          throw corrupt(`${tensorsFile} has ${size} bytes, ${stored.tensorBytes} expected (truncated?)`);
        const hash = createHash('sha256');
        let offset = 0;
        for (const shape of stored.shapes) {
          const values = new Float32Array(tf.util.sizeFromShape(shape));
          const bytes = Buffer.from(values.buffer);
          await file.read(bytes, 0, bytes.byteLength, offset);
          hash.update(bytes);
          offset += bytes.byteLength;
          tensors.push(tf.tensor(values, shape, 'float32'));
        }
        if (hash.digest('hex') !== stored.tensorsSha256) throw corrupt(`${tensorsFile} doesn't match its checksum`);
      } finally {
        await file.close();
      }
    } catch (error) {
      tf.dispose(tensors);
      throw error instanceof CheckpointError ? error : corrupt((error as Error).message);
    }
    const best = stored.position.bestWeights ?? 0;
    if (best > tensors.length) {
      tf.dispose(tensors);
      throw corrupt(`it lists ${best} best weights among ${tensors.length} tensors`);
    }
    const split = tensors.length - best;
    return {
      position: stored.position,
      tensors: tensors.slice(0, split),
      ...(best > 0 ? { bestWeights: tensors.slice(split) } : {}),
    };
  }

  /** The jobs that have a checkpoint, or the remains of one whose write a crash cut short. */
  async jobIds(): Promise<string[]> {
    return folderNames(this.root);
  }

  /** Deletes the job's checkpoint and any remains of a write that a crash cut short. */
  async remove(jobId: string): Promise<void> {
    await removeFolder(this.root, jobId);
  }
}
