import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.ts';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFile(path.join(root, file), 'utf8');

interface ComposeService {
  image?: string;
  volumes?: string[];
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
}

interface GpuDeploy {
  resources: { reservations: { devices: { driver: string; capabilities: string[] }[] } };
}

// No Docker engine runs here, so these files are checked for what can go wrong without one:
// they parse, run scripts that exist, and pass settings the service accepts.
describe('Dockerfile and docker-compose.yml', () => {
  it('compose has redis, api and worker, running existing npm scripts with valid settings', async () => {
    const compose = parse(await read('docker-compose.yml')) as { services: Record<string, ComposeService> };
    const scripts = (JSON.parse(await read('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'gpu-worker', 'redis', 'worker']);
    for (const name of ['api', 'worker', 'gpu-worker'] as const) {
      const service = compose.services[name] as ComposeService;
      assert.equal(service.build, '.');
      const [npm, script] = service.command ?? [];
      assert.equal(npm, 'npm');
      assert.ok(script && scripts[script], `${name} runs npm ${script}, which package.json lacks`);
      assert.equal(service.environment?.ROLE, name === 'gpu-worker' ? 'worker' : name);
      assert.doesNotThrow(
        () => loadConfig(service.environment ?? {}),
        `${name}'s environment is rejected by the service`,
      );
      assert.equal(service.depends_on?.redis?.condition, 'service_healthy');
    }
    assert.match(compose.services.redis?.image ?? '', /^redis:/);
  });

  it('the GPU worker asks for WebGPU and the driver capability Vulkan needs', async () => {
    const compose = parse(await read('docker-compose.yml')) as {
      services: Record<string, ComposeService & { deploy?: GpuDeploy }>;
    };
    const gpuWorker = compose.services['gpu-worker'];
    assert.equal(gpuWorker?.environment?.TRAINER_BACKEND, 'webgpu');
    assert.match(
      gpuWorker?.environment?.NVIDIA_DRIVER_CAPABILITIES ?? '',
      /\bgraphics\b/,
      'Vulkan needs the graphics capability',
    );
    const [device] = gpuWorker?.deploy?.resources.reservations.devices ?? [];
    assert.equal(device?.driver, 'nvidia');
    assert.ok(device?.capabilities.includes('graphics'));
    assert.match(await read('Dockerfile'), /apt-get install[^\n]*\blibvulkan1\b/, 'Dawn opens libvulkan.so.1');
  });

  it('the Dockerfile installs from the lock file and starts an existing script', async () => {
    const dockerfile = await read('Dockerfile');
    const scripts = (JSON.parse(await read('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.match(dockerfile, /^FROM node:20/m);
    assert.match(dockerfile, /COPY package\.json package-lock\.json/);
    assert.match(dockerfile, /RUN npm ci/);
    const command = /^CMD \["npm", "(\w+)"\]/m.exec(dockerfile)?.[1];
    assert.ok(command && scripts[command], `CMD runs npm ${command}, which package.json lacks`);
    const environment = Object.fromEntries(
      [...dockerfile.matchAll(/(\w+)=(\S+)/g)]
        .filter(([, name]) => /^[A-Z_]+$/.test(name ?? ''))
        .map(([, name, value]) => [name, value]),
    );
    assert.doesNotThrow(() => loadConfig(environment));
    assert.equal(environment.HOST, '0.0.0.0', 'a container must listen beyond its loopback');
  });

  it('keeps what the service writes in DATA_DIR, where compose mounts a volume on each default folder', async () => {
    const dockerfile = await read('Dockerfile');
    const volumes = JSON.parse(/^VOLUME (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    // As in the image, whose working directory holds none of the former default folders.
    const config = loadConfig(
      { DATA_DIR: /\bDATA_DIR=(\S+)/.exec(dockerfile)?.[1] ?? '' },
      { workingDirectory: path.join(root, 'src/no-such-folder') },
    );
    assert.deepEqual(volumes, [config.DATA_DIR]);
    const compose = parse(await read('docker-compose.yml')) as { services: Record<string, ComposeService> };
    for (const name of ['api', 'worker', 'gpu-worker'] as const) {
      const targets = (compose.services[name]?.volumes ?? []).map((volume) => volume.split(':')[1]);
      assert.deepEqual(
        targets.sort(),
        [config.DATA_DIR, config.ARTIFACTS_DIR, config.CHECKPOINTS_DIR, config.DATASETS_DIR].sort(),
        `${name} mounts a volume on DATA_DIR and on each folder under it`,
      );
    }
  });
});
