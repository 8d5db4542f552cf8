import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.ts';
import { loadApiKeys } from './api/auth.ts';
import { EventFanout } from './api/event-fanout.ts';
import { JobRemoval } from './api/job-removal.ts';
import { Predictor } from './api/predictor.ts';
import { RetentionSweep } from './api/retention.ts';
import type { Config } from './config.ts';
import { noTestHooks, type TestHooks } from './test-hooks.ts';
import { connectRedis, describeTarget, waitUntilReachable, type RedisTarget } from './store/connection.ts';
import { startEmbeddedRedis } from './store/embedded-redis.ts';
import { BaseStore } from './store/base-store.ts';
import { DatasetStore } from './store/dataset-store.ts';
import { ExperimentStore } from './store/experiment-store.ts';
import { JobStore } from './store/job-store.ts';
import { createDatasetQueue, requeueDatasetOrphans } from './queue/dataset-queue.ts';
import { createTrainingQueue, requeueOrphans } from './queue/training-queue.ts';
import { backendDevice } from './backends/device.ts';
import { startBackend, stopBackend } from './backends/select.ts';
import { datasetOptions } from './datasets/load-options.ts';
import { CheckpointStore } from './training/checkpoint.ts';
import { DatasetCache } from './worker/dataset-cache.ts';
import { startWorkerPool } from './worker/pool.ts';
import { startDatasetWorker } from './worker/dataset-worker.ts';
import { startTrainingWorker } from './worker/worker.ts';
import { startWebhooks } from './webhooks/call-webhooks.ts';
import { removeOrphanBaseFiles } from './bases/orphan-folders.ts';

/** How often each API process tries to sweep jobs past JOB_RETENTION_DAYS (one of them does, per interval). */
const retentionSweepMs = 3600_000;

/** How old what an upload of a base left in BASES_DIR must be before start-up removes it: no upload is still being checked then. */
const orphanBaseGraceMs = 3600_000;

/** How long an event stream may stay silent before a heartbeat comment keeps proxies from closing it. */
const eventHeartbeatMs = 15_000;

export interface RunningService {
  /** The API's base URL, when this process serves it. */
  readonly url: string | null;
  /** The TensorFlow.js backend this process runs models on; null in a worker pool's parent, which runs none. */
  readonly backend: string | null;
  close(): Promise<void>;
}

