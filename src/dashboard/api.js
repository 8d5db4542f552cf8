// @ts-check
/**
 * The dashboard's client of the public HTTP API, one function per call, typed by the contract.
 * It sends the API key the user entered (kept for this browser tab only) and marks the key field
 * when the service refuses it.
 * @import { Base, BaseList } from '../contract/bases.ts'
 * @import { DatasetCatalog, Health, ModelCatalog } from '../contract/catalog.ts'
 * @import { UploadedDataset } from '../contract/datasets.ts'
 * @import { ErrorBody } from '../contract/errors.ts'
 * @import { Experiment, ExperimentList } from '../contract/experiment.ts'
 * @import { Job, JobList } from '../contract/job.ts'
 * @import { PredictResponse } from '../contract/predict.ts'
 * @import { FormRequest } from './job-request.js'
 */
import { $ } from './dom.js';

/**
 * An answer: the body the contract gives the call on success (2xx), else the error (a network
 * failure is status 0).
 * @template T
 * @typedef {{ ok: true, status: number, body: T } | { ok: false, status: number, body: ErrorBody }} Answer
 */

export const apiKey = () => sessionStorage.getItem('apiKey') ?? '';

/** @param {string} key */
export const setApiKey = (key) => sessionStorage.setItem('apiKey', key);

/** @returns {Record<string, string>} */
const authorization = () => (apiKey() ? { authorization: `Bearer ${apiKey()}` } : {});

/**
 * An error body from whatever a failed call answered.
 * @param {number} status
 * @param {unknown} body
 * @returns {ErrorBody}
 */
function errorOf(status, body) {
  const fields = typeof body === 'object' && body !== null ? /** @type {Partial<ErrorBody>} */ (body) : {};
  return { error: typeof fields.error === 'string' ? fields.error : `HTTP ${status}`, details: fields.details };
}

/**
 * @param {number} status
 * @param {string} text
 */
function answerOf(status, text) {
  /** @type {unknown} */
  let body;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text };
  }
  return status >= 200 && status < 300
    ? { ok: /** @type {const} */ (true), status, body }
    : { ok: /** @type {const} */ (false), status, body: errorOf(status, body) };
}

/**
 * fetch with the key, and the answer's JSON.
 * @template T  the body on success, as the contract says
 * @param {string} path
 * @param {RequestInit & { headers?: Record<string, string> }} [init]
 * @returns {Promise<Answer<T>>}
 */
async function call(path, init = {}) {
  try {
    const response = await fetch(path, { ...init, headers: { ...init.headers, ...authorization() } });
    if (response.status === 401) $('api-key').setAttribute('aria-invalid', 'true');
    else if (path !== '/health') $('api-key').removeAttribute('aria-invalid');
    return /** @type {Answer<T>} */ (answerOf(response.status, await response.text()));
  } catch (error) {
    return { ok: false, status: 0, body: { error: `the service is unreachable (${errorMessage(error)})` } };
  }
}

/** @param {unknown} error */
const errorMessage = (error) => (error instanceof Error ? error.message : String(error));

/**
 * @param {string} body  JSON
 * @returns {RequestInit & { headers: Record<string, string> }}
 */
const postJson = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body });

const jobPath = (/** @type {string} */ id) => `/jobs/${encodeURIComponent(id)}`;
const datasetPath = (/** @type {string} */ id) => `/datasets/${encodeURIComponent(id)}`;
const experimentPath = (/** @type {string} */ id) => `/experiments/${encodeURIComponent(id)}`;

/** @returns {Promise<Answer<Health>>} */
export const health = () => call('/health');
/** @returns {Promise<Answer<ModelCatalog>>} */
export const listModels = () => call('/models');
/** @returns {Promise<Answer<DatasetCatalog>>} */
export const listDatasets = () => call('/datasets');

/** @returns {Promise<Answer<JobList>>} */
export const listJobs = () => call('/jobs?limit=50');
/**
 * @param {FormRequest} request
 * @returns {Promise<Answer<Job>>}
 */
export const createJob = (request) => call('/jobs', postJson(JSON.stringify(request)));
/**
 * @param {string} id
 * @returns {Promise<Answer<Job>>}
 */
export const getJob = (id) => call(jobPath(id));
/**
 * @param {string} id
 * @returns {Promise<Answer<Job>>}
 */
