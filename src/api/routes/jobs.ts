import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBody } from '../../contract/errors.ts';
import { job, jobIdParams, jobList, jobListQuery, type Job } from '../../contract/job.ts';
import { jobRequest } from '../../contract/job-request.ts';
import { deleted } from '../../contract/no-content.ts';
import { HttpError, jobNotFound } from '../http-error.ts';
import { cancelJob } from '../cancel-job.ts';
import { prepareJob, queueJobs, recordJobs } from '../create-job.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { ownerOf } from '../auth.ts';
import { assertOwnJob } from '../ownership.ts';

const errors = { 400: errorBody, 401: errorBody, 404: errorBody, 429: errorBody, 503: errorBody };

export const jobRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, dependencies) => {
  const { store, removal } = dependencies;
  const existing = async (id: string, request: FastifyRequest): Promise<Job> => {
    await assertOwnJob(store, request, id);
    const found = await store.get(id);
    if (!found) throw jobNotFound(id);
    return found;
  };

  app.post(
    '/jobs',
    {
      schema: {
        summary: 'Start a training job',
        body: jobRequest,
        response: { 201: job, 413: errorBody, 415: errorBody, ...errors },
      },
    },
    async (request, reply) => {
      const prepared = await prepareJob(dependencies, request, request.body);
      const id = (await recordJobs(dependencies, request, [prepared]))[0] as string;
      await queueJobs(dependencies, [id]);
      request.log.info({ jobId: id, model: prepared.settings.model, dataset: prepared.settings.dataset }, 'job queued');
      return reply
        .code(201)
        .header('location', `/jobs/${id}`)
        .send(await existing(id, request));
    },
  );

  app.get(
    '/jobs',
    {
      schema: { summary: 'List jobs, newest first', querystring: jobListQuery, response: { 200: jobList, ...errors } },
    },
    async (request) => {
      const owner = ownerOf(request);
      return store.list(owner === null ? request.query : { ...request.query, owner });
    },
  );

  app.get(
    '/jobs/:id',
    {
      schema: {
        summary: 'A job: state, progress, loss log and result',
        params: jobIdParams,
        response: { 200: job, ...errors },
      },
    },
    async (request) => existing(request.params.id, request),
  );

  app.post(
    '/jobs/:id/cancel',
    {
      schema: {
        summary: 'Cancel a queued or running job; it stops within one batch',
        params: jobIdParams,
        response: { 200: job, 409: errorBody, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params;
      await assertOwnJob(store, request, id);
      const outcome = await cancelJob(dependencies, id);
      if (!outcome.ok) {
        if (outcome.current === null) throw jobNotFound(id);
        throw new HttpError(409, `job ${id} has already ended (${outcome.current}) and can't be cancelled`);
      }
      request.log.info({ jobId: id }, 'job cancelled');
      return existing(id, request);
    },
  );

  app.delete(
    '/jobs/:id',
    {
      schema: {
        summary: 'Delete an ended job: its record, loss log, event stream, model and any checkpoint',
        params: jobIdParams,
        response: {
          204: deleted,
          409: errorBody,
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await assertOwnJob(store, request, id);
      const outcome = await removal.remove(id);
      if (!outcome.ok) {
        if (outcome.current === null) throw jobNotFound(id);
        throw new HttpError(
          409,
          `job ${id} is ${outcome.current}; cancel it first (POST /jobs/${id}/cancel), then delete it`,
        );
      }
      request.log.info({ jobId: id }, 'job deleted');
      return reply.code(204).send(null);
    },
  );
};
