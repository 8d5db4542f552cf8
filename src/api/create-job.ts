import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { JobProgress } from '../contract/job.ts';
import type { JobSettings, ParsedJobRequest } from '../contract/job-request.ts';
import { batchesPerEpoch, progressAt, trainingImages } from '../contract/progress.ts';
import { enqueueTraining } from '../queue/training-queue.ts';
import { randomSeed } from '../random.ts';
import type { CreateOutcome } from '../store/job-store.ts';
import { ownerOf } from './auth.ts';
import { datasetFactsFor } from './dataset-facts.ts';
import type { ApiDependencies } from './dependencies.ts';
import { assertCanStartFrom } from './fine-tuning.ts';
import { HttpError, invalidBody } from './http-error.ts';
import { settingsFor } from './job-settings.ts';
import type { WebhookRequest } from '../contract/webhook.ts';
import { urlRefusal, webhookUrlPolicy } from '../webhooks/url-policy.ts';

type Dependencies = Pick<ApiDependencies, 'store' | 'datasetStore' | 'baseStore' | 'queue' | 'config'>;

/** A job request with every default filled in and every check passed: ready to be recorded. */
export interface PreparedJob {
  readonly settings: JobSettings;
  readonly progress: JobProgress;
  /** Kept apart from the settings, which GET /jobs/:id shows: it holds a secret. */
  readonly webhook: WebhookRequest | undefined;
}

/**
 * What POST /jobs does with a valid body before anything is recorded: fills in the defaults that
 * depend on the data set and the server, and refuses (400, saying why) what this server won't
 * train: an unusable data set or initFrom, a timeout or a number of training images over its limits.
 */
export async function prepareJob(
  { store, datasetStore, baseStore, config }: Dependencies,
  request: FastifyRequest,
  body: ParsedJobRequest,
): Promise<PreparedJob> {
  const { webhook, ...training } = body;
  const dataset = await datasetFactsFor(datasetStore, request, training.dataset);
  const settings = settingsFor(training, dataset, randomSeed, config.MAX_JOB_SECONDS);
  await assertCanStartFrom({ store, baseStore, config }, request, settings, dataset);
  if (settings.timeoutSeconds > config.MAX_JOB_SECONDS) {
    throw invalidBody(
      'timeoutSeconds',
      `timeoutSeconds (${settings.timeoutSeconds}) is over this server's limit of ${config.MAX_JOB_SECONDS} seconds per job`,
    );
  }
  const images = settings.epochs * settings.trainLimit;
  if (images > config.MAX_TRAINING_IMAGES_PER_JOB) {
    throw invalidBody(
      'epochs',
      `epochs × trainLimit (${settings.epochs} × ${settings.trainLimit} = ${images} training images) is over this server's limit of ${config.MAX_TRAINING_IMAGES_PER_JOB} per job`,
    );
  }
  if (webhook) await assertWebhookAllowed(webhook, config);
  return {
    settings,
    progress: progressAt(settings.epochs, batchesPerEpoch(trainingImages(settings), settings.batchSize), 0, 0),
    webhook,
  };
}

/** A webhook URL this server would not call answers 400 now, rather than failing every delivery once the job (or experiment) ends. */
export async function assertWebhookAllowed(
  webhook: WebhookRequest,
  config: Parameters<typeof webhookUrlPolicy>[0],
): Promise<void> {
  const refusal = await urlRefusal(webhook.url, webhookUrlPolicy(config));
  if (refusal) throw invalidBody('webhook.url', `webhook.url is refused: ${refusal}`);
}

/**
 * Records the prepared jobs as queued, all or none, and answers their ids in order: 429 when the
 * queue has no room for all of them, in all or for this client. The room is checked first; should
 * other requests fill it meanwhile, the jobs recorded so far are deleted again (nobody was told
 * their ids, and none was queued). `experimentId`: the experiment they are runs of.
 */
export async function recordJobs(
  { store, config }: Dependencies,
  request: FastifyRequest,
  jobs: readonly PreparedJob[],
  experimentId?: string,
): Promise<string[]> {
  const owner = ownerOf(request) ?? undefined;
  const limits = { total: config.MAX_QUEUED_JOBS, perOwner: config.MAX_QUEUED_PER_CLIENT };
  if (jobs.length > 1) {
    if (owner !== undefined && (await store.activeCount(owner)) + jobs.length > limits.perOwner)
      throw queueFull('ownerFull', config, jobs.length);
    if ((await store.activeCount()) + jobs.length > limits.total) throw queueFull('full', config, jobs.length);
  }
  const ids: string[] = [];
  for (const { settings, progress, webhook } of jobs) {
    const id = randomUUID();
    const created = await store.create(id, settings, progress, new Date(), owner, limits, experimentId, webhook);
    if (created !== 'created') {
      await Promise.all(ids.map((made) => store.discardUnqueued(made)));
      throw queueFull(created, config, jobs.length);
    }
    ids.push(id);
  }
  return ids;
}

/** Hands recorded jobs to the workers' queue, in order. */
export async function queueJobs({ queue }: Pick<ApiDependencies, 'queue'>, ids: readonly string[]): Promise<void> {
  for (const id of ids) await enqueueTraining(queue, id);
}

function queueFull(
  outcome: Exclude<CreateOutcome, 'created'>,
  config: Dependencies['config'],
  count: number,
): HttpError {
  if (count > 1) {
    const limit =
      outcome === 'ownerFull'
        ? `you over ${config.MAX_QUEUED_PER_CLIENT} jobs queued or running, the most one client may have`
        : `the queue over its ${config.MAX_QUEUED_JOBS} jobs queued or running`;
    return new HttpError(
      429,
      `these ${count} jobs would put ${limit}; none was created: wait for jobs to end, cancel some, or ask for fewer`,
    );
  }
  if (outcome === 'ownerFull') {
    return new HttpError(
      429,
      `you have ${config.MAX_QUEUED_PER_CLIENT} jobs queued or running, the most one client may have; wait for one to end or cancel one`,
    );
  }
  return new HttpError(429, `the queue is full (${config.MAX_QUEUED_JOBS} jobs queued or running); try again later`);
}
