import type { Queue } from 'bullmq';
import { finalStates, type JobState } from '../contract/job.ts';
import { removeArtifact } from '../models/artifact.ts';
import type { TrainingJobData } from '../queue/training-queue.ts';
import type { JobStore } from '../store/job-store.ts';
import { CheckpointStore } from '../training/checkpoint.ts';
import type { Predictor } from './predictor.ts';

/** `current`: the state of a job that is still queued or running, null for no such job. */
export type RemovalOutcome = { ok: true } | { ok: false; current: JobState | null };

/**
 * Deletes an ended job and everything it left: its model and any checkpoint (files), its queue
 * entry (BullMQ keeps failed ones), then its Redis keys. DELETE /jobs/:id and the retention
 * sweep both come here. The files go first: a process that dies half way leaves a record that a
 * second try deletes, never files that no record names.
 */
export class JobRemoval {
  private readonly checkpoints: CheckpointStore;

  constructor(
    private readonly store: JobStore,
    private readonly queue: Queue<TrainingJobData>,
    private readonly predictor: Predictor,
    private readonly artifactsDir: string,
    checkpointsDir: string,
  ) {
    this.checkpoints = new CheckpointStore(checkpointsDir);
  }

  async remove(id: string): Promise<RemovalOutcome> {
    // A final state is final: once seen, nothing but a removal changes the job any more.
    const state = await this.store.state(id);
    // No job: nothing left of it but perhaps a stale entry in the index of finished jobs, which this drops.
    if (state === null) return this.store.remove(id);
    if (!finalStates.includes(state)) return { ok: false, current: state };
    this.predictor.forget(id);
    // The queue entry of a job that ended a moment ago may still be locked by its worker, which
    // then removes it itself (removeOnComplete); only failed entries stay, and at most 1000 of them.
    const dequeued = this.queue.remove(id).catch(() => 0);
    await Promise.all([removeArtifact(this.artifactsDir, id), this.checkpoints.remove(id), dequeued]);
    const removed = await this.store.remove(id);
    // Another process's removal got there first: gone all the same.
    return removed.ok || removed.current === null ? { ok: true } : removed;
  }
}
