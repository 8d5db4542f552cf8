/**
 * `npm run bench -- --fanout`: thousands of clients following jobs' event streams through one API
 * process. The API is a process of its own (ROLE=api, as in production), on a private Redis;
 * this process plays the worker, writing each job's events through the job store as a worker
 * does, and the clients, each a plain HTTP connection on loopback. It measures whether every
 * client got every event once, in order, with the end; the Redis connections of the API process;
 * its memory per stream; and the delay from a log line's write to its arrival at each client.
 * A share of the clients leaves half way and comes back with Last-Event-ID. run.ts raises the
 * file limit for it (each client is a socket here and one in the API).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parseSse, TrainerClient } from '../src/client/index.ts';
import { startEmbeddedRedis } from '../src/store/embedded-redis.ts';
import { JobStore } from '../src/store/job-store.ts';
import { storedJobSettings } from '../test/support/job-settings.ts';
import { freePort } from '../test/support/ports.ts';
import { startServiceProcess } from '../test/support/processes.ts';
import { msSince, percentile } from './stats.ts';

export interface FanoutBenchRequest {
  readonly clients: number;
  /** The clients are spread evenly over this many jobs. */
  readonly jobs: number;
  /** Log lines each job writes, one every `intervalMs`. */
  readonly logLines: number;
  readonly intervalMs: number;
  /** Share of the clients that disconnect half way and resume with Last-Event-ID. */
  readonly resumingShare: number;
}

export interface FanoutReport extends FanoutBenchRequest {
  readonly connectSeconds: number;
  readonly eventsPerJob: number;
  /** Clients that got every event of their job once, in order, ending with `end`. */
  readonly complete: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly resumed: number;
  readonly redisConnections: { readonly idle: number; readonly streaming: number };
  readonly apiRssMiB: { readonly idle: number; readonly streaming: number };
  /** The API's CPU time from the first live event to the last client's end, per event delivered (replays of resumers included). */
  readonly apiCpuMicrosecondsPerDelivery: number;
  readonly delayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

/** Clients connecting at once: the API's listen backlog (511) with room to spare. */
const connectBatch = 200;

interface Client {
  readonly job: number;
  readonly ids: string[];
  ended: boolean;
  resumed: boolean;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

/** The CPU seconds a process has used (user and system), from /proc (clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Redis's connected clients less this process's own (`own`). */
async function otherConnections(redis: Redis, own: number): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(await redis.info('clients'))?.[1]) - own;
}

