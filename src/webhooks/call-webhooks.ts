import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job as QueuedJob } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { experiment as experimentSchema } from '../contract/experiment.ts';
import { job as jobSchema } from '../contract/job.ts';
import { connectRedis, type RedisTarget } from '../store/connection.ts';
import type { EndedJob } from '../store/event-log.ts';
import { ExperimentStore } from '../store/experiment-store.ts';
import { JobStore } from '../store/job-store.ts';
import type { WebhookRecords } from '../store/webhook-record.ts';
import { queueKeyPrefix } from '../queue/training-queue.ts';
import {
  createWebhookQueue,
  enqueueWebhook,
  webhookQueueName,
  type RetrySchedule,
  type WebhookJobData,
} from '../queue/webhook-queue.ts';
import { deliverWebhook } from './deliver.ts';
import { webhookUrlPolicy, type WebhookUrlPolicy } from './url-policy.ts';

/** The consumer group of the stream of ended jobs that queues their webhooks. */
const endedGroup = 'webhooks';
/** An ended job given to a consumer that has not acknowledged it for this long is taken by another: the first died, or could not queue it. */
const staleMs = 60_000;
/** Deliveries in flight at once per process: each mostly waits on a receiver, bounded by WEBHOOK_TIMEOUT_MS. */
const concurrency = 16;

export interface WebhooksOptions {
  readonly config: Pick<
    Config,
    | 'KEY_PREFIX'
    | 'WEBHOOK_ALLOWED_HOSTS'
    | 'WEBHOOK_ALLOW_PRIVATE_ADDRESSES'
    | 'WEBHOOK_TIMEOUT_MS'
    | 'WEBHOOK_FIRST_RETRY_MS'
    | 'WEBHOOK_RETRY_FOR_SECONDS'
  >;
  readonly redisTarget: RedisTarget;
  readonly logger: Logger;
}

/**
 * Calls the webhooks of jobs as they end, and of experiments when their last run ends: queues a
 * delivery for each ended job that names a webhook, and for its experiment when that was the
 * experiment's last unfinished run and the experiment names one; delivers the queued ones with
 * retries (docs/guides/webhooks.md#retries-and-what-a-job-shows-of-them).
 *
 * Where an end is noticed: the stream of ended jobs, read as a Redis consumer group. Every end
 * (completed, failed, cancelled, whoever caused it: a worker, the API's cancel, the queue giving
 * up) is appended to that stream by the transition script in the same atomic step that records it
 * (store/scripts/transition-4.lua), so no end can happen without its entry. Queueing the delivery
 * in the code that asked for the change instead would lose it whenever that process died, or lost
 * Redis, between the change and the queueing. An entry is acknowledged only once its delivery is
 * queued, and one left unacknowledged (a consumer that died, or failed to queue it) is claimed by
 * a consumer after a minute, so every end with a webhook is queued at least once; the delivery's
 * id as the BullMQ job id, and the record of its successful attempts, make it delivered once.
 * An experiment's end needs no entry of its own: its runs' ends are appended in the order they
 * happen, so whoever reads the last run's entry finds every run ended (runs that end together
 * may each find it so, and queue the same delivery id).
 *
 * The deliveries themselves go through their own BullMQ queue: its attempts and exponential
 * backoff are the retries, and a receiver that is slow or dead holds up nothing but its own
 * delivery, never a job or another queue.
 */
