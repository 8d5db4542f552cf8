import type { Redis } from 'ioredis';
import {
  datasetStates,
  type DatasetProgress,
  type DatasetReport,
  type DatasetState,
  type DatasetUploadOptions,
  type UploadedDataset,
} from '../contract/datasets.ts';
import { DatasetKeys, JobKeys } from './keys.ts';
import { encodeFields } from './records.ts';
import { defineScripts, runScript } from './scripts.ts';

/** How much of this server's disk uploaded data sets and bases may take together: per client and in all. */
export interface DatasetStorageLimits {
  readonly perOwnerBytes: number;
  readonly totalBytes: number;
}

export type DeleteDatasetOutcome =
  { readonly kind: 'deleted' | 'missing' | 'processing' } | { readonly kind: 'inUse'; readonly jobId: string };

/**
 * Uploaded data sets' records in Redis, beside the jobs': who owns each, where its processing
 * stands, its report or error. The files live in DATASETS_DIR (datasets/uploaded.ts); state
 * changes (create, finish, delete) are one script each, so limits and "in use" checks can't race.
 */
export class DatasetStore {
  readonly keys: DatasetKeys;
  private readonly jobKeys: JobKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new DatasetKeys(prefix);
    this.jobKeys = new JobKeys(prefix);
    defineScripts(redis);
  }

  /** Records an upload as `processing`; `busy` when its owner has `maxProcessing` processing already. */
  async create(
    id: string,
    fields: {
      name: string;
      options: DatasetUploadOptions;
      archiveBytes: number;
      createdAt: Date;
      owner: string | null;
    },
    maxProcessing: number,
  ): Promise<'created' | 'busy'> {
    const owner = fields.owner ?? '';
    const progress: DatasetProgress = { phase: 'queued', done: 0, total: 0 };
    const record = encodeFields({
      name: fields.name,
      options: fields.options,
      archiveBytes: String(fields.archiveBytes),
      createdAt: fields.createdAt.toISOString(),
      owner,
      progress,
    });
    const keys = [
      this.keys.dataset(id),
      this.keys.index(),
      this.keys.processing(),
      this.keys.index(owner),
      this.keys.processing(owner),
    ];
    const reply = await runScript(this.redis, 'createDataset', keys, [
      id,
      JSON.stringify(record),
      String(fields.createdAt.getTime()),
      String(maxProcessing),
    ]);
    if (reply !== 'created' && reply !== 'busy')
      throw new Error(`unexpected reply to data set creation: ${String(reply)}`);
    return reply;
  }

  async get(id: string): Promise<UploadedDataset | null> {
    return decodeDataset(await this.redis.hgetall(this.keys.dataset(id)));
  }

  /** The client that uploaded it ('' for one uploaded without API keys), or null when there is no such data set. */
  async owner(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.dataset(id), 'owner');
  }

  /** A client's data sets (`owner` '' without API keys), newest first. */
  async list(owner: string): Promise<UploadedDataset[]> {
    const ids = await this.redis.zrevrange(this.keys.index(owner), 0, -1);
    const records = await Promise.all(ids.map((id) => this.redis.hgetall(this.keys.dataset(id))));
    return records.map(decodeDataset).filter((dataset): dataset is UploadedDataset => dataset !== null);
  }

  /** How many of a client's data sets (`owner` '' without API keys) are processing. */
  async processingCount(owner: string): Promise<number> {
    return this.redis.zcard(this.keys.processing(owner));
  }

  /** Ids of every data set still processing, oldest first. */
  async processingIds(): Promise<string[]> {
    return this.redis.zrange(this.keys.processing(), '0', '-1');
  }

  /** Where processing stands; written only while it is processing. */
  async setProgress(id: string, progress: DatasetProgress): Promise<void> {
    await runScript(this.redis, 'setDatasetProgress', [this.keys.dataset(id)], [JSON.stringify(progress)]);
  }

  /** `ready`, unless a storage limit refuses its bytes (then `failed`); `gone` when it was not processing. */
  async markReady(
    id: string,
    report: DatasetReport,
    limits: DatasetStorageLimits,
    finishedAt = new Date(),
  ): Promise<DatasetState | 'gone'> {
    const limitMessage = JSON.stringify({
      message: `the processed data set takes ${report.bytes} bytes, which would put %s over the storage limit; delete data sets or bases you no longer need`,
    });
    return this.finish(
      id,
      'ready',
      { report, finishedAt: finishedAt.toISOString(), progress: '' },
      report.bytes,
      limits,
      limitMessage,
    );
  }

  async markFailed(id: string, message: string, finishedAt = new Date()): Promise<DatasetState | 'gone'> {
    return this.finish(
      id,
      'failed',
      { error: { message }, finishedAt: finishedAt.toISOString(), progress: '' },
      0,
      { perOwnerBytes: 0, totalBytes: 0 },
      '',
    );
  }

  private async finish(
    id: string,
    target: 'ready' | 'failed',
    fields: object,
    bytes: number,
    limits: DatasetStorageLimits,
    limitMessage: string,
  ): Promise<DatasetState | 'gone'> {
    const reply = await runScript(
      this.redis,
      'finishDataset',
      [this.keys.dataset(id), this.keys.processing(), this.keys.bytes()],
      [
        target,
        JSON.stringify(encodeFields(fields)),
        String(bytes),
        String(limits.perOwnerBytes),
        String(limits.totalBytes),
        this.keys.indexPrefix(),
        id,
        limitMessage,
      ],
    );
    const state = Array.isArray(reply) ? reply[0] : undefined;
    if (state !== 'gone' && !datasetStates.includes(state as DatasetState))
      throw new Error(`unexpected reply to finishing a data set: ${String(reply)}`);
    return state as DatasetState | 'gone';
  }

  /** Deletes its record unless it is processing or a queued or running job uses it. */
  async remove(id: string): Promise<DeleteDatasetOutcome> {
    const reply = await runScript(
      this.redis,
      'deleteDataset',
      [
        this.keys.dataset(id),
        this.keys.index(),
        this.keys.bytes(),
        this.jobKeys.index('queued'),
        this.jobKeys.index('running'),
      ],
      [id, this.keys.indexPrefix(), this.jobKeys.job('')],
    );
    const [kind, jobId] = Array.isArray(reply) ? (reply as string[]) : [];
    if (kind === 'inUse' && jobId) return { kind, jobId };
    if (kind === 'deleted' || kind === 'missing' || kind === 'processing') return { kind };
    throw new Error(`unexpected reply to deleting a data set: ${String(reply)}`);
  }
}

function decodeDataset(record: Record<string, string>): UploadedDataset | null {
  const state = datasetStates.find((known) => known === record.state);
  if (!state || !record.id || !record.name || !record.options || !record.createdAt) return null;
  return {
    id: record.id,
    name: record.name,
    state,
    options: JSON.parse(record.options) as UploadedDataset['options'],
    archiveBytes: Number(record.archiveBytes ?? 0),
    progress: record.progress ? (JSON.parse(record.progress) as DatasetProgress) : null,
    report: record.report ? (JSON.parse(record.report) as DatasetReport) : null,
    error: record.error ? (JSON.parse(record.error) as { message: string }) : null,
    createdAt: record.createdAt,
    finishedAt: record.finishedAt ?? null,
  };
}
