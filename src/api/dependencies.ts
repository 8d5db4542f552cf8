import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { DeviceDescription } from '../contract/device.ts';
import type { BaseStore } from '../store/base-store.ts';
import type { DatasetStore } from '../store/dataset-store.ts';
import type { ExperimentStore } from '../store/experiment-store.ts';
import type { JobStore } from '../store/job-store.ts';
import type { DatasetJobData } from '../queue/dataset-queue.ts';
import type { TrainingJobData } from '../queue/training-queue.ts';
import type { EventFanout } from './event-fanout.ts';
import type { JobRemoval } from './job-removal.ts';
import type { Predictor } from './predictor.ts';

/** What the HTTP layer is given; it never trains, only reads jobs, queues them and predicts. */
export interface ApiDependencies {
  readonly config: Config;
  readonly redis: Redis;
  readonly store: JobStore;
  readonly datasetStore: DatasetStore;
  /** Uploaded bases' records; their files are in BASES_DIR. */
  readonly baseStore: BaseStore;
  readonly experimentStore: ExperimentStore;
  readonly queue: Queue<TrainingJobData>;
  /** Uploaded archives wait here for a worker to process them. */
  readonly datasetQueue: Queue<DatasetJobData>;
  readonly predictor: Predictor;
  /** Every GET /jobs/:id/events client of this process, through one Redis connection. */
  readonly eventFanout: EventFanout;
  /** Deletes ended jobs with their files (DELETE /jobs/:id and the retention sweep). */
  readonly removal: JobRemoval;
  /** The TensorFlow.js backend this process predicts with. */
  readonly backend: string;
  /** What that backend computes on. */
  readonly device: DeviceDescription;
  /** The API keys (from API_KEYS and API_KEYS_FILE); empty: authentication is off. */
  readonly apiKeys: readonly string[];
}
