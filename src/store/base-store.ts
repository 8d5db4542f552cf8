import type { Redis } from 'ioredis';
import type { Base } from '../contract/bases.ts';
import { modelNames, type ModelName } from '../contract/names.ts';
import type { DatasetStorageLimits } from './dataset-store.ts';
import { BaseKeys, DatasetKeys, JobKeys } from './keys.ts';
import { encodeFields } from './records.ts';
import { defineScripts, runScript } from './scripts.ts';

export type CreateBaseOutcome = 'created' | 'owner' | 'server';

export type DeleteBaseOutcome =
  { readonly kind: 'deleted' | 'missing' } | { readonly kind: 'inUse'; readonly jobId: string };

/**
 * Uploaded bases' records in Redis, beside the data sets': who owns each and what it is, for
 * listing and ownership without reading BASES_DIR. Their bytes count in the data sets' storage
 * counters, so one limit bounds what a client's uploads occupy. Creating (against the limits) and
 * deleting (unless a queued or running job starts from it) are one script each.
 */
export class BaseStore {
  private readonly keys: BaseKeys;
  private readonly datasetKeys: DatasetKeys;
  private readonly jobKeys: JobKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new BaseKeys(prefix);
    this.datasetKeys = new DatasetKeys(prefix);
    this.jobKeys = new JobKeys(prefix);
    defineScripts(redis);
  }

  /** Records a base whose files are in place; refused (`owner`, `server`) when its bytes would pass a storage limit. */
  async create(base: Base, owner: string, limits: DatasetStorageLimits): Promise<CreateBaseOutcome> {
    const { id, bytes, createdAt, ...rest } = base;
    const reply = await runScript(
      this.redis,
      'createBase',
      [
        this.keys.base(id),
        this.keys.index(),
        this.keys.index(owner),
        this.datasetKeys.bytes(),
        this.datasetKeys.bytes(owner),
      ],
      [
        id,
        JSON.stringify(encodeFields({ ...rest, createdAt, owner })),
        String(Date.parse(createdAt)),
        String(bytes),
        String(limits.perOwnerBytes),
        String(limits.totalBytes),
      ],
    );
    if (reply !== 'created' && reply !== 'owner' && reply !== 'server')
      throw new Error(`unexpected reply to recording a base: ${String(reply)}`);
    return reply;
  }

  async get(id: string): Promise<Base | null> {
    return decodeBase(await this.redis.hgetall(this.keys.base(id)));
  }

  /** The client that uploaded it ('' for one uploaded without API keys), or null when there is no such base. */
  async owner(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.base(id), 'owner');
  }

  /** A client's bases (`owner` '' without API keys), newest first. */
  async list(owner: string): Promise<Base[]> {
    const ids = await this.redis.zrevrange(this.keys.index(owner), 0, -1);
    const records = await Promise.all(ids.map((id) => this.redis.hgetall(this.keys.base(id))));
    return records.map(decodeBase).filter((base): base is Base => base !== null);
  }

  /** Whether a base has a record: what tells a folder in BASES_DIR from one a crash left unrecorded. */
  async exists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.base(id))) === 1;
  }

  /** Deletes its record unless a queued or running job starts from it (`initFrom`). */
  async remove(id: string): Promise<DeleteBaseOutcome> {
    const reply = await runScript(
      this.redis,
      'deleteBase',
      [
        this.keys.base(id),
        this.keys.index(),
        this.datasetKeys.bytes(),
        this.jobKeys.index('queued'),
        this.jobKeys.index('running'),
      ],
      [id, this.keys.ownerIndexPrefix(), `${this.datasetKeys.bytes()}:`, this.jobKeys.job('')],
    );
    const [kind, jobId] = Array.isArray(reply) ? (reply as string[]) : [];
    if (kind === 'inUse' && jobId) return { kind, jobId };
    if (kind === 'deleted' || kind === 'missing') return { kind };
    throw new Error(`unexpected reply to deleting a base: ${String(reply)}`);
  }
}

function decodeBase(record: Record<string, string>): Base | null {
  const network = modelNames.find((name): name is ModelName => name === record.network);
  if (!network || !record.id || !record.name || !record.input || !record.createdAt || !record.coveredLayers)
    return null;
  return {
    id: record.id,
    name: record.name,
    network,
    input: JSON.parse(record.input) as Base['input'],
    classes: record.classes ? (JSON.parse(record.classes) as number | null) : null,
    coveredLayers: JSON.parse(record.coveredLayers) as string[],
    bytes: Number(record.bytes ?? 0),
    createdAt: record.createdAt,
  };
}
