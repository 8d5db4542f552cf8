import { z } from 'zod';
import { datasetCatalog, type DatasetCatalog } from '../contract/catalog.ts';
import { uploadedDataset, type UploadedDataset } from '../contract/datasets.ts';
import { errorBody } from '../contract/errors.ts';
import { experiment, type Experiment, type ExperimentRequestInput } from '../contract/experiment.ts';
import { isJobEventType, parseJobEvent, type JobEvent } from '../contract/events.ts';
import { job, jobList, type Job, type JobList, type JobState } from '../contract/job.ts';
import type { JobRequestInput } from '../contract/job-request.ts';
import { predictResponse, type PredictResponse } from '../contract/predict.ts';
import { ApiError, UnreachableError } from './errors.ts';
import { parseSse } from '../client/sse.ts';

export interface UploadFile {
  readonly name: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly type: string;
}

export interface FollowOptions {
  /** Resume after this event id. */
  readonly lastEventId?: string;
  /** Reconnections in a row that may fail before giving up (a dropped stream resumes where it was). */
  readonly retries?: number;
  readonly retryDelayMs?: number;
}

const requestTimeoutMs = 30_000;
/** Uploads of many images and model downloads of hundreds of MB (AlexNet) take longer. */
const uploadTimeoutMs = 300_000;

