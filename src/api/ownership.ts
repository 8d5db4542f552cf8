import type { FastifyRequest } from 'fastify';
import type { ExperimentStore } from '../store/experiment-store.ts';
import type { JobStore } from '../store/job-store.ts';
import { ownerOf } from './auth.ts';
import { experimentNotFound, jobNotFound } from './http-error.ts';

/**
 * With API keys, a client sees only the jobs it created: another client's job (or one created
 * before keys were switched on) is answered like an unknown id, 404, so ids can't be probed.
 */
export async function assertOwnJob(store: JobStore, request: FastifyRequest, id: string): Promise<void> {
  const owner = ownerOf(request);
  if (owner === null) return;
  if ((await store.owner(id)) !== owner) throw jobNotFound(id);
}

/** As assertOwnJob, for an experiment: owned like its jobs, by the client that created it. */
export async function assertOwnExperiment(
  experiments: ExperimentStore,
  request: FastifyRequest,
  id: string,
): Promise<void> {
  const owner = ownerOf(request);
  if (owner === null) return;
  if ((await experiments.owner(id)) !== owner) throw experimentNotFound(id);
}
