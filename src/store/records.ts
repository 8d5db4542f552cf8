import { jobStates, type JobProgress, type JobResult, type JobState, type JobSummary } from '../contract/job.ts';
import type { JobSettings } from '../contract/job-request.ts';
import type { JobWebhook, WebhookDelivery } from '../contract/webhook.ts';

/**
 * How a job's record (its Redis hash, `JobKeys.job`) and its history (the JSON entries of its
 * `logs` and `epochs` lists) are encoded and read back. Fields of the record: id, state, attempt,
 * sequence, owner, experimentId, createdAt, startedAt, finishedAt (ISO times as they are), request,
 * progress, result, error (JSON), and for a job with a webhook webhookUrl, webhookSecret (as they
 * are; the secret is never decoded into a job) and webhookDeliveries (JSON).
 */

/** Record fields as Redis holds them: strings as they are, anything else as JSON. */
export function encodeFields(fields: object): Record<string, string> {
  return Object.fromEntries(
    Object.entries(fields).map(([name, value]) => [name, typeof value === 'string' ? value : JSON.stringify(value)]),
  );
}

export function parseState(value: string | null | undefined): JobState | null {
  return jobStates.find((state) => state === value) ?? null;
}

/** The job's summary from its record, or null when the record is missing or incomplete. */
export function decodeSummary(record: Record<string, string>): JobSummary | null {
  const state = parseState(record.state);
  if (!state || !record.id || !record.request || !record.progress || !record.createdAt) return null;
  return {
    id: record.id,
    state,
    request: withLaterDefaults(JSON.parse(record.request) as RecordedSettings),
    progress: JSON.parse(record.progress) as JobProgress,
    result: record.result ? (JSON.parse(record.result) as JobResult) : null,
    error: record.error ? (JSON.parse(record.error) as { message: string }) : null,
    createdAt: record.createdAt,
    startedAt: record.startedAt ?? null,
    finishedAt: record.finishedAt ?? null,
    ...(record.experimentId ? { experimentId: record.experimentId } : {}),
    ...(record.webhookUrl ? { webhook: decodeWebhook(record.webhookUrl, record.webhookDeliveries) } : {}),
  };
}

/** A job's webhook from its record's webhookUrl and webhookDeliveries fields. */
export function decodeWebhook(url: string, deliveries: string | null | undefined): JobWebhook {
  return { url, secretSet: true, deliveries: deliveries ? (JSON.parse(deliveries) as WebhookDelivery[]) : [] };
}

/** The entries of a history list (log lines, epoch summaries), each one JSON value. */
export function decodeEntries<T>(entries: string[]): T[] {
  return entries.map((entry) => JSON.parse(entry) as T);
}

/** Settings a job recorded before fine-tuning, validation, schedules, optimizers, auto and label smoothing existed lacks. */
type LaterSettings =
  | 'initFrom'
  | 'trainLayers'
  | 'validationSplit'
  | 'earlyStopping'
  | 'learningRateSchedule'
  | 'optimizer'
  | 'inputSize'
  | 'autoChoice'
  | 'labelSmoothing';
type RecordedSettings = Partial<JobSettings> & Omit<JobSettings, LaterSettings>;

/** Such a job trained every layer from scratch with SGD on plain cross-entropy at the data set's image size, without validation, at one learning rate, on the model it named. */
function withLaterDefaults(request: RecordedSettings): JobSettings {
  return {
    ...request,
    initFrom: request.initFrom ?? null,
    trainLayers: request.trainLayers ?? 'all',
    validationSplit: request.validationSplit ?? null,
    earlyStopping: request.earlyStopping ?? null,
    learningRateSchedule: request.learningRateSchedule ?? null,
    optimizer: request.optimizer ?? 'sgd',
    inputSize: request.inputSize ?? null,
    autoChoice: request.autoChoice ?? null,
    labelSmoothing: request.labelSmoothing ?? 0,
  };
}