/** Starts what `config.ROLE` asks for: the API, a worker, or both in one process; `hooks` only from the tests. */
export async function startService(
  config: Config,
  logger: Logger,
  hooks: TestHooks = noTestHooks,
): Promise<RunningService> {
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const closeOne of closers.reverse())
      await closeOne().catch((error: unknown) => logger.warn({ err: error }, 'error while closing'));
  };
  try {
    // Read first: a missing key file stops the service before anything starts.
    const apiKeys = config.ROLE === 'worker' ? [] : loadApiKeys(config);
    let target: RedisTarget;
    if (config.REDIS_URL) {
      target = { url: config.REDIS_URL };
    } else {
      const embedded = await startEmbeddedRedis(config.DATA_DIR, logger);
      closers.push(embedded.stop);
      target = { socketPath: embedded.socketPath };
    }
    const redis = connectRedis(target, 'request');
    redis.on('error', (error) => logger.debug({ err: error }, 'Redis connection error'));
    closers.push(async () => redis.disconnect());
    await waitUntilReachable(redis, target);
    logger.info({ redis: describeTarget(target) }, 'Redis reachable');

    const pool = config.ROLE !== 'api' && config.WORKER_CONCURRENCY > 1;
    if (pool) {
      const children = startWorkerPool(config, config.WORKER_CONCURRENCY, logger);
      closers.push(() => children.close());
      // The pool's parent trains nothing (each child has a backend of its own) and, as a worker,
      // predicts nothing: a backend here would only hold memory, and on webgpu a GPU device.
      if (config.ROLE === 'worker') return { url: null, backend: null, close };
    }
    const backend = await startBackend(config.TRAINER_BACKEND, logger, {
      webgpuAdapter: config.WEBGPU_ADAPTER,
      webgpuMaxBufferBytes:
        config.WEBGPU_MAX_BUFFER_MIB === undefined ? undefined : config.WEBGPU_MAX_BUFFER_MIB * 2 ** 20,
    });
    closers.push(stopBackend);
    let app: FastifyInstance | null = null;

    if (config.ROLE !== 'api' && !pool) {
      // The worker's writes wait for Redis instead of failing like a request's: a job must not end
      // failed, or stop, because Redis restarted under it; training just pauses at its next write.
      const workerRedis = connectRedis(target, 'blocking');
      workerRedis.on('error', (error) => logger.debug({ err: error }, 'worker job store Redis connection error'));
      closers.push(async () => workerRedis.disconnect());
      const worker = startTrainingWorker({
        store: new JobStore(workerRedis, config.KEY_PREFIX),
        experiments: new ExperimentStore(workerRedis, config.KEY_PREFIX),
        datasets: new DatasetCache(
          datasetOptions(config, (line) => logger.info(line)),
          config.DATASETS_DIR,
        ),
        artifactsDir: config.ARTIFACTS_DIR,
        basesDir: config.BASES_DIR,
        checkpoints: new CheckpointStore(config.CHECKPOINTS_DIR),
        checkpointSeconds: config.CHECKPOINT_INTERVAL_SECONDS,
        backend,
        trainThreads: config.TRAIN_THREADS,
        replicaFault: hooks.replicaFault,
        logger,
        redisTarget: target,
        prefix: config.KEY_PREFIX,
        concurrency: config.WORKER_CONCURRENCY,
        lockSeconds: config.JOB_LOCK_SECONDS,
        maxTakeovers: config.JOB_MAX_TAKEOVERS,
      });
      closers.push(() => worker.close());
      const datasetWorker = startDatasetWorker({
        store: new DatasetStore(workerRedis, config.KEY_PREFIX),
        root: config.DATASETS_DIR,
        limits: {
          maxEntries: config.MAX_DATASET_FILES,
          maxUnpackedBytes: config.MAX_DATASET_UNPACKED_BYTES,
          maxFileBytes: config.MAX_UPLOAD_BYTES,
          maxImagePixels: config.MAX_IMAGE_PIXELS,
        },
        storage: { perOwnerBytes: config.MAX_DATASET_BYTES_PER_CLIENT, totalBytes: config.MAX_DATASET_BYTES },
        logger,
        redisTarget: target,
        prefix: config.KEY_PREFIX,
        lockSeconds: config.JOB_LOCK_SECONDS,
      });
      closers.push(() => datasetWorker.close());
      logger.info(
        { concurrency: config.WORKER_CONCURRENCY, trainThreads: config.TRAIN_THREADS, backend },
        'worker waiting for training jobs',
      );
    }
    if (config.ROLE !== 'worker') {
      // The API's store shares the request connection: while Redis is away its requests fail at once, with 503.
      const store = new JobStore(redis, config.KEY_PREFIX);
      const datasetStore = new DatasetStore(redis, config.KEY_PREFIX);
      const baseStore = new BaseStore(redis, config.KEY_PREFIX);
      const orphanBaseFiles = await removeOrphanBaseFiles(
        config.BASES_DIR,
        (id) => baseStore.exists(id),
        orphanBaseGraceMs,
      );
      if (orphanBaseFiles.length > 0)
        logger.warn({ files: orphanBaseFiles }, 'removed what uploads of bases cut short left in BASES_DIR');
      const queue = createTrainingQueue(redis, config.KEY_PREFIX);
      const datasetQueue = createDatasetQueue(redis, config.KEY_PREFIX);
      for (const each of [queue, datasetQueue]) {
        // BullMQ passes on the connection's errors; unheard, it prints each one raw on stderr while Redis is away.
        each.on('error', (error) => logger.debug({ err: error }, 'queue Redis connection error'));
        closers.push(() => each.close());
      }
      // A job is recorded, then queued: an API process that died in between, or a request that lost
      // Redis in between (answered 503), leaves a job no worker sees. Queued at start-up, and each
      // time the connection is back after Redis was away.
      const requeue = async () => {
        const orphans = await requeueOrphans(queue, store);
        if (orphans.length > 0) logger.warn({ jobIds: orphans }, 'queued jobs that were recorded but never queued');
        const datasetOrphans = await requeueDatasetOrphans(datasetQueue, datasetStore);
        if (datasetOrphans.length > 0)
          logger.warn({ datasetIds: datasetOrphans }, 'queued data sets that were recorded but never queued');
      };
      await requeue();
      redis.on(
        'ready',
        () =>
          void requeue().catch((error: unknown) =>
            logger.warn({ err: error }, 'could not queue the jobs recorded but never queued'),
          ),
      );
      // Webhooks are delivered from the API processes, not from the workers: see
      // docs/guides/webhooks.md#how-it-works-and-why-there.
      const webhooks = startWebhooks({ config, redisTarget: target, logger });
      closers.push(() => webhooks.close());
      const predictor = new Predictor(config.ARTIFACTS_DIR, config.MODEL_CACHE_SIZE, config.MAX_IMAGE_PIXELS);
      closers.push(async () => predictor.dispose());
      const removal = new JobRemoval(store, queue, predictor, config.ARTIFACTS_DIR, config.CHECKPOINTS_DIR);
      const experimentStore = new ExperimentStore(redis, config.KEY_PREFIX);
      if (config.JOB_RETENTION_DAYS > 0) {
        const sweep = new RetentionSweep({
          redis,
          store,
          experiments: experimentStore,
          removal,
          retentionDays: config.JOB_RETENTION_DAYS,
          intervalMs: retentionSweepMs,
          log: logger,
        });
        const stop = sweep.start();
        closers.push(async () => stop());
      }
      const eventFanout = new EventFanout({
        store,
        redis,
        connectionName: `${config.KEY_PREFIX}:events`,
        heartbeatMs: eventHeartbeatMs,
        log: logger,
      });
      closers.push(() => eventFanout.close());
      app = await buildApp(
        {
          config,
          redis,
          store,
          datasetStore,
          baseStore,
          experimentStore,
          queue,
          datasetQueue,
          predictor,
          removal,
          eventFanout,
          backend,
          device: backendDevice(),
          apiKeys,
        },
        logger,
      );
      const started = app;
      closers.push(() => started.close());
      await app.listen({ host: config.HOST, port: config.PORT });
    }
    const address = app?.server.address();
    const url = address && typeof address === 'object' ? `http://${hostForUrl(address.address)}:${address.port}` : null;
    return { url, backend, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function hostForUrl(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}