/** The service's public HTTP API, answers checked against the contract's schemas. */
export class TrainerClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly apiKey?: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  submit(request: JobRequestInput): Promise<Job> {
    return this.call(
      '/jobs',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) },
      job,
    );
  }

  job(id: string): Promise<Job> {
    return this.call(`/jobs/${encodeURIComponent(id)}`, {}, job);
  }

  list(query: { state?: JobState; limit?: number; cursor?: string }): Promise<JobList> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined) search.set(name, String(value));
    const suffix = search.size > 0 ? `?${search}` : '';
    return this.call(`/jobs${suffix}`, {}, jobList);
  }

  cancel(id: string): Promise<Job> {
    return this.call(`/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' }, job);
  }

  async deleteJob(id: string): Promise<void> {
    await this.call(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }, z.null());
  }

  submitExperiment(request: ExperimentRequestInput): Promise<Experiment> {
    return this.call(
      '/experiments',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) },
      experiment,
    );
  }

  experiment(id: string): Promise<Experiment> {
    return this.call(`/experiments/${encodeURIComponent(id)}`, {}, experiment);
  }

  cancelExperiment(id: string): Promise<Experiment> {
    return this.call(`/experiments/${encodeURIComponent(id)}/cancel`, { method: 'POST' }, experiment);
  }

  async deleteExperiment(id: string): Promise<void> {
    await this.call(`/experiments/${encodeURIComponent(id)}`, { method: 'DELETE' }, z.null());
  }

  predict(id: string, files: readonly UploadFile[]): Promise<PredictResponse> {
    const form = new FormData();
    for (const file of files) form.append('file', new Blob([file.bytes], { type: file.type }), file.name);
    return this.call(
      `/jobs/${encodeURIComponent(id)}/predict`,
      { method: 'POST', body: form },
      predictResponse,
      uploadTimeoutMs,
    );
  }

  /** POST /datasets with the archive as the raw body and the options as query parameters. */
  uploadDataset(archive: UploadFile, options: Readonly<Record<string, string>>): Promise<UploadedDataset> {
    const suffix = Object.keys(options).length > 0 ? `?${new URLSearchParams(options)}` : '';
    return this.call(
      `/datasets${suffix}`,
      { method: 'POST', headers: { 'content-type': archive.type }, body: archive.bytes },
      uploadedDataset,
      uploadTimeoutMs,
    );
  }

  datasets(): Promise<DatasetCatalog> {
    return this.call('/datasets', {}, datasetCatalog);
  }

  dataset(id: string): Promise<UploadedDataset> {
    return this.call(`/datasets/${encodeURIComponent(id)}`, {}, uploadedDataset);
  }

  async deleteDataset(id: string): Promise<void> {
    await this.call(`/datasets/${encodeURIComponent(id)}`, { method: 'DELETE' }, z.null());
  }

  /** The trained model's zip (GET /jobs/:id/model) and the file name the server suggests for it. */
  async model(id: string): Promise<{ bytes: Buffer; fileName: string }> {
    const path = `/jobs/${encodeURIComponent(id)}/model`;
    const response = await this.fetch(path, { signal: AbortSignal.timeout(uploadTimeoutMs) });
    if (!response.ok) throw await errorFrom(response);
    if (response.headers.get('content-type') !== 'application/zip')
      throw new ApiError(response.status, `the server's answer to GET ${path} is not a zip`);
    const fileName =
      /filename="([^"/\\]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? `${id}.zip`;
    return { bytes: Buffer.from(await response.arrayBuffer()), fileName };
  }

  /**
   * The job's events from the start (or after `lastEventId`) until its `end` event. A stream that
   * breaks off is resumed after the last event received, so none is missed or repeated.
   */
  async *events(id: string, options: FollowOptions = {}): AsyncGenerator<JobEvent> {
    let lastEventId = options.lastEventId;
    let retryDelayMs = options.retryDelayMs ?? 1000;
    let failures = 0;
    for (;;) {
      let response: Response;
      try {
        response = await this.fetch(`/jobs/${encodeURIComponent(id)}/events`, {
          headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
        });
      } catch (error) {
        if (!(error instanceof UnreachableError) || lastEventId === undefined || ++failures > (options.retries ?? 5))
          throw error;
        await delay(retryDelayMs);
        continue;
      }
      if (response.status === 204) return;
      if (!response.ok || !response.body) throw await errorFrom(response);
      try {
        for await (const message of parseSse(response.body, { onRetry: (ms) => (retryDelayMs = ms) })) {
          if (!isJobEventType(message.event)) continue;
          const event = parseJobEvent(message.id ?? '', message.event, JSON.parse(message.data));
          failures = 0;
          if (message.id) lastEventId = message.id;
          yield event;
          if (event.type === 'end') return;
        }
      } catch (error) {
        if (error instanceof SyntaxError || (error as Error).name === 'ZodError') throw error;
        // The connection broke mid-stream: resume below.
      }
      if (++failures > (options.retries ?? 5))
        throw new UnreachableError(`the event stream of job ${id} broke off and could not be resumed`);
      await delay(retryDelayMs);
    }
  }

  private async call<T>(
    path: string,
    init: RequestInit,
    schema: z.ZodType<T>,
    timeoutMs = requestTimeoutMs,
  ): Promise<T> {
    const response = await this.fetch(path, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw await errorFrom(response);
    const text = await response.text();
    const parsed = schema.safeParse(text ? JSON.parse(text) : null);
    if (!parsed.success)
      throw new ApiError(
        response.status,
        `the server's answer to ${init.method ?? 'GET'} ${path} is not what the API describes`,
      );
    return parsed.data;
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      const headers = new Headers(init.headers);
      if (this.apiKey) headers.set('authorization', `Bearer ${this.apiKey}`);
      return await fetch(`${this.baseUrl}${path}`, { ...init, headers });
    } catch (error) {
      throw new UnreachableError(`cannot reach the server at ${this.baseUrl} (${reason(error)})`);
    }
  }
}

async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  let message = `HTTP ${response.status} ${response.statusText}`.trim();
  try {
    const body = errorBody.safeParse(JSON.parse(text));
    if (body.success) message = body.data.error;
  } catch {
    // Not the contract's error body (a proxy's page, say): the status line says what there is to say.
  }
  return new ApiError(response.status, message);
}

/** Why fetch failed, in a few words: undici hides the system error in `cause`. */
function reason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'no answer in time';
  const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'unknown host',
    EAI_AGAIN: 'name lookup failed',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'connection timed out',
    EHOSTUNREACH: 'host unreachable',
  };
  if (cause?.code) return known[cause.code] ?? cause.code;
  return cause?.message ?? (error instanceof Error ? error.message : String(error));
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