export const cancelJob = (id) => call(`${jobPath(id)}/cancel`, { method: 'POST' });
/**
 * @param {string} id
 * @returns {Promise<Answer<null>>}
 */
export const deleteJob = (id) => call(jobPath(id), { method: 'DELETE' });
/**
 * Classifies the images, each with what the model saw.
 * @param {string} id
 * @param {FormData} images
 * @returns {Promise<Answer<PredictResponse>>}
 */
export const predict = (id, images) => call(`${jobPath(id)}/predict?explain=1`, { method: 'POST', body: images });

/**
 * The job's event stream: an EventSource cannot send headers, so the key goes as access_token.
 * @param {string} id
 */
export const jobEventsUrl = (id) =>
  `${jobPath(id)}/events${apiKey() ? `?access_token=${encodeURIComponent(apiKey())}` : ''}`;

/**
 * The job's model zip and the name the server gives it (a plain link could not send the key).
 * @param {string} id
 * @returns {Promise<{ blob: Blob, name: string }>}  rejected with the server's error
 */
export async function downloadModel(id) {
  const response = await fetch(`${jobPath(id)}/model`, { headers: authorization() });
  if (!response.ok) throw new Error(errorOf(response.status, await response.json().catch(() => null)).error);
  const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? `${id}.zip`;
  return { blob: await response.blob(), name };
}

/**
 * @param {string} id
 * @returns {Promise<Answer<UploadedDataset>>}
 */
export const getDataset = (id) => call(datasetPath(id));
/**
 * @param {string} id
 * @returns {Promise<Answer<null>>}
 */
export const deleteDataset = (id) => call(datasetPath(id), { method: 'DELETE' });

/**
 * POST /datasets as multipart, with the upload's progress.
 * @param {FormData} data  the options and the archive
 * @param {(loaded: number, total: number) => void} onProgress  bytes sent so far, of all
 * @returns {Promise<Answer<UploadedDataset>>}
 */
export const uploadDataset = (data, onProgress) => upload('/datasets', data, onProgress);

/** @returns {Promise<Answer<BaseList>>} */
export const listBases = () => call('/bases');
/**
 * @param {string} id
 * @returns {Promise<Answer<null>>}
 */
export const deleteBase = (id) => call(`/bases/${encodeURIComponent(id)}`, { method: 'DELETE' });
/**
 * POST /bases as multipart, with the upload's progress: the server checks the model before it answers.
 * @param {FormData} data  the name and the zip
 * @param {(loaded: number, total: number) => void} onProgress  bytes sent so far, of all
 * @returns {Promise<Answer<Base>>}
 */
export const uploadBase = (data, onProgress) => upload('/bases', data, onProgress);

/**
 * A multipart POST through XMLHttpRequest: fetch does not report an upload's progress.
 * @template T  the body on success
 * @param {string} path
 * @param {FormData} data
 * @param {(loaded: number, total: number) => void} onProgress
 * @returns {Promise<Answer<T>>}
 */
function upload(path, data, onProgress) {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open('POST', path);
    for (const [name, value] of Object.entries(authorization())) request.setRequestHeader(name, value);
    request.upload.addEventListener('progress', (progress) => {
      if (progress.lengthComputable) onProgress(progress.loaded, progress.total);
    });
    request.addEventListener('error', () =>
      resolve({ ok: false, status: 0, body: { error: 'the upload failed: the service is unreachable' } }),
    );
    request.addEventListener('load', () =>
      resolve(/** @type {Answer<T>} */ (answerOf(request.status, request.responseText))),
    );
    request.send(data);
  });
}

/** @returns {Promise<Answer<ExperimentList>>} */
export const listExperiments = () => call('/experiments?limit=20');
/**
 * @param {string} id
 * @returns {Promise<Answer<Experiment>>}
 */
export const getExperiment = (id) => call(experimentPath(id));
/**
 * @param {string} id
 * @returns {Promise<Answer<Experiment>>}
 */
export const cancelExperiment = (id) => call(`${experimentPath(id)}/cancel`, { method: 'POST' });
/**
 * @param {string} id
 * @returns {Promise<Answer<null>>}
 */
export const deleteExperiment = (id) => call(experimentPath(id), { method: 'DELETE' });
