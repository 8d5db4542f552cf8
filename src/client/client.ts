import { z } from 'zod';
import { base, baseList, type Base, type BaseList } from '../contract/bases.ts';
import { datasetCatalog, health, type DatasetCatalog, type Health } from '../contract/catalog.ts';
import { uploadedDataset, type UploadedDataset } from '../contract/datasets.ts';
import type { JobEvent } from '../contract/events.ts';
import {
  experiment,
  experimentList,
  type Experiment,
  type ExperimentList,
  type ExperimentRequestInput,
} from '../contract/experiment.ts';
import { job, jobList, type Job, type JobList, type JobState } from '../contract/job.ts';
import type { JobRequestInput } from '../contract/job-request.ts';
import { predictResponse, type PredictResponse, type PreprocessRequest } from '../contract/predict.ts';
import { ApiError } from './errors.ts';
import { followEvents, type FollowOptions } from './events.ts';
import { errorFrom, Http, parseAnswer, uploadTimeoutMs } from './http.ts';
import { hasEnded, waitForJob, type JobCondition, type WaitOptions } from './wait.ts';

export interface UploadFile {
  readonly name: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly type: string;
}

interface PredictOptions {
  readonly preprocess?: PreprocessRequest;
  /** Each prediction also says what the model saw. */
  readonly explain?: boolean;
}

/** A type, not an interface: it is passed on as a record of query parameters. */
type PageQuery = {
  readonly limit?: number;
  readonly cursor?: string;
};

/**
 * The service's public HTTP API, one method a route, answers checked against the contract's
 * schemas. An error answer throws ApiError (its status and `{ error, details? }`); no answer at
 * all throws UnreachableError.
 */
export class TrainerClient {
  private readonly http: Http;

  constructor(baseUrl: string, apiKey?: string) {
    this.http = new Http(baseUrl, apiKey);
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  /** GET /health: the answer of a service whose Redis is down (503) too, with its status 'unavailable'. */
  async health(): Promise<Health> {
    const response = await this.http.fetch('/health');
    if (!response.ok && response.status !== 503) throw await errorFrom(response);
    return parseAnswer(response, health, 'GET /health');
  }

  submit(request: JobRequestInput): Promise<Job> {
    return this.http.json('/jobs', job, { method: 'POST', json: request });
  }

  job(id: string): Promise<Job> {
    return this.http.json(jobPath(id), job);
  }

  list(query: PageQuery & { readonly state?: JobState } = {}): Promise<JobList> {
    return this.http.json(`/jobs${searchOf(query)}`, jobList);
  }

  cancel(id: string): Promise<Job> {
    return this.http.json(`${jobPath(id)}/cancel`, job, { method: 'POST' });
  }

  async deleteJob(id: string): Promise<void> {
    await this.http.json(jobPath(id), z.null(), { method: 'DELETE' });
  }

  /** The job's events as they happen (see followEvents): replayed from the start, or after `lastEventId`. */
  events(id: string, options: FollowOptions = {}): AsyncGenerator<JobEvent> {
    return followEvents(this.http, id, options);
  }

  /** Polls the job until it is in the state, or meets the condition; by default until it ended. */
  waitForJob(id: string, until: JobCondition = hasEnded, options: WaitOptions = {}): Promise<Job> {
    return waitForJob(() => this.job(id), until, options);
  }

  /** POST /jobs/:id/predict: the images as a multipart form, in the order given. */
  predict(id: string, files: readonly UploadFile[], options: PredictOptions = {}): Promise<PredictResponse> {
    const form = new FormData();
    for (const file of files) form.append('file', new Blob([file.bytes], { type: file.type }), file.name);
    const query = searchOf({
      preprocess: options.preprocess,
      explain: options.explain === undefined ? undefined : String(options.explain),
    });
    return this.http.json(`${jobPath(id)}/predict${query}`, predictResponse, {
      method: 'POST',
      body: form,
      timeoutMs: uploadTimeoutMs,
    });
  }

  /** The trained model's zip (GET /jobs/:id/model) and the file name the server suggests for it. */
  async model(id: string): Promise<{ bytes: Buffer; fileName: string }> {
    const path = `${jobPath(id)}/model`;
    const response = await this.http.fetch(path, { signal: AbortSignal.timeout(uploadTimeoutMs) });
    if (!response.ok) throw await errorFrom(response);
    if (response.headers.get('content-type') !== 'application/zip')
      throw new ApiError(response.status, { error: `the server's answer to GET ${path} is not a zip` });
    const fileName =
      /filename="([^"/\\]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? `${id}.zip`;
    return { bytes: Buffer.from(await response.arrayBuffer()), fileName };
  }

  /** POST /datasets with the archive as the raw body and the options as query parameters. */
  uploadDataset(archive: UploadFile, options: Readonly<Record<string, string>> = {}): Promise<UploadedDataset> {
    return this.http.json(`/datasets${searchOf(options)}`, uploadedDataset, {
      method: 'POST',
      body: archive.bytes,
      contentType: archive.type,
      timeoutMs: uploadTimeoutMs,
    });
  }

  datasets(): Promise<DatasetCatalog> {
    return this.http.json('/datasets', datasetCatalog);
  }

  dataset(id: string): Promise<UploadedDataset> {
    return this.http.json(`/datasets/${encodeURIComponent(id)}`, uploadedDataset);
  }

  async deleteDataset(id: string): Promise<void> {
    await this.http.json(`/datasets/${encodeURIComponent(id)}`, z.null(), { method: 'DELETE' });
  }

  /** POST /bases with the zip as the raw body and its name as a query parameter: the server checks the model before it answers. */
  uploadBase(archive: UploadFile, options: { readonly name?: string } = {}): Promise<Base> {
    return this.http.json(`/bases${searchOf(options)}`, base, {
      method: 'POST',
      body: archive.bytes,
      contentType: archive.type,
      timeoutMs: uploadTimeoutMs,
    });
  }

  bases(): Promise<BaseList> {
    return this.http.json('/bases', baseList);
  }

  base(id: string): Promise<Base> {
    return this.http.json(basePath(id), base);
  }

  async deleteBase(id: string): Promise<void> {
    await this.http.json(basePath(id), z.null(), { method: 'DELETE' });
  }

  submitExperiment(request: ExperimentRequestInput): Promise<Experiment> {
    return this.http.json('/experiments', experiment, { method: 'POST', json: request });
  }

  experiments(query: PageQuery = {}): Promise<ExperimentList> {
    return this.http.json(`/experiments${searchOf(query)}`, experimentList);
  }

  experiment(id: string): Promise<Experiment> {
    return this.http.json(experimentPath(id), experiment);
  }

  cancelExperiment(id: string): Promise<Experiment> {
    return this.http.json(`${experimentPath(id)}/cancel`, experiment, { method: 'POST' });
  }

  async deleteExperiment(id: string): Promise<void> {
    await this.http.json(experimentPath(id), z.null(), { method: 'DELETE' });
  }
}

const jobPath = (id: string) => `/jobs/${encodeURIComponent(id)}`;
const experimentPath = (id: string) => `/experiments/${encodeURIComponent(id)}`;
const basePath = (id: string) => `/bases/${encodeURIComponent(id)}`;

/** `?name=value&…` of the given values, or '' when there are none. */
function searchOf(query: Readonly<Record<string, string | number | undefined>>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) search.set(name, String(value));
  return search.size > 0 ? `?${search}` : '';
}
