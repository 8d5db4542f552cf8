import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

/** Asserts that `env` is refused with a ConfigError naming `variable`, and returns its message. */
function refused(env: Record<string, string>, variable: string): string {
  let caught: unknown;
  try {
    const config = loadConfig(env);
    assert.fail(`${JSON.stringify(env)} was accepted as ${JSON.stringify(config)}`);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.name, 'ConfigError');
  assert.ok(new RegExp(`\\b${variable}\\b`).test(caught.message), `"${caught.message}" names ${variable}`);
  return caught.message;
}

describe('loadConfig', () => {
  // A working directory of its own: one that holds a former default folder changes the defaults.
  let workingDirectory: string;
  before(async () => {
    workingDirectory = await mkdtemp(path.join(os.tmpdir(), 'config-test-'));
  });
  after(() => rm(workingDirectory, { recursive: true, force: true }));

  it('gives the documented defaults for an empty environment', () => {
    const notices: string[] = [];
    const config = loadConfig({}, { workingDirectory, notice: (line) => notices.push(line) });
    assert.deepEqual(config, {
      ROLE: 'all',
      HOST: '127.0.0.1',
      PORT: 3000,
      KEY_PREFIX: 'trainer',
      DATA_DIR: './data',
      ARTIFACTS_DIR: 'data/artifacts',
      MNIST_MIRROR: 'https://ossci-datasets.s3.amazonaws.com/mnist',
      CIFAR10_URL: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
      TRAINER_BACKEND: 'auto',
      WORKER_CONCURRENCY: 1,
      TRAIN_THREADS: os.availableParallelism(),
      MAX_UPLOAD_BYTES: 10 * 1024 * 1024,
      MAX_UPLOAD_FILES: 64,
      MAX_IMAGE_PIXELS: 40_000_000,
      MODEL_CACHE_SIZE: 4,
      LOG_LEVEL: 'info',
      BODY_LIMIT_BYTES: 64 * 1024,
      MAX_QUEUED_PER_CLIENT: 20,
      MAX_QUEUED_JOBS: 500,
      MAX_TRAINING_IMAGES_PER_JOB: 60_000_000,
      MAX_EXPERIMENT_RUNS: 64,
      RATE_LIMIT_PER_MINUTE: 600,
      DATASETS_DIR: 'data/datasets',
      MAX_DATASET_UPLOAD_BYTES: 1024 ** 3,
      MAX_DATASET_FILES: 100_000,
      MAX_DATASET_UNPACKED_BYTES: 4 * 1024 ** 3,
      MAX_DATASET_BYTES_PER_CLIENT: 2 * 1024 ** 3,
      MAX_DATASET_BYTES: 20 * 1024 ** 3,
      MAX_DATASETS_PROCESSING_PER_CLIENT: 1,
      BASES_DIR: 'data/bases',
      MAX_BASE_UPLOAD_BYTES: 256 * 1024 ** 2,
      CHECKPOINTS_DIR: 'data/checkpoints',
      CHECKPOINT_INTERVAL_SECONDS: 600,
      JOB_LOCK_SECONDS: 120,
      MAX_JOB_SECONDS: 604_800,
      JOB_RETENTION_DAYS: 0,
      EVENT_STREAM_BUFFER_BYTES: 256 * 1024,
      JOB_MAX_TAKEOVERS: 1,
      WEBHOOK_ALLOW_PRIVATE_ADDRESSES: false,
      WEBHOOK_TIMEOUT_MS: 10_000,
      WEBHOOK_FIRST_RETRY_MS: 10_000,
      WEBHOOK_RETRY_FOR_SECONDS: 86_400,
    });
    assert.equal(config.REDIS_URL, undefined);
    assert.equal(config.WEBHOOK_ALLOWED_HOSTS, undefined, 'any host, when the address rules allow it');
    assert.equal('REDIS_URL' in config, false);
    assert.deepEqual(notices, []);
  });

  it('puts models, checkpoints and uploaded data sets under DATA_DIR unless they are set', () => {
    const config = loadConfig(
      { DATA_DIR: '/srv/trainer', CHECKPOINTS_DIR: '/fast-disk/checkpoints' },
      { workingDirectory },
    );
    assert.equal(config.ARTIFACTS_DIR, '/srv/trainer/artifacts');
    assert.equal(config.DATASETS_DIR, '/srv/trainer/datasets');
    assert.equal(config.BASES_DIR, '/srv/trainer/bases');
    assert.equal(config.CHECKPOINTS_DIR, '/fast-disk/checkpoints');
  });

  it('still uses a former default folder that exists in the working directory, saying so once each', async () => {
    const formerly = await mkdtemp(path.join(os.tmpdir(), 'config-test-'));
    try {
      for (const folder of ['artifacts', 'checkpoints', 'uploaded-datasets']) await mkdir(path.join(formerly, folder));
      const notices: string[] = [];
      const notice = (line: string) => notices.push(line);
      const config = loadConfig({ DATA_DIR: '/srv/trainer' }, { workingDirectory: formerly, notice });
      assert.equal(config.ARTIFACTS_DIR, path.join(formerly, 'artifacts'));
      assert.equal(config.CHECKPOINTS_DIR, path.join(formerly, 'checkpoints'));
      assert.equal(config.DATASETS_DIR, path.join(formerly, 'uploaded-datasets'));
      assert.deepEqual(notices, [
        `ARTIFACTS_DIR is unset and ${formerly}/artifacts, its default before /srv/trainer/artifacts, exists: using it (move it to /srv/trainer/artifacts, or set ARTIFACTS_DIR=${formerly}/artifacts, and this line goes)`,
        `CHECKPOINTS_DIR is unset and ${formerly}/checkpoints, its default before /srv/trainer/checkpoints, exists: using it (move it to /srv/trainer/checkpoints, or set CHECKPOINTS_DIR=${formerly}/checkpoints, and this line goes)`,
        `DATASETS_DIR is unset and ${formerly}/uploaded-datasets, its default before /srv/trainer/datasets, exists: using it (move it to /srv/trainer/datasets, or set DATASETS_DIR=${formerly}/uploaded-datasets, and this line goes)`,
      ]);

      notices.length = 0;
      const set = loadConfig({ ARTIFACTS_DIR: '/models' }, { workingDirectory: formerly, notice });
      assert.equal(set.ARTIFACTS_DIR, '/models', 'a setting wins over a former default folder');
      assert.equal(notices.filter((line) => line.startsWith('ARTIFACTS_DIR')).length, 0);
    } finally {
      await rm(formerly, { recursive: true, force: true });
    }
  });

  it('takes valid overrides, coercing numbers', () => {
    const config = loadConfig({
      ROLE: 'worker',
      HOST: '0.0.0.0',
      PORT: '8080',
      REDIS_URL: 'redis://:secret@redis.internal:6380/2',
      KEY_PREFIX: 'prod.trainer-2',
      DATA_DIR: '/data',
      ARTIFACTS_DIR: '/artifacts',
      MNIST_MIRROR: 'http://127.0.0.1:9000/mnist',
      CIFAR10_URL: 'http://127.0.0.1:9000/cifar-10-binary.tar.gz',
      CIFAR10_PATH: '/datasets/cifar10',
      TRAINER_BACKEND: 'wasm',
      WORKER_CONCURRENCY: '3',
      TRAIN_THREADS: '4',
      MAX_UPLOAD_BYTES: '2048',
      MAX_UPLOAD_FILES: '5',
      MAX_IMAGE_PIXELS: '1000000',
      MODEL_CACHE_SIZE: '2',
      LOG_LEVEL: 'debug',
      DATASETS_DIR: '/datasets',
      MAX_DATASET_UPLOAD_BYTES: '1000',
      MAX_DATASET_FILES: '10',
      MAX_DATASET_UNPACKED_BYTES: '5000',
      MAX_DATASET_BYTES_PER_CLIENT: '600',
      MAX_DATASET_BYTES: '900',
      MAX_DATASETS_PROCESSING_PER_CLIENT: '2',
      BASES_DIR: '/bases',
      MAX_BASE_UPLOAD_BYTES: '700',
      CHECKPOINTS_DIR: '/checkpoints',
      CHECKPOINT_INTERVAL_SECONDS: '0',
      JOB_LOCK_SECONDS: '30',
      MAX_JOB_SECONDS: '3600',
      JOB_RETENTION_DAYS: '90.5',
      EVENT_STREAM_BUFFER_BYTES: '65536',
      JOB_MAX_TAKEOVERS: '20',
      MAX_EXPERIMENT_RUNS: '8',
      WEBHOOK_ALLOWED_HOSTS: 'Hooks.Example.com, 127.0.0.1,[::1]',
      WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
      WEBHOOK_TIMEOUT_MS: '500',
      WEBHOOK_FIRST_RETRY_MS: '100',
      WEBHOOK_RETRY_FOR_SECONDS: '0',
    });
    assert.deepEqual(config, {
      ROLE: 'worker',
      HOST: '0.0.0.0',
      PORT: 8080,
      REDIS_URL: 'redis://:secret@redis.internal:6380/2',
      KEY_PREFIX: 'prod.trainer-2',
      DATA_DIR: '/data',
      ARTIFACTS_DIR: '/artifacts',
      MNIST_MIRROR: 'http://127.0.0.1:9000/mnist',
      CIFAR10_URL: 'http://127.0.0.1:9000/cifar-10-binary.tar.gz',
      CIFAR10_PATH: '/datasets/cifar10',
      TRAINER_BACKEND: 'wasm',
      WORKER_CONCURRENCY: 3,
      TRAIN_THREADS: 4,
      MAX_UPLOAD_BYTES: 2048,
      MAX_UPLOAD_FILES: 5,
      MAX_IMAGE_PIXELS: 1_000_000,
      MODEL_CACHE_SIZE: 2,
      LOG_LEVEL: 'debug',
      BODY_LIMIT_BYTES: 64 * 1024,
      MAX_QUEUED_PER_CLIENT: 20,
      MAX_QUEUED_JOBS: 500,
      MAX_TRAINING_IMAGES_PER_JOB: 60_000_000,
      RATE_LIMIT_PER_MINUTE: 600,
      DATASETS_DIR: '/datasets',
      MAX_DATASET_UPLOAD_BYTES: 1000,
      MAX_DATASET_FILES: 10,
      MAX_DATASET_UNPACKED_BYTES: 5000,
      MAX_DATASET_BYTES_PER_CLIENT: 600,
      MAX_DATASET_BYTES: 900,
      MAX_DATASETS_PROCESSING_PER_CLIENT: 2,
      BASES_DIR: '/bases',
      MAX_BASE_UPLOAD_BYTES: 700,
      CHECKPOINTS_DIR: '/checkpoints',
      CHECKPOINT_INTERVAL_SECONDS: 0,
      JOB_LOCK_SECONDS: 30,
      MAX_JOB_SECONDS: 3600,
      JOB_RETENTION_DAYS: 90.5,
      EVENT_STREAM_BUFFER_BYTES: 65536,
      JOB_MAX_TAKEOVERS: 20,
      MAX_EXPERIMENT_RUNS: 8,
      WEBHOOK_ALLOWED_HOSTS: ['hooks.example.com', '127.0.0.1', '::1'],
      WEBHOOK_ALLOW_PRIVATE_ADDRESSES: true,
      WEBHOOK_TIMEOUT_MS: 500,
      WEBHOOK_FIRST_RETRY_MS: 100,
      WEBHOOK_RETRY_FOR_SECONDS: 0,
    });
    assert.equal(typeof config.PORT, 'number');
  });

  it('accepts every role, backend and log level it documents, rediss URLs and ports 0 and 65535', () => {
    for (const role of ['all', 'api', 'worker'] as const) assert.equal(loadConfig({ ROLE: role }).ROLE, role);
    for (const backend of ['auto', 'tensorflow', 'wasm', 'cpu'] as const) {
      assert.equal(loadConfig({ TRAINER_BACKEND: backend }).TRAINER_BACKEND, backend);
    }
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const) {
      assert.equal(loadConfig({ LOG_LEVEL: level }).LOG_LEVEL, level);
    }
    assert.equal(loadConfig({ REDIS_URL: 'rediss://cache.example:6380' }).REDIS_URL, 'rediss://cache.example:6380');
    assert.equal(loadConfig({ PORT: '0' }).PORT, 0);
    assert.equal(loadConfig({ PORT: '65535' }).PORT, 65535);
  });

  it('shares the cores among the concurrent jobs when TRAIN_THREADS is unset, one thread each at least', () => {
    const cores = os.availableParallelism();
    assert.equal(loadConfig({ WORKER_CONCURRENCY: String(cores) }).TRAIN_THREADS, 1);
    assert.equal(loadConfig({ WORKER_CONCURRENCY: String(cores * 3) }).TRAIN_THREADS, 1);
    assert.equal(loadConfig({ WORKER_CONCURRENCY: '1' }).TRAIN_THREADS, cores);
    assert.equal(loadConfig({ WORKER_CONCURRENCY: '1', TRAIN_THREADS: '3' }).TRAIN_THREADS, 3);
  });

  it('ignores variables it does not know', () => {
    const config = loadConfig({ PATH: '/usr/bin', HOME: '/root', PORT: '4000', NODE_ENV: 'production' });
    assert.equal(config.PORT, 4000);
    assert.equal('PATH' in config, false);
  });

  describe('refuses invalid values with a ConfigError naming the variable', () => {
    const cases: [string, string][] = [
      ['PORT', 'abc'],
      ['PORT', '70000'],
      ['PORT', '-1'],
      ['PORT', '80.5'],
      ['ROLE', 'both'],
      ['ROLE', 'ALL'],
      ['TRAINER_BACKEND', 'gpu'],
      ['WORKER_CONCURRENCY', '0'],
      ['WORKER_CONCURRENCY', '-2'],
      ['WORKER_CONCURRENCY', 'two'],
      ['TRAIN_THREADS', '0'],
      ['REDIS_URL', 'http://x'],
      ['REDIS_URL', 'not a url'],
      ['LOG_LEVEL', 'loud'],
      ['KEY_PREFIX', 'has space'],
      ['KEY_PREFIX', 'a:b'],
      ['MAX_IMAGE_PIXELS', '0'],
      ['MODEL_CACHE_SIZE', '1.5'],
      ['MNIST_MIRROR', 'mirror'],
      ['JOB_LOCK_SECONDS', '1'],
      ['CHECKPOINT_INTERVAL_SECONDS', '-1'],
      ['MAX_JOB_SECONDS', '0'],
      ['JOB_RETENTION_DAYS', '-1'],
      ['JOB_RETENTION_DAYS', 'a month'],
      ['EVENT_STREAM_BUFFER_BYTES', '100'],
      ['JOB_MAX_TAKEOVERS', '0'],
      ['MAX_EXPERIMENT_RUNS', '0'],
      ['WEBHOOK_ALLOWED_HOSTS', 'hooks.example.com;other.example'],
      ['WEBHOOK_ALLOWED_HOSTS', ' , '],
      ['WEBHOOK_ALLOWED_HOSTS', 'hooks.example.com:8443'],
      ['WEBHOOK_ALLOWED_HOSTS', 'https://hooks.example.com'],
      ['WEBHOOK_ALLOW_PRIVATE_ADDRESSES', 'maybe'],
      ['WEBHOOK_TIMEOUT_MS', '0'],
      ['WEBHOOK_FIRST_RETRY_MS', '1.5'],
      ['WEBHOOK_RETRY_FOR_SECONDS', '-1'],
    ];
    for (const [variable, value] of cases) {
      it(`${variable}=${JSON.stringify(value)}`, () => {
        const message = refused({ [variable]: value }, variable);
        assert.match(message, /invalid configuration/);
      });
    }

    it('names every invalid variable at once', () => {
      const message = refused({ PORT: 'abc', ROLE: 'both', LOG_LEVEL: 'loud', HOST: 'fine.example' }, 'PORT');
      assert.match(message, /\bROLE\b/);
      assert.match(message, /\bLOG_LEVEL\b/);
      assert.doesNotMatch(message, /\bHOST\b/);
    });
  });

  it('treats a blank variable as unset: PORT= is the default 3000, not port 0 (any free port)', () => {
    for (const value of ['', ' ']) {
      const config = loadConfig({ PORT: value, HOST: value, TRAINER_BACKEND: value });
      assert.equal(config.PORT, 3000);
      assert.equal(config.HOST, '127.0.0.1');
      assert.equal(config.TRAINER_BACKEND, 'auto');
    }
  });
});
