import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServiceProcess } from '../support/processes.ts';
import { request, sharedEnvironment, waitFor } from '../support/service.ts';

describe('start-up', () => {
  let folder: string;
  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-startup-'));
  });
  after(async () => rm(folder, { recursive: true, force: true }));

  it('refuses an invalid setting with a message naming it, exit code 2', async () => {
    const service = startServiceProcess({ PORT: 'eighty', TRAINER_BACKEND: 'gpu' });
    let stderr = '';
    service.child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    assert.equal(await service.exited, 2);
    assert.match(stderr, /PORT/);
    assert.match(stderr, /TRAINER_BACKEND/);
  });

  it('says in one line that Redis is unreachable, and exits 1', async () => {
    const service = startServiceProcess({
      REDIS_URL: 'redis://127.0.0.1:1',
      PORT: '0',
      DATA_DIR: path.join(folder, 'unreachable'),
    });
    assert.equal(await service.exited, 1);
    const fatal = service.logs.filter((line) => line.level === 60);
    assert.equal(fatal.length, 1);
    assert.match(
      String(fatal[0]?.msg),
      /^Redis is not reachable at redis:\/\/127\.0\.0\.1:1\/? .*start Redis or set REDIS_URL$/,
    );
  });

  it('TRAINER_BACKEND=webgpu on a host without a GPU driver says why in one line, and exits 1', async () => {
    const service = startServiceProcess({
      ...sharedEnvironment(path.join(folder, 'no-gpu'), `test-${randomUUID()}`),
      ROLE: 'worker',
      TRAINER_BACKEND: 'webgpu',
      VK_ICD_FILENAMES: '/nonexistent/icd.json',
      VK_DRIVER_FILES: '/nonexistent/icd.json',
    });
    assert.equal(await service.exited, 1);
    const fatal = service.logs.filter((line) => line.level === 60);
    assert.equal(fatal.length, 1);
    assert.match(
      String(fatal[0]?.msg),
      /^no TensorFlow\.js backend could start \(TRAINER_BACKEND=webgpu\): webgpu: no WebGPU adapter found: .*libvulkan1/,
    );
  });

  it('TRAINER_BACKEND=auto on a host without a GPU says so in its one backend line, keeping Dawn off stderr unless asked at debug level', async () => {
    // No Vulkan driver at all and no XDG_RUNTIME_DIR: Dawn and the Vulkan loader complain on any host.
    const environment = {
      ...sharedEnvironment(path.join(folder, 'auto'), `test-${randomUUID()}`),
      ROLE: 'worker',
      TRAINER_BACKEND: 'auto',
      VK_ICD_FILENAMES: '/nonexistent/icd.json',
      VK_DRIVER_FILES: '/nonexistent/icd.json',
    };
    for (const level of ['info', 'debug']) {
      const service = startServiceProcess({ ...environment, LOG_LEVEL: level });
      let stderr = '';
      service.child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      try {
        const ready = await waitFor(
          'the worker to start',
          async () => service.logs.find((line) => line.msg === 'worker waiting for training jobs') ?? null,
          60_000,
        );
        assert.equal(ready.backend, 'wasm');
        const backendLines = service.logs.filter((line) => /^TensorFlow\.js runs on/.test(String(line.msg)));
        assert.equal(backendLines.length, 1);
        assert.equal(backendLines[0]?.level, 30);
        assert.match(
          String(backendLines[0]?.msg),
          /^TensorFlow\.js runs on the wasm backend \(.+\): no usable GPU was found$/,
        );
        const dawn = service.logs.filter((line) => line.msg === 'what Dawn said while looking for a GPU adapter');
        if (level === 'debug') {
          assert.equal(dawn.length, 1);
          assert.match(String(dawn[0]?.stderr), /vkCreateInstance/);
        } else {
          assert.deepEqual(dawn, []);
        }
      } finally {
        assert.equal(await service.stop('SIGTERM'), 0);
      }
      assert.doesNotMatch(stderr, /Vulkan|vkCreateInstance|XDG_RUNTIME_DIR|Warning/, `stderr at ${level}: ${stderr}`);
    }
  });

  it('without REDIS_URL starts a private Redis in DATA_DIR, serves, and stops it on SIGTERM', async () => {
    const dataDir = path.join(folder, 'embedded');
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const service = startServiceProcess({
      PORT: port,
      DATA_DIR: dataDir,
      ARTIFACTS_DIR: path.join(folder, 'artifacts'),
      TRAINER_BACKEND: 'cpu',
    });
    try {
      const health = await waitFor(
        'the service to answer',
        async () =>
          (
            await request<{ status: string; redis: string; backend: string; device: { kind: string } }>(
              `http://127.0.0.1:${port}/health`,
            ).catch(() => null)
          )?.body,
        30_000,
      );
      assert.deepEqual(
        { ...health, device: health.device.kind },
        { status: 'ok', redis: 'up', backend: 'cpu', device: 'cpu' },
      );
      assert.ok(service.logs.some((line) => String(line.msg).startsWith('started an embedded Redis')));
      assert.ok(existsSync(path.join(dataDir, 'redis', 'redis.sock')));
    } finally {
      assert.equal(await service.stop('SIGTERM'), 0);
    }
    assert.ok(!existsSync(path.join(dataDir, 'redis', 'redis.sock')), 'the private redis-server kept running');
  });
});
