import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBody, type ErrorDetail } from '../../contract/errors.ts';
import {
  experiment,
  experimentList,
  experimentListQuery,
  experimentRequest,
  type Experiment,
  type GridValue,
} from '../../contract/experiment.ts';
import { finalStates, jobIdParams } from '../../contract/job.ts';
import { jobRequest } from '../../contract/job-request.ts';
import { deleted } from '../../contract/no-content.ts';
import { ownerOf } from '../auth.ts';
import { cancelJob } from '../cancel-job.ts';
import { assertWebhookAllowed, prepareJob, queueJobs, recordJobs, type PreparedJob } from '../create-job.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { experimentNotFound, HttpError, invalidBody } from '../http-error.ts';
import { assertOwnExperiment } from '../ownership.ts';

const errors = { 400: errorBody, 401: errorBody, 404: errorBody, 429: errorBody, 503: errorBody };

type Combination = Record<string, GridValue>;

/** Every combination of the grid's values: a nested loop over its fields in the order given, the last varying fastest. */
function combinations(grid: Readonly<Record<string, readonly GridValue[] | undefined>>): Combination[] {
  let product: Combination[] = [{}];
  for (const [field, values] of Object.entries(grid)) {
    product = product.flatMap((partial) => (values ?? []).map((value) => ({ ...partial, [field]: value })));
  }
  return product;
}

const describeCombination = (values: Combination) =>
  Object.entries(values)
    .map(([field, value]) => `${field}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(', ');

export const experimentRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, dependencies) => {
  const { experimentStore, config, removal } = dependencies;

  const existing = async (id: string, request: FastifyRequest): Promise<Experiment> => {
    await assertOwnExperiment(experimentStore, request, id);
    const found = await experimentStore.get(id);
    if (!found) throw experimentNotFound(id);
    return found;
  };

  /**
   * Each run's request checked exactly as POST /jobs checks a body, before anything is recorded:
   * the first one refused refuses the experiment, naming its combination, with its problems'
   * paths in the experiment's body (`grid.<field>` for a varied field, else `base.<field>`).
   */
  const prepareRuns = async (
    request: FastifyRequest,
    base: Record<string, unknown>,
    runs: readonly Combination[],
  ): Promise<PreparedJob[]> => {
    const prepared: PreparedJob[] = [];
    for (const [index, values] of runs.entries()) {
      const refuse = (problems: ErrorDetail[]) => {
        const details = problems.map(({ path, message }) => {
          const field = path.split('.')[0] ?? '';
          return { path: `${field in values ? 'grid' : 'base'}${path ? `.${path}` : ''}`, message };
        });
        const sentence = details.map(({ path, message }) => `${path}: ${message}`).join('; ');
        return new HttpError(
          400,
          `the experiment is invalid: run ${index + 1} of ${runs.length} (${describeCombination(values)}): ${sentence}`,
          details,
        );
      };
      const parsed = jobRequest.safeParse({ ...base, ...values });
      if (!parsed.success)
        throw refuse(parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })));
      try {
        prepared.push(await prepareJob(dependencies, request, parsed.data));
      } catch (error) {
        if (error instanceof HttpError && error.statusCode === 400)
          throw refuse(error.details ?? [{ path: '', message: error.message }]);
        throw error;
      }
    }
    return prepared;
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
      const { name, base, grid, metric, earlyTermination, webhook } = request.body;
      const runs = combinations(grid);
      if (runs.length > config.MAX_EXPERIMENT_RUNS) {
        throw invalidBody(
          'grid',
          `the grid makes ${runs.length} runs, over this server's limit of ${config.MAX_EXPERIMENT_RUNS} per experiment`,
        );
      }
      if (webhook) await assertWebhookAllowed(webhook, config);
      const prepared = await prepareRuns(request, base, runs);
      const id = randomUUID();
      // The jobs first, so that the experiment never names a job that isn't there; queued last, so
      // that no worker starts a run of an experiment that was refused or isn't recorded yet.
      const jobIds = await recordJobs(dependencies, request, prepared, id);
      const owner = ownerOf(request) ?? undefined;
      await experimentStore.create(id, {
        name: name ?? null,
        base,
        grid,
        metric,
        earlyTermination,
        runs: jobIds.map((jobId, index) => ({ id: jobId, values: runs[index] ?? {} })),
        createdAt: new Date(),
        ...(owner === undefined ? {} : { owner }),
        ...(webhook ? { webhook } : {}),
      });
      await queueJobs(dependencies, jobIds);
      request.log.info({ experimentId: id, runs: jobIds.length }, 'experiment queued');
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
