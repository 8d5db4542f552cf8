import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { CIFAR10_URL } from './datasets/cifar10.ts';
import { MNIST_MIRROR_URL } from './datasets/mnist.ts';

const backendChoice = z.enum(['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
export type BackendChoice = z.infer<typeof backendChoice>;

const role = z.enum(['all', 'api', 'worker']);

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const nonNegativeInt = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

/** Shortest API key accepted: keys are bearer secrets, so they must not be guessable. */
const MIN_API_KEY_LENGTH = 16;
/** What every API key must be, from API_KEYS or API_KEYS_FILE alike, as messages say it. */
export const API_KEY_RULE = `at least ${MIN_API_KEY_LENGTH} characters without spaces`;

export function isAcceptableApiKey(key: string): boolean {
  return key.length >= MIN_API_KEY_LENGTH && !/\s/.test(key);
}

/** The entries of a list setting (API_KEYS, WEBHOOK_ALLOWED_HOSTS): comma-separated, trimmed, empty entries skipped. */
export function commaSeparated(list: string): string[] {
  return list
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
}

const apiKeyList = z.string().refine(
  (value) => commaSeparated(value).every(isAcceptableApiKey),
  // The message never quotes the value: it holds secrets.
  { message: `every key must be ${API_KEY_RULE}, keys separated by commas` },
);

/** Host names or IP addresses (IPv6 with or without brackets), lower-cased, as URL host names compare with them. */
const hostList = z
  .string()
  .transform((value) => commaSeparated(value).map((host) => host.toLowerCase().replace(/^\[(.*)\]$/, '$1')))
  .pipe(
    z
      .array(
        z
          .string()
          .refine(
            (host) =>
              isIP(host) !== 0 || /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host),
            'every entry must be a host name or an IP address, without a port, entries separated by commas',
          ),
      )
      .min(1, 'name at least one host'),
  );

/**
 * Every setting the service reads from its environment. Parsed once at start-up so that a typo
 * stops the process with a message instead of surfacing as a strange failure hours later.
 */
const environment = z.object({
  ROLE: role.default('all'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  KEY_PREFIX: z
    .string()
    .regex(/^[\w.-]+$/)
    .default('trainer'),
  /** The service's own folder: the download caches (`mnist/`, `cifar10/`), the embedded Redis (`redis/`), and the three folders below unless they are set. */
  DATA_DIR: z.string().min(1).default('./data'),
  /** Trained models, one folder per job; unset: `DATA_DIR/artifacts`. */
  ARTIFACTS_DIR: z.string().min(1).optional(),
  /** Defaults: the data sets' own download addresses, which they also fall back on without a setting. */
  MNIST_MIRROR: z.url().default(MNIST_MIRROR_URL),
  CIFAR10_URL: z.url().default(CIFAR10_URL),
  CIFAR10_PATH: z.string().min(1).optional(),
  /** Uploaded data sets, processed (one folder each) and, while they process, their archives (`uploads/`); every worker and API process must reach the same folder. Unset: `DATA_DIR/datasets`. */
  DATASETS_DIR: z.string().min(1).optional(),
  /** Largest archive one POST /datasets may upload. */
  MAX_DATASET_UPLOAD_BYTES: positiveInt(1024 * 1024 * 1024),
  /** Most entries (files, folders) an uploaded archive may hold. */
  MAX_DATASET_FILES: positiveInt(100_000),
  /** Most bytes an uploaded archive's entries may unpack to, counted from what the archive declares before anything is unpacked. */
  MAX_DATASET_UNPACKED_BYTES: positiveInt(4 * 1024 * 1024 * 1024),
  /** Uploaded bases (pretrained TF.js layers models), one folder each, and their archives while they are checked (`uploads/`); every worker and API process must reach the same folder. Unset: `DATA_DIR/bases`. */
  BASES_DIR: z.string().min(1).optional(),
  /** Largest archive one POST /bases may upload, and the most its model (model.json and weights) may unpack to: the API holds it in memory while it checks it. */
  MAX_BASE_UPLOAD_BYTES: positiveInt(256 * 1024 * 1024),
  /** Most bytes one client's processed data sets and bases may occupy. */
  MAX_DATASET_BYTES_PER_CLIENT: positiveInt(2 * 1024 * 1024 * 1024),
  /** Most bytes all processed data sets and bases together may occupy. */
  MAX_DATASET_BYTES: positiveInt(20 * 1024 * 1024 * 1024),
  /** Uploads of one client that may be processing at once; another answers 429. */
  MAX_DATASETS_PROCESSING_PER_CLIENT: positiveInt(1),
  /** Training checkpoints, one folder per unfinished job; every worker must reach the same folder to resume another's job. Unset: `DATA_DIR/checkpoints`. */
  CHECKPOINTS_DIR: z.string().min(1).optional(),
  /** Seconds of training between checkpoints within an epoch (every epoch ends with one anyway); 0: at epoch ends only. */
  CHECKPOINT_INTERVAL_SECONDS: nonNegativeInt(600),
  /** A worker that stops answering for this long (killed, frozen, cut off) loses its job to another worker, which resumes it. */
  JOB_LOCK_SECONDS: z.coerce.number().int().min(2).default(120),
  /** Times a job is taken over from a worker that died before it ends failed: a job that kills every worker that takes it must end some time. */
  JOB_MAX_TAKEOVERS: positiveInt(1),
  /** Longest a job may train: the default and upper bound of its timeoutSeconds. */
  MAX_JOB_SECONDS: positiveInt(7 * 24 * 3600),
  TRAINER_BACKEND: backendChoice.default('auto'),
  /** Part of the name of the GPU adapter a worker trains on (Dawn's adapter= option): one worker per GPU. */
  WEBGPU_ADAPTER: z.string().min(1).optional(),
  /** The largest GPU buffer, in MiB, to ask for; unset: all the adapter offers. Lower it to see how a smaller GPU would fare. */
  WEBGPU_MAX_BUFFER_MIB: z.coerce.number().int().positive().optional(),
  WORKER_CONCURRENCY: positiveInt(1),
  /**
   * Threads that train one job together (data-parallel replicas, on wasm and cpu); unset: the cores
   * this machine gives the process divided by WORKER_CONCURRENCY. 1: one thread per job.
   */
  TRAIN_THREADS: z.coerce.number().int().positive().optional(),
  MAX_UPLOAD_BYTES: positiveInt(10 * 1024 * 1024),
  MAX_UPLOAD_FILES: positiveInt(64),
  MAX_IMAGE_PIXELS: positiveInt(40_000_000),
  MODEL_CACHE_SIZE: positiveInt(4),
  /** Comma-separated API keys; with these (or API_KEYS_FILE) every route but /health and the docs needs `Authorization: Bearer <key>`. */
  API_KEYS: apiKeyList.optional(),
  /** A file with one API key per line (blank lines and lines starting with # are skipped). */
  API_KEYS_FILE: z.string().min(1).optional(),
  /** Largest JSON (or other non-upload) request body. */
  BODY_LIMIT_BYTES: positiveInt(64 * 1024),
  /** Queued and running jobs one client may have at once. */
  MAX_QUEUED_PER_CLIENT: positiveInt(20),
  /** Queued and running jobs of all clients together. */
  MAX_QUEUED_JOBS: positiveInt(500),
  /** Upper bound of epochs × trainLimit (training images seen) for one job. */
  MAX_TRAINING_IMAGES_PER_JOB: positiveInt(60_000 * 1000),
  /** Most runs (grid combinations) one experiment may have. */
  MAX_EXPERIMENT_RUNS: positiveInt(64),
  /** Requests per minute per client (API key, or IP address without keys); 0 switches the limit off. */
  RATE_LIMIT_PER_MINUTE: nonNegativeInt(600),
  /** Unsent bytes an event stream client may leave waiting in the API before it is cut off (it resumes with Last-Event-ID). */
  EVENT_STREAM_BUFFER_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(256 * 1024),
  /** Ended jobs older than this many days are deleted, with their models, by an hourly sweep; 0: kept for ever. */
  JOB_RETENTION_DAYS: z.coerce.number().min(0).default(0),
  /** Comma-separated host names (exact, no wildcards) or IP addresses that webhook URLs may name; unset: any host the address rules allow. */
  WEBHOOK_ALLOWED_HOSTS: hostList.optional(),
  /** true: webhooks may reach loopback, private, link-local and other non-public addresses (a receiver on this machine or network). */
  WEBHOOK_ALLOW_PRIVATE_ADDRESSES: z.stringbool().default(false),
  /** Longest one delivery attempt may take, from connecting to the receiver's status line. */
  WEBHOOK_TIMEOUT_MS: positiveInt(10_000),
  /** The wait before a failed delivery's first retry; each further retry waits twice as long as the one before. */
  WEBHOOK_FIRST_RETRY_MS: positiveInt(10_000),
  /** A delivery is retried only while its next attempt would start within this many seconds of its first; 0: never retried. */
  WEBHOOK_RETRY_FOR_SECONDS: nonNegativeInt(24 * 3600),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Every setting's name, read from the schema itself, so the configuration reference can be checked against it. */
export const settingNames = Object.keys(environment.shape);

type FolderSetting = 'ARTIFACTS_DIR' | 'CHECKPOINTS_DIR' | 'DATASETS_DIR' | 'BASES_DIR';

/**
 * The folders that default to a folder under DATA_DIR, with the folder in the working directory
 * that was their default before (null: none): one there is still used, so that an update finds its
 * models, checkpoints and data sets where it left them.
 */
const foldersUnderDataDir: Readonly<Record<FolderSetting, { name: string; formerDefault: string | null }>> = {
  ARTIFACTS_DIR: { name: 'artifacts', formerDefault: 'artifacts' },
  CHECKPOINTS_DIR: { name: 'checkpoints', formerDefault: 'checkpoints' },
  DATASETS_DIR: { name: 'datasets', formerDefault: 'uploaded-datasets' },
  // Newer than the move to DATA_DIR: it never had a default elsewhere.
  BASES_DIR: { name: 'bases', formerDefault: null },
};

/** The settings as the service uses them: TRAIN_THREADS and the folders always decided. */
export type Config = Omit<z.infer<typeof environment>, 'TRAIN_THREADS' | FolderSetting> & {
  readonly TRAIN_THREADS: number;
} & { readonly [Setting in FolderSetting]: string };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface ConfigContext {
  /** Where the former default folders are looked for: the process's working directory unless a test says otherwise. */
  readonly workingDirectory?: string;
  /** Told, one line each, what the settings decided that an operator should hear once a logger exists. */
  readonly notice?: (line: string) => void;
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  { workingDirectory = process.cwd(), notice = () => {} }: ConfigContext = {},
): Config {
  // `PORT=` in a shell or compose file means unset, not 0 (which Number('') would make it).
  const given = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''),
  );
  const parsed = environment.safeParse(given);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const { TRAIN_THREADS, ...settings } = parsed.data;
  const folder = (setting: FolderSetting): string => {
    const chosen = settings[setting];
    if (chosen !== undefined) return chosen;
    const { name, formerDefault } = foldersUnderDataDir[setting];
    const under = path.join(settings.DATA_DIR, name);
    if (formerDefault === null) return under;
    const former = path.join(workingDirectory, formerDefault);
    if (!existsSync(former)) return under;
    notice(
      `${setting} is unset and ${former}, its default before ${under}, exists: using it ` +
        `(move it to ${under}, or set ${setting}=${former}, and this line goes)`,
    );
    return former;
  };
  return {
    ...settings,
    ARTIFACTS_DIR: folder('ARTIFACTS_DIR'),
    CHECKPOINTS_DIR: folder('CHECKPOINTS_DIR'),
    DATASETS_DIR: folder('DATASETS_DIR'),
    BASES_DIR: folder('BASES_DIR'),
    TRAIN_THREADS: TRAIN_THREADS ?? Math.max(1, Math.floor(os.availableParallelism() / settings.WORKER_CONCURRENCY)),
  };
}
