/**
 * Jobs as the integration tests use them: submitted, waited for and followed through the one HTTP
 * client (src/client), so that each test says what it checks rather than how to poll. Tests whose
 * point is the raw HTTP exchange (status codes, headers, malformed bodies) send their own requests.
 */
import { hasEnded, TrainerClient, type JobCondition } from '../../src/client/index.ts';
import type { JobEvent } from '../../src/contract/events.ts';
import type { UploadedDataset } from '../../src/contract/datasets.ts';
import type { Experiment } from '../../src/contract/experiment.ts';
import type { Job } from '../../src/contract/job.ts';
import type { JobRequestInput } from '../../src/contract/job-request.ts';
import { waitFor } from './service.ts';

/** A test service, or the URL of one (an API in another process). */
export type Target = { readonly url: string } | string;

export interface JobOptions {
  /** For a service with API keys switched on. */
  readonly apiKey?: string;
}

export interface WaitOptions extends JobOptions {
  /** Default 60 s. */
  readonly timeoutMs?: number;
  /** Default 100 ms. */
  readonly intervalMs?: number;
}

export function clientOf(target: Target, { apiKey }: JobOptions = {}): TrainerClient {
  return new TrainerClient(typeof target === 'string' ? target : target.url, apiKey);
}

/** POST /jobs: the job as created; a refusal fails the test with the server's reason. */
export function submitJob(target: Target, request: JobRequestInput, options: JobOptions = {}): Promise<Job> {
  return clientOf(target, options).submit(request);
}

/**
 * Polls the job until it is in the state, or its record passes the check (which may assert, to
 * fail early). Waiting for a state it can no longer reach fails at once.
 */
export function waitForJob(
  target: Target,
  id: string,
  until: JobCondition,
  { timeoutMs = 60_000, intervalMs = 100, ...options }: WaitOptions = {},
): Promise<Job> {
  return clientOf(target, options).waitForJob(id, until, { timeoutMs, intervalMs });
}

/** Waits for the job to end: completed, failed or cancelled. */
export function waitForEnd(target: Target, id: string, options: WaitOptions = {}): Promise<Job> {
  return waitForJob(target, id, hasEnded, options);
}

/** Submits the job and waits for it to end. */
export async function runJob(target: Target, request: JobRequestInput, options: WaitOptions = {}): Promise<Job> {
  return waitForEnd(target, (await submitJob(target, request, options)).id, options);
}

/** The job's events, replayed from the start and followed live, until its end. */
export async function followJob(target: Target, id: string, options: JobOptions = {}): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of clientOf(target, options).events(id)) events.push(event);
  return events;
}

/** Polls an uploaded data set until its processing ended: ready, or failed. */
export function processedDataset(target: Target, id: string, options: WaitOptions = {}): Promise<UploadedDataset> {
  const client = clientOf(target, options);
  return waitFor(
    `data set ${id} to be processed`,
    async () => {
      const dataset = await client.dataset(id);
      return dataset.state === 'processing' ? null : dataset;
    },
    options.timeoutMs,
    options.intervalMs,
  );
}

/** Polls an experiment until every run of it ended. */
export function endedExperiment(target: Target, id: string, options: WaitOptions = {}): Promise<Experiment> {
  const client = clientOf(target, options);
  return waitFor(
    `experiment ${id} to end`,
    async () => {
      const experiment = await client.experiment(id);
      return experiment.ended ? experiment : null;
    },
    options.timeoutMs,
    options.intervalMs,
  );
}
