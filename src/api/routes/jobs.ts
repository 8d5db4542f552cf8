import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errorBody } from '../../contract/errors.ts';
import { job, jobIdParams, jobList, jobListQuery, type Job } from '../../contract/job.ts';
import { jobRequest } from '../../contract/job-request.ts';
import { randomSeed } from '../../random.ts';
import { enqueueTraining } from '../../queue/training-queue.ts';
import { batchesPerEpoch, progressAt } from '../../contract/progress.ts';
import { HttpError, jobNotFound } from '../http-error.ts';
import { datasetFactsFor } from '../dataset-facts.ts';
import { assertCanStartFrom } from '../fine-tuning.ts';
import { settingsFor } from '../job-settings.ts';
import type { ApiDependencies } from '../dependencies.ts';
import { ownerOf } from '../auth.ts';
import { assertOwnJob } from '../ownership.ts';
import { urlRefusal, webhookUrlPolicy, type WebhookUrlPolicy } from '../../webhooks/url-policy.ts';

const errors = { 400: errorBody, 401: errorBody, 404: errorBody, 429: errorBody, 503: errorBody };

export const jobRoutes: FastifyPluginAsyncZod<ApiDependencies> = async (app, { store, datasetStore, queue, config }) => {
  const webhookPolicy = webhookUrlPolicy(config);
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
      // The webhook is kept apart from the settings, which GET /jobs/:id shows: it holds a secret.
      const { webhook, ...training } = request.body;
      const dataset = await datasetFactsFor(datasetStore, request, training.dataset);
      const settings = settingsFor(training, dataset, randomSeed, config.MAX_JOB_SECONDS);
      await assertCanStartFrom(store, request, settings, dataset, config.ARTIFACTS_DIR);
      if (settings.timeoutSeconds > config.MAX_JOB_SECONDS) {
        const message = `timeoutSeconds (${settings.timeoutSeconds}) is over this server's limit of ${config.MAX_JOB_SECONDS} seconds per job`;
        throw new HttpError(400, `the body is invalid: ${message}`, [{ path: 'timeoutSeconds', message }]);
      }
      const images = settings.epochs * settings.trainLimit;
      if (images > config.MAX_TRAINING_IMAGES_PER_JOB) {
        const message = `epochs × trainLimit (${settings.epochs} × ${settings.trainLimit} = ${images} training images) is over this server's limit of ${config.MAX_TRAINING_IMAGES_PER_JOB} per job`;
        throw new HttpError(400, `the body is invalid: ${message}`, [{ path: 'epochs', message }]);
      }
      if (webhook) await assertWebhookUrlAllowed(webhook.url, webhookPolicy);
      const owner = ownerOf(request);
      const id = randomUUID();
      const progress = progressAt(settings.epochs, batchesPerEpoch(settings.trainLimit, settings.batchSize), 0, 0);
      const limits = { total: config.MAX_QUEUED_JOBS, perOwner: config.MAX_QUEUED_PER_CLIENT };
      const created = await store.create(id, settings, progress, new Date(), owner ?? undefined, limits, webhook);
      if (created === 'ownerFull') {
        throw new HttpError(429, `you have ${config.MAX_QUEUED_PER_CLIENT} jobs queued or running, the most one client may have; wait for one to end or cancel one`);
      }
      if (created === 'full') {
        throw new HttpError(429, `the queue is full (${config.MAX_QUEUED_JOBS} jobs queued or running); try again later`);
      }
      await enqueueTraining(queue, id);
      request.log.info({ jobId: id, model: settings.model, dataset: settings.dataset }, 'job queued');
      return reply.code(201).header('location', `/jobs/${id}`).send(await existing(id, request));
    },
  );

  app.get(
    '/jobs',
    { schema: { summary: 'List jobs, newest first', querystring: jobListQuery, response: { 200: jobList, ...errors } } },
    async (request) => {
      const owner = ownerOf(request);
      return store.list(owner === null ? request.query : { ...request.query, owner });
    },
  );

  app.get(
    '/jobs/:id',
    { schema: { summary: 'A job: state, progress, loss log and result', params: jobIdParams, response: { 200: job, ...errors } } },
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
      const outcome = await store.lifecycle.cancel(id);
      if (!outcome.ok) {
        if (outcome.current === null) throw jobNotFound(id);
        throw new HttpError(409, `job ${id} has already ended (${outcome.current}) and can't be cancelled`);
      }
      // A queued job leaves the queue now; a running one is stopped by its worker, which watches the state.
      if (outcome.previous === 'queued') await queue.remove(id).catch(() => undefined);
      request.log.info({ jobId: id }, 'job cancelled');
      return existing(id, request);
    },
  );
};

/** A webhook URL this server would not call answers 400 now, rather than failing every delivery once the job ends. */
async function assertWebhookUrlAllowed(url: string, policy: WebhookUrlPolicy): Promise<void> {
  const refusal = await urlRefusal(url, policy);
  if (!refusal) return;
  const message = `webhook.url is refused: ${refusal}`;
  throw new HttpError(400, `the body is invalid: ${message}`, [{ path: 'webhook.url', message }]);
}
