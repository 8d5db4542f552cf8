import type { FastifyRequest } from 'fastify';
import { ArtifactError } from '../models/artifact.ts';
import type { JobStore } from '../store/job-store.ts';
import { HttpError, jobNotFound } from './http-error.ts';
import { assertOwnJob } from './ownership.ts';

/** What predictions and the model download need: the client's own job, completed (404, 409 otherwise). */
export async function assertCompletedJob(
  store: JobStore,
  request: FastifyRequest,
  id: string,
  need: string,
): Promise<void> {
  await assertOwnJob(store, request, id);
  const state = await store.state(id);
  if (state === null) throw jobNotFound(id);
  if (state !== 'completed') throw new HttpError(409, `job ${id} is ${state}; ${need} a completed job`);
}

/** Runs `use` of a completed job's trained model; a model missing or corrupt on disk is the server's fault, 503. */
export async function usingArtifact<T>(request: FastifyRequest, id: string, use: () => Promise<T>): Promise<T> {
  try {
    return await use();
  } catch (error) {
    if (error instanceof ArtifactError) {
      request.log.error({ err: error, jobId: id }, 'model artifact unavailable');
      throw new HttpError(503, `the trained model of job ${id} is unavailable: ${error.message}`);
    }
    throw error;
  }
}
