import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBody } from '../../contract/errors.ts';
import {
  experiment,
  experimentList,
  experimentListQuery,
  experimentRequest,
  type Experiment,
} from '../../contract/experiment.ts';
import { finalStates, jobIdParams } from '../../contract/job.ts';
import { deleted } from '../../contract/no-content.ts';
import { ownerOf } from '../auth.ts';
import { cancelJob } from '../cancel-job.ts';
import { createExperiment } from '../create-experiment.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { experimentNotFound, HttpError } from '../http-error.ts';
import { assertOwnExperiment } from '../ownership.ts';

const errors = { 400: errorBody, 401: errorBody, 404: errorBody, 429: errorBody, 503: errorBody };

export const experimentRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, dependencies) => {
  const { experimentStore, removal } = dependencies;

  const existing = async (id: string, request: FastifyRequest): Promise<Experiment> => {
    await assertOwnExperiment(experimentStore, request, id);
    const found = await experimentStore.get(id);
    if (!found) throw experimentNotFound(id);
    return found;
  };

  app.post(
    '/experiments',
    {
      schema: {
        summary: 'Start an experiment: one training job for every combination of the grid',
        body: experimentRequest,
        response: { 201: experiment, 413: errorBody, 415: errorBody, ...errors },
      },
    },
    async (request, reply) => {
      const id = await createExperiment(dependencies, request, request.body);
      return reply
        .code(201)
        .header('location', `/experiments/${id}`)
        .send(await existing(id, request));
    },
  );

  app.get(
    '/experiments',
    {
      schema: {
        summary: 'List experiments, newest first',
        querystring: experimentListQuery,
        response: { 200: experimentList, ...errors },
      },
    },
    async (request) => {
      const owner = ownerOf(request);
      return experimentStore.list(owner === null ? request.query : { ...request.query, owner });
    },
  );

  app.get(
    '/experiments/:id',
    {
      schema: {
        summary: "An experiment: its runs' states, values and results, and the best run",
        params: jobIdParams,
        response: { 200: experiment, ...errors },
      },
    },
    async (request) => existing(request.params.id, request),
  );

  app.delete(
    '/experiments/:id',
    {
      schema: {
        summary:
          "Delete an experiment whose runs have all ended, and its runs' jobs (records, models, checkpoints), as DELETE /jobs/:id deletes one",
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
      const found = await existing(id, request);
      const unfinished = found.runs.filter((run) => !finalStates.includes(run.state));
      if (unfinished.length > 0) {
        throw new HttpError(
          409,
          `experiment ${id} has ${unfinished.length} run${unfinished.length === 1 ? '' : 's'} queued or running; cancel it first (POST /experiments/${id}/cancel), then delete it`,
        );
      }
      // The runs first: a removal cut short leaves an experiment that a second DELETE finishes, never runs that no experiment names.
      for (const run of found.runs) {
        const outcome = await removal.remove(run.id);
        if (!outcome.ok && outcome.current !== null)
          throw new HttpError(
            409,
            `run ${run.id} of experiment ${id} is ${outcome.current}; cancel the experiment first`,
          );
      }
      if (!(await experimentStore.remove(id))) throw experimentNotFound(id);
      request.log.info({ experimentId: id, runs: found.runs.length }, 'experiment deleted');
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/experiments/:id/cancel',
    {
      schema: {
        summary: 'Cancel the runs of an experiment that are queued or running; those that ended stay as they are',
        params: jobIdParams,
        response: { 200: experiment, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await existing(id, request);
      const unfinished = found.runs.filter((run) => !finalStates.includes(run.state));
      // A run that ends meanwhile is refused by the verb, and stays as it ended.
      await Promise.all(unfinished.map((run) => cancelJob(dependencies, run.id)));
      request.log.info({ experimentId: id, cancelled: unfinished.length }, 'experiment cancelled');
      return existing(id, request);
    },
  );
};
