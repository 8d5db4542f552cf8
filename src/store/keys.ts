import type { JobState } from '../contract/job.ts';

/**
 * The name of every Redis key the job store uses, all under one prefix (KEY_PREFIX):
 *
 * | key | type | holds |
 * | --- | --- | --- |
 * | `<prefix>:job:<id>` | hash | the job's record: state, attempt, request, progress, result, times, owner, webhook (URL, secret, deliveries) |
 * | `<prefix>:job:<id>:logs` | list | its loss log lines (JSON) |
 * | `<prefix>:job:<id>:epochs` | list | its epoch summaries (JSON) |
 * | `<prefix>:job:<id>:events` | stream | its events, for GET /jobs/:id/events |
 * | `<prefix>:jobs:sequence` | string | the counter that numbers jobs in creation order |
 * | `<prefix>:jobs:<state or all>` | sorted set | job ids by sequence number |
 * | `<prefix>:jobs:owner:<owner>:<state or all>` | sorted set | the same, of one client's jobs |
 * | `<prefix>:jobs:ended` | stream | jobs as they end, for /metrics, and read by the consumer group `webhooks` to call their webhooks |
 * | `<prefix>:experiment:<id>` | hash | an experiment's record: name, owner, base, grid, metric, its runs' job ids and values, sequence, time (ExperimentKeys) |
 * | `<prefix>:experiments:sequence` | string | the counter that numbers experiments in creation order |
 * | `<prefix>:experiments:all` | sorted set | experiment ids by sequence number, `…:owner:<owner>` of one client's |
 * | `<prefix>:dataset:<id>` | hash | an uploaded data set's record: state, owner, name, options, progress, report, error, times (DatasetKeys) |
 * | `<prefix>:datasets:all` | sorted set | uploaded data set ids by creation time (ms) |
 * | `<prefix>:datasets:owner:<owner>` | sorted set | the same, of one client's |
 * | `<prefix>:datasets:processing` | sorted set | those still processing, `…:processing:<owner>` of one client |
 * | `<prefix>:datasets:bytes` | string | bytes the ready data sets and the bases occupy on disk, `…:bytes:<owner>` of one client |
 * | `<prefix>:base:<id>` | hash | an uploaded base's record: owner, name, network, input, classes, covered layers, bytes, time (BaseKeys) |
 * | `<prefix>:bases:all` | sorted set | base ids by creation time (ms), `…:owner:<owner>` of one client's |
 * | `<prefix>:jobs:finished` | sorted set | ended job ids by the time they ended (ms), for the retention sweep |
 * | `<prefix>:jobs:sweep` | string | held by the API process sweeping old jobs, for one sweep interval |
 *
 * (BullMQ's own keys are under `<prefix>:bull`: see queueKeyPrefix in queue/training-queue.ts.)
 */
export class JobKeys {
  constructor(readonly prefix: string) {}

  job(id: string): string {
    return `${this.prefix}:job:${id}`;
  }

  logs(id: string): string {
    return `${this.job(id)}:logs`;
  }

  epochs(id: string): string {
    return `${this.job(id)}:epochs`;
  }

  /** The job's event stream: every state change, progress update, log line and epoch, in order. */
  events(id: string): string {
    return `${this.job(id)}:events`;
  }

  /** Every key that holds something of the job: whoever deletes a job deletes these, its events included. */
  ofJob(id: string): string[] {
    return [this.job(id), this.logs(id), this.epochs(id), this.events(id)];
  }

  sequence(): string {
    return `${this.prefix}:jobs:sequence`;
  }

  /**
   * What every index key starts with. The transition script learns the job's state and owner only
   * as it runs, so it is given this and names the indexes from it exactly as index() does:
   * `<indexPrefix><state>` and `<indexPrefix>owner:<owner>:<state>`.
   */
  indexPrefix(): string {
    return `${this.prefix}:jobs:`;
  }

  /** Ids by sequence: of every job, or (with `owner`) of one client's jobs only, in a state or all. */
  index(state: JobState | 'all', owner?: string): string {
    return owner === undefined ? `${this.indexPrefix()}${state}` : `${this.indexPrefix()}owner:${owner}:${state}`;
  }

  /** Ids of jobs as they end, for /metrics and webhooks. */
  ended(): string {
    return `${this.prefix}:jobs:ended`;
  }

  /** Ended jobs' ids scored by when they ended: the retention sweep finds the old ones without reading every record. */
  finished(): string {
    return `${this.prefix}:jobs:finished`;
  }

  /** The retention sweep's lock: with several API processes, one sweeps per interval. */
  sweepLock(): string {
    return `${this.prefix}:jobs:sweep`;
  }
}

/** The keys of uploaded data sets (see the table above), beside the jobs' under the same prefix. */
export class DatasetKeys {
  constructor(readonly prefix: string) {}

  dataset(id: string): string {
    return `${this.prefix}:dataset:${id}`;
  }

  /** What the scripts name a client's keys from, as the methods below do: `<indexPrefix>owner:<owner>`, `<indexPrefix>processing:<owner>`, `<indexPrefix>bytes:<owner>`. */
  indexPrefix(): string {
    return `${this.prefix}:datasets:`;
  }

  /** Ids by creation time: of every uploaded data set, or (with `owner`) of one client's. */
  index(owner?: string): string {
    return owner === undefined ? `${this.indexPrefix()}all` : `${this.indexPrefix()}owner:${owner}`;
  }

  processing(owner?: string): string {
    return owner === undefined ? `${this.indexPrefix()}processing` : `${this.indexPrefix()}processing:${owner}`;
  }

  bytes(owner?: string): string {
    return owner === undefined ? `${this.indexPrefix()}bytes` : `${this.indexPrefix()}bytes:${owner}`;
  }
}

/** The keys of uploaded bases (see the table above); their bytes count in the data sets' `bytes` keys, the one storage limit. */
export class BaseKeys {
  constructor(readonly prefix: string) {}

  base(id: string): string {
    return `${this.prefix}:base:${id}`;
  }

  /** What an owner's index key starts with, for the delete script: `<ownerIndexPrefix><owner>`. */
  ownerIndexPrefix(): string {
    return `${this.prefix}:bases:owner:`;
  }

  /** Ids by creation time: of every base, or (with `owner`) of one client's. */
  index(owner?: string): string {
    return owner === undefined ? `${this.prefix}:bases:all` : `${this.ownerIndexPrefix()}${owner}`;
  }
}

/** The keys of experiments (see the table above), beside the jobs' under the same prefix. */
export class ExperimentKeys {
  constructor(readonly prefix: string) {}

  experiment(id: string): string {
    return `${this.prefix}:experiment:${id}`;
  }

  sequence(): string {
    return `${this.prefix}:experiments:sequence`;
  }

  /** Ids by sequence: of every experiment, or (with `owner`) of one client's. */
  index(owner?: string): string {
    return owner === undefined ? `${this.prefix}:experiments:all` : `${this.prefix}:experiments:owner:${owner}`;
  }
}
