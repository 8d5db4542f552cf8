/**
 * `npm run bench -- --predict-load`: single-image POST /jobs/:id/predict requests from 1, 16 and
 * 64 concurrent clients on loopback (keep-alive connections, each client sending its next request
 * as soon as its answer came), for LeNet-5/MNIST and AlexNet/CIFAR-10. The API is a process of
 * its own (ROLE=api), on the models another process trained first (small ones) and the same
 * Redis; meanwhile a prober asks GET /health every 20 ms, to see whether the API stays responsive.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { TrainerClient } from '../src/client/index.ts';
import type { Job } from '../src/contract/job.ts';
import { datasets } from '../src/datasets/index.ts';
import { startEmbeddedRedis } from '../src/store/embedded-redis.ts';
import { freePort } from '../test/support/ports.ts';
import { startServiceProcess, type ServiceProcess } from '../test/support/processes.ts';
import { trainedJob } from './predict.ts';
import { msSince, percentile } from './stats.ts';

export interface PredictLoadRequest {
  readonly backend: string;
  readonly cifarPath: string | undefined;
  readonly concurrencies: readonly number[];
  /** Seconds of load per model and concurrency. */
  readonly seconds: number;
}

export interface PredictLoadRow {
  readonly model: string;
  readonly clients: number;
  readonly requests: number;
  readonly predictionsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly healthP99Ms: number;
  readonly errors: number;
}

/** Sends one request on `agent`; resolves with its status once the whole answer is read. */
function send(agent: Agent, url: string, method: string, body?: Buffer, type?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      { method, agent, headers: body ? { 'content-type': type ?? '', 'content-length': body.byteLength } : {} },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function startApi(
  shared: Record<string, string>,
  environment: Record<string, string>,
): Promise<{ api: ServiceProcess; client: TrainerClient }> {
  const port = await freePort();
  const api = startServiceProcess({ ...shared, ...environment, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  const client = new TrainerClient(url);
  for (;;) {
    if (
      await client.health().then(
        (health) => health.status === 'ok',
        () => false,
      )
    )
      return { api, client };
    if (api.child.exitCode !== null) throw new Error(`the service exited: ${JSON.stringify(api.logs.slice(-3))}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** `clients` loops of single-image requests for `seconds`, and the /health prober beside them. */
async function load(
  url: string,
  job: string,
  images: readonly Buffer[],
  type: string,
  clients: number,
  seconds: number,
): Promise<Omit<PredictLoadRow, 'model'>> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const probeAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  const health: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  const loops = Array.from({ length: clients }, async (_, client) => {
    for (let i = client; performance.now() < end; i += clients) {
      const sent = performance.now();
      const status = await send(agent, `${url}/jobs/${job}/predict`, 'POST', images[i % images.length], type);
      if (status === 200) latencies.push(msSince(sent));
      else errors++;
    }
  });
  const probe = (async () => {
    while (performance.now() < end) {
      const sent = performance.now();
      await send(probeAgent, `${url}/health`, 'GET');
      health.push(msSince(sent));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  await Promise.all([...loops, probe]);
  const elapsed = msSince(start) / 1000;
  agent.destroy();
  probeAgent.destroy();
  return {
    clients,
    requests: latencies.length,
    predictionsPerSecond: latencies.length / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    healthP99Ms: percentile(health, 0.99),
    errors,
  };
}

export async function runPredictLoad(
  request: PredictLoadRequest,
  onProgress: (line: string) => void,
): Promise<PredictLoadRow[]> {
  const folder = await mkdtemp(path.join(tmpdir(), 'trainer-predict-load-'));
  const shared: Record<string, string> = {
    DATA_DIR: path.join(folder, 'data'),
    ARTIFACTS_DIR: path.join(folder, 'artifacts'),
    CHECKPOINTS_DIR: path.join(folder, 'checkpoints'),
    KEY_PREFIX: 'predict-load',
    TRAINER_BACKEND: request.backend,
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    ...(request.cifarPath ? { CIFAR10_PATH: request.cifarPath } : {}),
  };
  // The bench's own, so that it outlives each API process.
  const redis = await startEmbeddedRedis(shared.DATA_DIR as string, pino({ level: 'silent' }));
  try {
    const trainer = await startApi(shared, { ROLE: 'all' });
    let lenet: Job;
    let alexnet: Job;
    try {
      lenet = await trainedJob(trainer.client, {
        model: 'lenet5',
        dataset: 'mnist',
        epochs: 1,
        trainLimit: 2000,
        testLimit: 200,
        seed: 0,
      });
      alexnet = await trainedJob(trainer.client, {
        model: 'alexnet',
        dataset: 'cifar10',
        epochs: 1,
        trainLimit: 64,
        testLimit: 64,
        seed: 0,
      });
    } finally {
      await trainer.api.stop();
    }
    onProgress('trained LeNet-5 on MNIST and AlexNet on CIFAR-10');
    const mnist = await datasets.mnist.load({ dataDir: shared.DATA_DIR as string });
    const cifar = await datasets.cifar10.load({
      dataDir: shared.DATA_DIR as string,
      ...(request.cifarPath ? { userPath: request.cifarPath } : {}),
    });
    const raw = (images: Uint8Array, index: number, side: number, channels: 1 | 3) =>
      sharp(images.subarray(index * side * side * channels, (index + 1) * side * side * channels), {
        raw: { width: side, height: side, channels },
      });
    const indices = Array.from({ length: 64 }, (_, i) => i);
    const cases = [
      {
        model: 'lenet5 / mnist',
        job: lenet.id,
        type: 'image/png',
        images: await Promise.all(indices.map((i) => raw(mnist.test.images, i, 28, 1).png().toBuffer())),
      },
      {
        model: 'alexnet / cifar10',
        job: alexnet.id,
        type: 'image/jpeg',
        images: await Promise.all(
          indices.map((i) => raw(cifar.test.images, i, 32, 3).jpeg({ quality: 90 }).toBuffer()),
        ),
      },
    ];
    const rows: PredictLoadRow[] = [];
    const { api, client } = await startApi(shared, { ROLE: 'api' });
    const url = client.baseUrl;
    try {
      for (const { model, job, type, images } of cases) {
        // The model loaded and the JIT warm before anything is timed.
        await load(url, job, images, type, 4, 1);
        for (const clients of request.concurrencies) {
          rows.push({ model, ...(await load(url, job, images, type, clients, request.seconds)) });
          const row = rows.at(-1);
          onProgress(
            `${model}, ${clients} client(s): ${row?.predictionsPerSecond.toFixed(0)} predictions/s, p99 ${row?.p99Ms.toFixed(0)} ms`,
          );
        }
      }
    } finally {
      await api.stop();
    }
    return rows;
  } finally {
    await redis.stop();
    await rm(folder, { recursive: true, force: true });
  }
}

export function formatPredictLoad(rows: readonly PredictLoadRow[]): string {
  return [
    '| model | clients | requests | predictions/s | p50 | p99 | /health p99 | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.model} | ${row.clients} | ${row.requests} | ${row.predictionsPerSecond.toFixed(1)} | ${row.p50Ms.toFixed(1)} ms | ${row.p99Ms.toFixed(1)} ms | ${row.healthP99Ms.toFixed(1)} ms | ${row.errors} |`,
    ),
  ].join('\n');
}