export function startWebhooks(options: WebhooksOptions): { close(): Promise<void> } {
  const { config, logger } = options;
  const log = logger.child({ component: 'webhooks' });
  // Blocking connections: while Redis is away the deliveries and the consumer wait for it instead of failing.
  const redis = connectRedis(options.redisTarget, 'blocking');
  const reading = connectRedis(options.redisTarget, 'blocking');
  const workerConnection = connectRedis(options.redisTarget, 'blocking');
  for (const connection of [redis, reading, workerConnection])
    connection.on('error', (error) => log.debug({ err: error }, 'webhook Redis connection error'));
  const store = new JobStore(redis, config.KEY_PREFIX);
  const experiments = new ExperimentStore(redis, config.KEY_PREFIX);
  const queue = createWebhookQueue(redis, config.KEY_PREFIX);
  queue.on('error', (error) => log.debug({ err: error }, 'webhook queue Redis connection error'));
  const schedule: RetrySchedule = {
    firstRetryMs: config.WEBHOOK_FIRST_RETRY_MS,
    retryForSeconds: config.WEBHOOK_RETRY_FOR_SECONDS,
  };
  const policy = webhookUrlPolicy(config);

  const worker = new Worker<WebhookJobData>(
    webhookQueueName,
    (queued) => attemptDelivery(queued, { jobs: store, experiments }, policy, config.WEBHOOK_TIMEOUT_MS, log),
    {
      connection: workerConnection,
      prefix: queueKeyPrefix(config.KEY_PREFIX),
      concurrency,
    },
  );
  worker.on('failed', (queued, error) => {
    if (queued && (queued.attemptsMade >= (queued.opts.attempts ?? 1) || error instanceof UnrecoverableError)) {
      log.warn(
        {
          ...subjectOf(queued.data),
          webhookId: queued.data.deliveryId,
          attempts: queued.attemptsMade,
          reason: error.message,
        },
        'webhook delivery given up',
      );
    }
  });
  worker.on('error', (error) => log.error({ err: error }, 'webhook worker error'));

  const consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  let closing = false;
  const queueDelivery = async (ended: EndedJob) => {
    if (await store.webhookTarget(ended.id)) {
      const found = await store.get(ended.id);
      // The job as GET /jobs/:id serialises it: the same schema, so the same fields (and never the secret).
      if (found)
        await enqueueWebhook(
          queue,
          {
            deliveryId: `job-${ended.id}-${ended.state}`,
            jobId: ended.id,
            body: JSON.stringify(jobSchema.encode(found)),
          },
          schedule,
        );
    }
    const experimentId = await store.experimentOf(ended.id);
    if (experimentId && (await experiments.webhookTarget(experimentId))) {
      const whole = await experiments.get(experimentId);
      if (whole?.ended)
        await enqueueWebhook(
          queue,
          {
            deliveryId: `experiment-${whole.id}-ended`,
            experimentId: whole.id,
            body: JSON.stringify(experimentSchema.encode(whole)),
          },
          schedule,
        );
    }
    await store.events.acknowledgeEnded(endedGroup, ended.position);
  };
  const consume = async () => {
    // Made again after any error: a Redis that restarted without its data has lost the group too.
    let grouped = false;
    while (!closing) {
      try {
        if (!grouped) await store.events.createEndedGroup(endedGroup);
        grouped = true;
        const stale = await store.events.claimStaleEnded(endedGroup, consumer, staleMs, 100);
        const fresh = await store.events.readEndedAs(endedGroup, consumer, {
          count: 100,
          blockMs: 5000,
          connection: reading,
        });
        for (const ended of [...stale, ...fresh]) await queueDelivery(ended);
      } catch (error) {
        if (closing) return;
        grouped = false;
        log.warn({ err: error }, 'could not queue the webhooks of ended jobs; trying again');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  const consuming = consume();

  return {
    async close() {
      closing = true;
      // Ends the blocked read at once; the loop sees `closing` and stops.
      reading.disconnect();
      await consuming;
      await worker.close();
      await store.events
        .removeEndedConsumer(endedGroup, consumer)
        .catch((error: unknown) => log.debug({ err: error }, 'could not remove the webhook consumer'));
      await queue.close();
      workerConnection.disconnect();
      redis.disconnect();
    },
  };
}

/** The record a delivery reports, as its log lines name it. */
const subjectOf = (data: WebhookJobData): { experimentId: string } | { jobId: string } =>
  'experimentId' in data ? { experimentId: data.experimentId } : { jobId: data.jobId };

/** One attempt of a queued delivery, recorded on its job or experiment; throws when BullMQ should retry it (or, UnrecoverableError, give up). */
async function attemptDelivery(
  queued: QueuedJob<WebhookJobData>,
  records: { readonly jobs: WebhookRecords; readonly experiments: WebhookRecords },
  policy: WebhookUrlPolicy,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  const { deliveryId, body } = queued.data;
  const subject = subjectOf(queued.data);
  const { owner, id } =
    'experimentId' in subject
      ? { owner: records.experiments, id: subject.experimentId }
      : { owner: records.jobs, id: subject.jobId };
  const target = await owner.webhookTarget(id);
  // Deleted meanwhile, or already delivered by an earlier copy of this delivery (queued again after its job had left the queue).
  if (!target || target.deliveries.some((delivery) => delivery.webhookId === deliveryId && delivery.ok)) return;
  const at = new Date().toISOString();
  const outcome = await deliverWebhook(
    { url: target.url, secret: target.secret, body, id: deliveryId },
    { timeoutMs, policy },
  );
  const delivery = {
    webhookId: deliveryId,
    attempt: queued.attemptsStarted,
    at,
    ok: outcome.ok,
    statusCode: outcome.statusCode,
    error: outcome.ok ? null : outcome.error,
  };
  log.info(
    {
      ...subject,
      webhookId: deliveryId,
      attempt: delivery.attempt,
      statusCode: delivery.statusCode,
      error: delivery.error,
    },
    outcome.ok ? 'webhook delivered' : 'webhook delivery failed',
  );
  try {
    await owner.recordWebhookDelivery(id, delivery);
  } catch (error) {
    // A delivery that reached its receiver is done even if its record is lost: a retry would deliver it twice.
    if (!outcome.ok) throw error;
    log.warn({ err: error, ...subject, webhookId: deliveryId }, 'could not record a successful webhook delivery');
  }
  if (!outcome.ok) throw outcome.retry ? new Error(outcome.error) : new UnrecoverableError(outcome.error);
}