export async function runFanoutBench(
  request: FanoutBenchRequest,
  onProgress: (line: string) => void,
): Promise<FanoutReport> {
  const folder = await mkdtemp(path.join(tmpdir(), 'trainer-fanout-'));
  const dataDir = path.join(folder, 'data');
  const embedded = await startEmbeddedRedis(dataDir, pino({ level: 'silent' }));
  const redis = new Redis({ path: embedded.socketPath });
  const prefix = 'fanout';
  const store = new JobStore(redis, prefix);
  const port = await freePort();
  const api = startServiceProcess({
    ROLE: 'api',
    PORT: String(port),
    DATA_DIR: dataDir,
    KEY_PREFIX: prefix,
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    TRAINER_BACKEND: 'cpu',
  });
  const sockets = new Set<IncomingMessage>();
  try {
    const ids = Array.from({ length: request.jobs }, () => randomUUID());
    for (const id of ids) {
      await store.create(
        id,
        storedJobSettings,
        { epoch: 0, epochs: 1, batch: 0, batchesPerEpoch: request.logLines, fraction: 0 },
        new Date(),
      );
      await store.lifecycle.start(id, new Date());
    }
    const base = `http://127.0.0.1:${port}`;
    const client = new TrainerClient(base);
    for (let ready = false; !ready;) {
      ready = await client.health().then(
        (health) => health.status === 'ok',
        () => false,
      );
      if (!ready) await new Promise((resolve) => setTimeout(resolve, 200));
      if (api.child.exitCode !== null) throw new Error(`the API exited: ${JSON.stringify(api.logs.slice(-3))}`);
    }
    const pid = api.child.pid ?? 0;
    const idle = { redis: await otherConnections(redis, 1), rss: await rssMiB(pid) };

    /** Write times of each job's log lines (performance.now(); this process writes and reads, one clock), by loss value. */
    const written = new Map<number, number>();
    const delays: number[] = [];
    const clients: Client[] = Array.from({ length: request.clients }, (_, index) => ({
      job: index % request.jobs,
      ids: [],
      ended: false,
      resumed: false,
    }));
    const resumers = new Set(clients.filter((_, index) => index % Math.round(1 / request.resumingShare) === 0));

    /** Reads one connection's events into `client`; a resumer leaves after half the log lines. */
    const follow = (client: Client, lastEventId: string | null): Promise<void> =>
      new Promise((resolve, reject) => {
        const headers = lastEventId ? { 'last-event-id': lastEventId } : {};
        get(`${base}/jobs/${ids[client.job]}/events`, { agent: false, headers }, (response) => {
          sockets.add(response);
          void (async () => {
            let logs = 0;
            for await (const message of parseSse(response)) {
              client.ids.push(message.id ?? '');
              if (message.event === 'end') client.ended = true;
              if (message.event !== 'log') continue;
              const loss = (JSON.parse(message.data) as { line: { loss: number } }).line.loss;
              const at = written.get(loss);
              if (at !== undefined) delays.push(msSince(at));
              logs++;
              if (!client.resumed && resumers.has(client) && logs >= request.logLines / 2) break;
            }
            sockets.delete(response);
            response.destroy();
            if (!client.ended && !client.resumed) {
              client.resumed = true;
              await follow(client, client.ids.at(-1) ?? null);
            }
          })().then(resolve, reject);
        }).on('error', reject);
      });

    const connectStart = performance.now();
    const following: Promise<void>[] = [];
    for (let start = 0; start < clients.length; start += connectBatch) {
      const batch = clients.slice(start, start + connectBatch);
      following.push(...batch.map((client) => follow(client, null)));
      // Each one is in once it has its replay: the job's two state events.
      while (!batch.every((client) => client.ids.length >= 2)) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const connectSeconds = msSince(connectStart) / 1000;
    onProgress(`${clients.length} clients following ${request.jobs} job(s) after ${connectSeconds.toFixed(1)} s`);
    const streaming = { redis: await otherConnections(redis, 1), rss: await rssMiB(pid) };
    const cpuBefore = await cpuSeconds(pid);

    for (let line = 1; line <= request.logLines; line++) {
      const at = performance.now();
      written.set(line, at);
      const progress = {
        epoch: 1,
        epochs: 1,
        batch: line,
        batchesPerEpoch: request.logLines,
        fraction: line / request.logLines,
      };
      await Promise.all(ids.map((id) => store.appendLog(id, { epoch: 1, batch: line, loss: line }, progress)));
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, request.intervalMs - msSince(at))));
    }
    for (const id of ids) await store.lifecycle.cancel(id);
    await Promise.all(following);
    const apiCpuSeconds = (await cpuSeconds(pid)) - cpuBefore;

    const stored = await Promise.all(
      ids.map(async (id) => (await redis.xrange(store.keys.events(id), '-', '+')).map(([entry]) => entry)),
    );
    let complete = 0;
    let duplicates = 0;
    let missing = 0;
    for (const client of clients) {
      const expected = stored[client.job] ?? [];
      const unique = new Set(client.ids);
      duplicates += client.ids.length - unique.size;
      missing += expected.filter((id) => !unique.has(id)).length;
      if (
        client.ended &&
        client.ids.length === expected.length &&
        client.ids.every((id, index) => id === expected[index])
      )
        complete++;
    }
    return {
      ...request,
      connectSeconds,
      eventsPerJob: stored[0]?.length ?? 0,
      complete,
      duplicates,
      missing,
      resumed: clients.filter((client) => client.resumed).length,
      redisConnections: { idle: idle.redis, streaming: streaming.redis },
      apiCpuMicrosecondsPerDelivery:
        (apiCpuSeconds * 1e6) / clients.reduce((sum, client) => sum + client.ids.length, 0),
      apiRssMiB: { idle: idle.rss, streaming: streaming.rss },
      delayMs: { p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), max: percentile(delays, 1) },
    };
  } finally {
    for (const socket of sockets) socket.destroy();
    await api.stop();
    redis.disconnect();
    await embedded.stop();
    await rm(folder, { recursive: true, force: true });
  }
}

export function formatFanoutBench(report: FanoutReport): string {
  const perStreamKiB = ((report.apiRssMiB.streaming - report.apiRssMiB.idle) * 1024) / report.clients;
  return [
    `| clients | jobs | log line every | events per client | complete, once, in order | duplicates | missing | resumed with Last-Event-ID | Redis connections of the API, idle → streaming | API memory (RSS), idle → streaming | per stream | API CPU per event delivered | log write → client, p50 / p99 / max |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${report.clients} | ${report.jobs} | ${report.intervalMs} ms | ${report.eventsPerJob} | ${report.complete} | ${report.duplicates} | ${report.missing} | ${report.resumed} | ${report.redisConnections.idle} → ${report.redisConnections.streaming} | ${report.apiRssMiB.idle.toFixed(0)} → ${report.apiRssMiB.streaming.toFixed(0)} MiB | ${perStreamKiB.toFixed(1)} KiB | ${report.apiCpuMicrosecondsPerDelivery.toFixed(0)} µs | ${report.delayMs.p50.toFixed(1)} / ${report.delayMs.p99.toFixed(1)} / ${report.delayMs.max.toFixed(1)} ms |`,
    '',
    `${report.logLines} log lines a job, one every ${report.intervalMs} ms; all clients connected in ${report.connectSeconds.toFixed(1)} s (${connectBatch} at a time)`,
  ].join('\n');
}
