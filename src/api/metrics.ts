import fastifyPlugin from 'fastify-plugin';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { errorBody } from '../contract/errors.ts';
import { jobStates } from '../contract/job.ts';
import { isBuiltInDataset } from '../contract/names.ts';
import type { JobStore } from '../store/job-store.ts';
import type { ApiDependencies } from './dependencies.ts';

/** Ended jobs read from Redis per round at a scrape. */
const endedPage = 500;

const predictRoute = '/jobs/:id/predict';

/**
 * Prometheus metrics in a registry of this app's own (not prom-client's global one, so two apps in
 * one process don't share or clash).
 *
 * Everything about jobs comes from Redis, since the process that serves /metrics (an API) is in
 * general not the one that trains (a worker):
 * - jobs by state and queue depth are read at scrape time;
 * - job durations and training speeds are observed at scrape time for the jobs that ended since
 *   the last scrape: the job store appends each job's id to a stream of ended jobs in the same
 *   script that ends it, and each API process reads that stream on from where it last was (from
 *   where it was when it started, so its histograms count what ended while it ran, like any
 *   counter of a process). Every API process thus counts every ended job once: with several API
 *   replicas, aggregate these histograms with max, not sum.
 * HTTP requests and prediction latency are this process's own, measured as it answers them.
 */
function createMetrics(store: JobStore, queue: ApiDependencies['queue']) {
  const registry = new Registry();

  new Gauge({
    name: 'trainer_jobs',
    help: 'Jobs in each state, from the job store',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await store.countByState();
      for (const state of jobStates) this.set({ state }, counts[state]);
    },
  });

  new Gauge({
    name: 'trainer_queue_jobs',
    help: 'Training queue depth: jobs waiting for a worker, being trained, or delayed (BullMQ counts)',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed');
      for (const state of ['waiting', 'active', 'delayed'] as const) this.set({ state }, counts[state] ?? 0);
    },
  });

  const ended = endedJobObserver(store);
  const jobDuration = new Histogram({
    name: 'trainer_job_duration_seconds',
    help: 'From the start of training to the end of the job (jobs that ended since this process started; cancelled before starting: not counted)',
    labelNames: ['state', 'model', 'dataset'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 28_800],
    registers: [registry],
    collect: () => ended.catchUp(),
  });
  const imagesPerSecond = new Histogram({
    name: 'trainer_training_images_per_second',
    help: 'Training speed of each ended job over the epochs it finished: training images / seconds spent training them',
    labelNames: ['model', 'dataset'],
    buckets: [25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000],
    registers: [registry],
    collect: () => ended.catchUp(),
  });
  ended.observeInto(jobDuration, imagesPerSecond);

  const predictionDuration = new Histogram({
    name: 'trainer_prediction_duration_seconds',
    help: 'Successful POST /jobs/:id/predict requests, upload to answer',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'trainer_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'trainer_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status (an event stream: its whole life)',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  return {
    registry,
    /** Records one answered request; `route` is the pattern, so ids don't each make a series. */
    recordRequest(method: string, route: string, status: number, seconds: number): void {
      const labels = { method, route, status: String(status) };
      requests.inc(labels);
      requestDuration.observe(labels, seconds);
      if (method === 'POST' && route === predictRoute && status === 200) predictionDuration.observe(seconds);
    },
    /** Starts counting ended jobs from now. */
    start: () => ended.start(),
  };
}

/** Reads the stream of ended jobs on from its last position and observes each job once. */
function endedJobObserver(store: JobStore) {
  let position: string | null = null;
  let catching: Promise<void> | null = null;
  let duration: Histogram<'state' | 'model' | 'dataset'> | null = null;
  let speed: Histogram<'model' | 'dataset'> | null = null;

  const observe = async (id: string): Promise<void> => {
    const found = await store.summaryWithEpochs(id);
    if (!found) return;
    const { job, epochs } = found;
    // Every upload would be a label value of its own, without bound: they are counted together.
    const labels = {
      model: job.request.model,
      dataset: isBuiltInDataset(job.request.dataset) ? job.request.dataset : 'uploaded',
    };
    if (job.startedAt && job.finishedAt) {
      const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
      if (Number.isFinite(seconds) && seconds >= 0) duration?.observe({ ...labels, state: job.state }, seconds);
    }
    const trainingSeconds = epochs.reduce((total, epoch) => total + epoch.seconds, 0);
    if (epochs.length > 0 && trainingSeconds > 0)
      speed?.observe(labels, (epochs.length * job.request.trainLimit) / trainingSeconds);
  };

  const run = async (): Promise<void> => {
    if (position === null) {
      position = await store.events.lastEndedPosition();
      return;
    }
    for (;;) {
      const page = await store.events.endedSince(position, endedPage);
      for (const entry of page) {
        await observe(entry.id);
        position = entry.position;
      }
      if (page.length < endedPage) return;
    }
  };

  return {
    observeInto(jobDuration: typeof duration, imagesPerSecond: typeof speed) {
      duration = jobDuration;
      speed = imagesPerSecond;
    },
    /** Both histograms ask at every scrape; one reading serves them both. */
    catchUp(): Promise<void> {
      catching ??= run().finally(() => {
        catching = null;
      });
      return catching;
    },
    async start(): Promise<void> {
      position = await store.events.lastEndedPosition();
    },
  };
}

/**
 * GET /metrics, and the hook that counts every request of the whole app (a plugin without its
 * own scope: registered first, its hook sees every route registered after it).
 */
const metrics: FastifyPluginAsyncZod<ApiDependencies> = async (app, { store, queue }) => {
  const collected = createMetrics(store, queue);
  // Jobs that end from now on are observed; when Redis isn't there yet, from the first scrape on.
  await collected
    .start()
    .catch((error: unknown) => app.log.warn({ err: error }, 'metrics: could not read the ended jobs yet'));

  app.addHook('onResponse', async (request, reply) => {
    // Unknown paths share one series, so probing clients can't make one per path.
    const route = request.is404 ? 'unmatched' : (request.routeOptions.url ?? 'unmatched');
    collected.recordRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get(
    '/metrics',
    {
      schema: {
        summary:
          'Prometheus metrics: jobs by state, queue depth, job durations, training speed, prediction latency, HTTP requests',
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4',
            content: { 'text/plain': { schema: z.string() } },
          },
          401: errorBody,
          429: errorBody,
          503: errorBody,
        },
      },
    },
    async (_request, reply) => {
      const text = await collected.registry.metrics();
      return reply.type(collected.registry.contentType).send(text);
    },
  );
};

export const metricsPlugin = fastifyPlugin(metrics, { name: 'trainer-metrics' });
