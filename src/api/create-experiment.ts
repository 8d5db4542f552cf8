import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ErrorDetail } from '../contract/errors.ts';
import type { ExperimentRequest, GridValue } from '../contract/experiment.ts';
import { jobRequest } from '../contract/job-request.ts';
import { ownerOf } from './auth.ts';
import { assertWebhookAllowed, prepareJob, queueJobs, recordJobs, type PreparedJob } from './create-job.ts';
import type { ApiDependencies } from './dependencies.ts';
import { HttpError, invalidBody } from './http-error.ts';

type Dependencies = Pick<
  ApiDependencies,
  'store' | 'datasetStore' | 'baseStore' | 'queue' | 'config' | 'experimentStore'
>;

type Combination = Record<string, GridValue>;

/**
 * What POST /experiments does with a valid body: one job for every combination of the grid, each
 * checked as POST /jobs checks a body before anything is recorded (400 when one is refused, 429
 * when the queue has no room for all), then the jobs and the experiment recorded and the jobs
 * queued. Answers the experiment's id.
 */
export async function createExperiment(
  dependencies: Dependencies,
  request: FastifyRequest,
  body: ExperimentRequest,
): Promise<string> {
  const { experimentStore, config } = dependencies;
  const { name, base, grid, metric, earlyTermination, webhook } = body;
  const runs = combinations(grid);
  if (runs.length > config.MAX_EXPERIMENT_RUNS) {
    throw invalidBody(
      'grid',
      `the grid makes ${runs.length} runs, over this server's limit of ${config.MAX_EXPERIMENT_RUNS} per experiment`,
    );
  }
  if (webhook) await assertWebhookAllowed(webhook, config);
  const prepared = await prepareRuns(dependencies, request, base, runs);
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
  return id;
}

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

/**
 * Each run's request checked exactly as POST /jobs checks a body, before anything is recorded:
 * the first one refused refuses the experiment, naming its combination, with its problems'
 * paths in the experiment's body (`grid.<field>` for a varied field, else `base.<field>`).
 */
async function prepareRuns(
  dependencies: Dependencies,
  request: FastifyRequest,
  base: Record<string, unknown>,
  runs: readonly Combination[],
): Promise<PreparedJob[]> {
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
}
