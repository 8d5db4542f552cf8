/** `trainer submit` and `trainer bases` against a loopback server that answers as the API does: what is sent, what is printed. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, type CliIo } from '../../src/cli/main.ts';
import type { Base } from '../../src/contract/bases.ts';
import type { Job } from '../../src/contract/job.ts';
import { storedJobSettings } from '../support/job-settings.ts';

const at = '2026-01-01T00:00:00.000Z';
const reasons = [
  'mobilenetv2 from its ImageNet base: photographs (1,500 training images of 32×32×3), too few to learn features',
  'inputSize 96: as good as 224 pixels, at a fifth of the cost',
];
const autoJob: Job = {
  id: 'job-1',
  state: 'queued',
  request: {
    ...storedJobSettings,
    model: 'mobilenetv2',
    dataset: 'photos',
    initFrom: 'imagenet',
    trainLayers: 'top',
    inputSize: 96,
    epochs: 4,
    autoChoice: { reasons },
  },
  progress: { epoch: 0, epochs: 4, batch: 0, batchesPerEpoch: 10, fraction: 0 },
  logs: [],
  epochs: [],
  result: null,
  error: null,
  createdAt: at,
  startedAt: null,
  finishedAt: null,
};
const uploadedBase: Base = {
  id: 'b0b0b0b0-0000-4000-8000-000000000000',
  name: 'digits-net',
  network: 'lenet5',
  input: { height: 28, width: 28, channels: 1 },
  classes: 10,
  coveredLayers: ['conv2d', 'dense'],
  bytes: 1234,
  createdAt: at,
};

interface Received {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly body: string;
}

let server: Server;
let url: string;
let folder: string;
const received: Received[] = [];

const bodyOf = (request: IncomingMessage) =>
  new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'cli-submit-'));
  server = createServer((request, response) => {
    void bodyOf(request).then((body) => {
      received.push({ method: request.method, url: request.url, body });
      const answer =
        request.url === '/jobs'
          ? [201, autoJob]
          : request.url === '/bases'
            ? [200, { bases: [uploadedBase] }]
            : request.url?.startsWith('/bases?')
              ? [201, uploadedBase]
              : [404, { error: `no route ${request.method} ${request.url}` }];
      response.writeHead(answer[0] as number, { 'content-type': 'application/json' });
      response.end(JSON.stringify(answer[1]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  url = `http://127.0.0.1:${address.port}`;
});

after(async () => {
  server?.close();
  if (folder) await rm(folder, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (text: string) => void (stdout += text) },
    stderr: { write: (text: string) => void (stderr += text) },
    env: {},
    interactive: false,
  };
  const code = await runCli([...args, '--url', url], io);
  return { code, stdout, stderr };
}

describe('trainer submit and bases', () => {
  it('submit without --model sends none (auto) and prints what auto picked and why', async () => {
    received.length = 0;
    const { code, stdout } = await run(['submit', '--dataset', 'photos']);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(received[0]?.body ?? ''), { dataset: 'photos' });
    assert.equal(
      stdout,
      [
        'job job-1 submitted: mobilenetv2 from imagenet (top) at 96 px on photos, 4 epochs',
        'auto picked:',
        ...reasons.map((reason) => `  - ${reason}`),
        '',
      ].join('\n'),
    );
  });

  it('submit sends --init-from, --train-layers and --input-size as the request fields', async () => {
    received.length = 0;
    await run([
      'submit',
      '--dataset',
      'photos',
      '--model',
      'mobilenetv2',
      '--init-from',
      'imagenet',
      '--train-layers',
      'head',
      '--input-size',
      '128',
    ]);
    assert.deepEqual(JSON.parse(received[0]?.body ?? ''), {
      dataset: 'photos',
      model: 'mobilenetv2',
      initFrom: 'imagenet',
      trainLayers: 'head',
      inputSize: 128,
    });
  });

  it('bases lists them as a table; bases upload sends the zip named after its file and says what it is', async () => {
    const listed = await run(['bases']);
    assert.equal(listed.code, 0);
    assert.match(listed.stdout, /^ID +NAME +NETWORK +INPUT +CLASSES +LAYERS +CREATED$/m);
    assert.match(listed.stdout, new RegExp(`^${uploadedBase.id}  digits-net  lenet5 +28×28×1  10 +2 +${at}$`, 'm'));

    const zip = path.join(folder, 'digits-net.zip');
    await writeFile(zip, Buffer.from('PK\u0003\u0004'));
    received.length = 0;
    const uploaded = await run(['bases', 'upload', zip]);
    assert.equal(uploaded.code, 0, uploaded.stderr);
    assert.deepEqual(
      received.map(({ method, url: path }) => [method, path]),
      [['POST', '/bases?name=digits-net']],
    );
    assert.match(uploaded.stdout, /^base b0b0b0b0-.* "digits-net": lenet5, input 28×28×1, 10 classes, 1234 bytes$/m);
    assert.match(uploaded.stdout, /start from it: trainer submit --model lenet5 --init-from b0b0b0b0-\S+ --dataset D/);
  });
});
