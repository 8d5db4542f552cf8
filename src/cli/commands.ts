import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jobStates, type Job, type JobState, type JobSummary } from '../contract/job.ts';
import type { JobRequestInput } from '../contract/job-request.ts';
import type { Base } from '../contract/bases.ts';
import type { DatasetCatalog } from '../contract/catalog.ts';
import { archiveBaseName, type UploadedDataset } from '../contract/datasets.ts';
import { TrainerClient, type UploadFile } from '../client/index.ts';
import { Failure, UsageError } from './errors.ts';
import { completedLine, FollowReport } from './follow.ts';
import { jsonObject, webhookOption } from './request-options.ts';
import type { CliIo, Invocation } from './main.ts';
import { trainingOptions, type TrainingOptionValue } from './options.ts';
import { experimentCommand } from './experiment.ts';
import { formatTable } from './table.ts';

/** Runs a parsed command line against the service's public HTTP API; resolves to the exit status. */
export async function execute(invocation: Invocation, io: CliIo): Promise<number> {
  const { command, operands, json, options, flags } = invocation;
  const client = new TrainerClient(invocation.url, invocation.apiKey);
  const print = (text: string) => io.stdout.write(`${text}\n`);

  switch (command) {
    case 'submit': {
      const created = await client.submit({
        ...jobRequestFrom(options, flags),
        ...webhookOption(options, invocation.webhookSecret),
      });
      if (!flags.has('follow')) {
        print(json ? JSON.stringify(created) : describeSubmitted(created));
        return 0;
      }
      if (!json) print(describeSubmitted(created));
      return follow(client, created.id, json, io);
    }
    case 'watch':
      return follow(client, operands[0] as string, json, io);
    case 'predict': {
      const [id, ...paths] = operands as [string, ...string[]];
      const files = await Promise.all(paths.map(readImage));
      const { predictions } = await client.predict(id, files);
      const rows = predictions.map((prediction, index) => ({ file: paths[index] as string, ...prediction }));
      if (json) print(JSON.stringify({ predictions: rows }));
      else
        for (const row of rows)
          print(
            `${row.file}: label ${row.label}, class ${JSON.stringify(row.className)}, probability ${row.probability.toFixed(4)}${row.blank ? ' (blank image: a guess)' : ''}`,
          );
      return 0;
    }
    case 'list': {
      const { state, limit, cursor } = options;
      if (state !== undefined && !isState(state))
        throw new UsageError(`--state must be one of: ${jobStates.join(', ')}`);
      const page = await client.list({
        ...(state ? { state } : {}),
        ...(limit !== undefined ? { limit: integer('--limit', limit) } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
      });
      if (json) {
        print(JSON.stringify(page));
        return 0;
      }
      io.stdout.write(table(page.jobs));
      if (page.next !== null)
        io.stderr.write(`more: trainer list --cursor ${page.next}${state ? ` --state ${state}` : ''}\n`);
      return 0;
    }
    case 'model': {
      const id = operands[0] as string;
      const { bytes, fileName } = await client.model(id);
      const file = options.output ?? fileName;
      try {
        await writeFile(file, bytes);
      } catch (error) {
        throw new Failure(`cannot write ${file}: ${(error as Error).message}`);
      }
      print(
        json
          ? JSON.stringify({ job: id, file, bytes: bytes.byteLength })
          : `model of job ${id} saved to ${file} (${bytes.byteLength} bytes)`,
      );
      return 0;
    }
    case 'cancel': {
      const cancelled = await client.cancel(operands[0] as string);
      print(json ? JSON.stringify(cancelled) : `job ${cancelled.id} ${cancelled.state}`);
      return 0;
    }
    case 'delete': {
      const id = operands[0] as string;
      await client.deleteJob(id);
      print(json ? JSON.stringify({ job: id, deleted: true }) : `job ${id} deleted`);
      return 0;
    }
    case 'datasets':
      return datasetsCommand(client, operands, options, flags.has('wait'), json, io);
    case 'bases':
      return basesCommand(client, operands, options, json, io);
    case 'experiment':
      return experimentCommand(client, invocation, io);
  }
}

/** `trainer datasets upload|list|show|delete`. */
async function datasetsCommand(
  client: TrainerClient,
  operands: readonly string[],
  options: Readonly<Record<string, string>>,
  wait: boolean,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const print = (text: string) => io.stdout.write(`${text}\n`);
  const [action, operand] = operands as [string, string | undefined];
  if (action === 'list') {
    const catalog = await client.datasets();
    if (json) print(JSON.stringify(catalog));
    else io.stdout.write(datasetTable(catalog));
    return 0;
  }
  const id = operand as string;
  if (action === 'delete') {
    await client.deleteDataset(id);
    print(json ? JSON.stringify({ dataset: id, deleted: true }) : `data set ${id} deleted`);
    return 0;
  }
  let dataset = action === 'upload' ? await upload(client, id, options) : await client.dataset(id);
  if (action === 'upload' && !json)
    io.stderr.write(`data set ${dataset.id} uploaded (${dataset.archiveBytes} bytes); processing\n`);
  if (action === 'upload' && wait) {
    let last = '';
    while (dataset.state === 'processing') {
      await new Promise((resolve) => setTimeout(resolve, 500));
      dataset = await client.dataset(dataset.id);
      const { progress } = dataset;
      const line =
        progress && progress.done > 0
          ? `${progress.phase}: ${progress.done}${progress.total ? ` of ${progress.total}` : ''} ${progress.phase === 'reading' ? 'files' : 'images'}`
          : '';
      if (!json && line && line !== last) io.stderr.write(`${line}\n`);
      last = line;
    }
  }
  print(json ? JSON.stringify(dataset) : describeDataset(dataset));
  return dataset.state === 'failed' ? 1 : 0;
}

/** `trainer bases [list]|upload|show|delete`. */
async function basesCommand(
  client: TrainerClient,
  operands: readonly string[],
  options: Readonly<Record<string, string>>,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const print = (text: string) => io.stdout.write(`${text}\n`);
  const [action = 'list', operand] = operands;
  if (action === 'list') {
    const { bases } = await client.bases();
    if (json) print(JSON.stringify({ bases }));
    else io.stdout.write(baseTable(bases));
    return 0;
  }
  const id = operand as string;
  if (action === 'delete') {
    await client.deleteBase(id);
    print(json ? JSON.stringify({ base: id, deleted: true }) : `base ${id} deleted`);
    return 0;
  }
  const base =
    action === 'upload'
      ? await client.uploadBase(await readArchive(id), {
          name: options.name ?? (archiveBaseName(path.basename(id)) || path.basename(id)),
        })
      : await client.base(id);
  print(json ? JSON.stringify(base) : describeBase(base));
  return 0;
}

function describeBase(base: Base): string {
  const { input } = base;
  return [
    `base ${base.id} "${base.name}": ${base.network}, input ${input.height}×${input.width}×${input.channels}, ${base.classes === null ? 'no classifier' : `${base.classes} classes`}, ${base.bytes} bytes`,
    `  layers it gives weights for: ${base.coveredLayers.join(', ') || 'none'}`,
    `  start from it: trainer submit --model ${base.network} --init-from ${base.id} --dataset D`,
  ].join('\n');
}

function baseTable(bases: readonly Base[]): string {
  if (bases.length === 0) return 'no bases: trainer bases upload <zip> adds one\n';
  const rows = bases.map((base) => [
    base.id,
    base.name,
    base.network,
    `${base.input.height}×${base.input.width}×${base.input.channels}`,
    base.classes === null ? '-' : String(base.classes),
    String(base.coveredLayers.length),
    base.createdAt,
  ]);
  return formatTable(['ID', 'NAME', 'NETWORK', 'INPUT', 'CLASSES', 'LAYERS', 'CREATED'], rows);
}

/** Uploads the archive, named after its file unless --name says otherwise. */
async function upload(
  client: TrainerClient,
  file: string,
  options: Readonly<Record<string, string>>,
): Promise<UploadedDataset> {
  const archive = await readArchive(file);
  const name = archiveBaseName(archive.name) || archive.name;
  return client.uploadDataset(archive, { name, ...uploadOptionsFrom(options) });
}

/** The upload options from the command line, as the query parameters POST /datasets takes; the server checks them. */
function uploadOptionsFrom(options: Readonly<Record<string, string>>): Record<string, string> {
  const names: Record<string, string> = {
    name: 'name',
    'image-size': 'imageSize',
    colour: 'colour',
    'test-fraction': 'testFraction',
    'split-seed': 'seed',
    'image-kind': 'imageKind',
  };
  return Object.fromEntries(
    Object.entries(names).flatMap(([flag, field]) =>
      options[flag] === undefined ? [] : [[field, options[flag] as string]],
    ),
  );
}

const archiveTypes: Record<string, string> = {
  '.zip': 'application/zip',
  '.tar': 'application/x-tar',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
};

async function readArchive(file: string): Promise<UploadFile> {
  try {
    const bytes = await readFile(file);
    return {
      name: path.basename(file),
      bytes: new Uint8Array(bytes),
      type: archiveTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    };
  } catch (error) {
    throw new Failure(`cannot read ${file}: ${readFailure(error)}`);
  }
}

function describeDataset(dataset: UploadedDataset): string {
  const head = `data set ${dataset.id} "${dataset.name}": ${dataset.state}`;
  if (dataset.state === 'failed') return `${head}: ${dataset.error?.message ?? 'no reason given'}`;
  const { report } = dataset;
  if (!report) return `${head}${dataset.progress ? ` (${dataset.progress.phase})` : ''}`;
  const { shape, splits } = report;
  const lines = [
    `${head}, ${shape.height}×${shape.width}×${shape.channels} ${report.imageKind} images, ${report.bytes} bytes`,
    ...report.classNames.map(
      (name, index) =>
        `  ${name}: ${splits.train.perClass[index]} train, ${splits.test.perClass[index]} test${splits.val ? `, ${splits.val.perClass[index]} val` : ''}`,
    ),
    `  test split: ${report.testSplit === 'folder' ? "the archive's test/ folder" : 'held out from each class'}`,
  ];
  if (report.skipped.count > 0) {
    const reasons = Object.entries(report.skipped.byReason).filter(([, count]) => count > 0);
    lines.push(
      `  skipped ${report.skipped.count} file${report.skipped.count === 1 ? '' : 's'}: ${reasons.map(([reason, count]) => `${count} ${reason}`).join(', ')}`,
    );
  }
  for (const warning of report.warnings) lines.push(`  warning: ${warning}`);
  lines.push(`  train on it: trainer submit --dataset ${dataset.id}   (auto picks the network; --model names one)`);
  return lines.join('\n');
}

function datasetTable(catalog: DatasetCatalog): string {
  const rows = [
    ...catalog.datasets.map((entry) => [
      entry.id,
      entry.name,
      entry.builtIn ? 'built-in' : 'ready',
      `${entry.shape.height}×${entry.shape.width}×${entry.shape.channels}`,
      String(entry.classNames.length),
      `${entry.trainSize}/${entry.testSize}`,
    ]),
    ...catalog.uploads.map((entry) => [entry.id, entry.name, entry.state, '-', '-', '-']),
  ];
  return formatTable(['ID', 'NAME', 'STATE', 'SHAPE', 'CLASSES', 'TRAIN/TEST'], rows);
}

/** Follows the job's events to its end: a report for people, or one JSON event per line. 0 when it completed. */
async function follow(client: TrainerClient, id: string, json: boolean, io: CliIo): Promise<number> {
  const report = json
    ? null
    : new FollowReport(id, {
        stdout: io.stdout,
        stderr: io.stderr,
        live: io.interactive,
        ...(io.columns ? { columns: io.columns } : {}),
      });
  try {
    for await (const event of client.events(id)) {
      if (report) report.handle(event);
      else io.stdout.write(`${JSON.stringify({ job: id, ...event })}\n`);
      if (event.type === 'end') return event.data.state === 'completed' ? 0 : 1;
    }
  } finally {
    report?.close();
  }
  // The server had nothing more to send (the job had ended and this client had it all): say how it ended.
  const job = await client.job(id);
  if (json) io.stdout.write(`${JSON.stringify({ job: id, type: 'job', data: job })}\n`);
  else if (job.result) io.stdout.write(`${completedLine(job.result)}\n`);
  else io.stderr.write(`job ${id} ${job.state}\n`);
  return job.state === 'completed' ? 0 : 1;
}

function isState(name: string): name is JobState {
  return (jobStates as readonly string[]).includes(name);
}

function jobRequestFrom(options: Readonly<Record<string, string>>, flags: ReadonlySet<string>): JobRequestInput {
  // Without --model the server's default, auto, picks the network.
  if (!options.dataset) throw new UsageError('submit needs --dataset');
  const switches = trainingOptions.filter(({ value }) => value === 'switch');
  for (const { flag } of switches) {
    if (flags.has(flag) && flags.has(`no-${flag}`)) throw new UsageError(`give --${flag} or --no-${flag}, not both`);
  }
  const request: Record<string, unknown> = {};
  // Names, then whole numbers, then numbers: of two bad values, the whole number is the one reported.
  const readers: [TrainingOptionValue, (flag: string, value: string) => unknown][] = [
    ['NAME', (_flag, value) => value],
    ['N', integer],
    ['X', decimal],
    ['X|NAME', (_flag, value) => numberIn(value) ?? value],
    ['JSON', jsonObject],
  ];
  for (const [kind, read] of readers) {
    for (const { flag, field, value } of trainingOptions) {
      const given = options[flag];
      if (value === kind && given !== undefined) request[field] = read(`--${flag}`, given);
    }
  }
  for (const { flag, field } of switches) {
    if (flags.has(flag)) request[field] = true;
    if (flags.has(`no-${flag}`)) request[field] = false;
  }
  // The server checks names, ranges and combinations, and says what is wrong.
  return request as JobRequestInput;
}

function integer(name: string, value: string): number {
  if (!/^-?\d+$/.test(value.trim()))
    throw new UsageError(`${name} must be a whole number, not ${JSON.stringify(value)}`);
  return Number(value);
}

function decimal(name: string, value: string): number {
  const parsed = numberIn(value);
  if (parsed === null) throw new UsageError(`${name} must be a number, not ${JSON.stringify(value)}`);
  return parsed;
}

/** The finite number `value` spells, or null (blank counts as none, though Number('') is 0). */
function numberIn(value: string): number | null {
  const parsed = value.trim() === '' ? Number.NaN : Number(value);
  return Number.isFinite(parsed) ? parsed : null;
}

const mediaTypes: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

async function readImage(file: string): Promise<UploadFile> {
  try {
    const bytes = await readFile(file);
    return {
      name: path.basename(file),
      bytes: new Uint8Array(bytes),
      type: mediaTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    };
  } catch (error) {
    throw new Failure(`cannot read ${file}: ${readFailure(error)}`);
  }
}

function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (error as Error).message;
}

/** "job … submitted: mobilenetv2 from imagenet (top) at 96 px on …, 4 epochs", and what auto picked and why. */
function describeSubmitted(created: Job): string {
  const { request } = created;
  const head = `job ${created.id} submitted: ${networkText(request)} on ${request.dataset}, ${request.epochs} epoch${request.epochs === 1 ? '' : 's'}`;
  const reasons = request.autoChoice?.reasons ?? [];
  return reasons.length === 0 ? head : [head, 'auto picked:', ...reasons.map((reason) => `  - ${reason}`)].join('\n');
}

/** The network, where it starts, the layers it trains when not all and its input size when set. */
function networkText(request: Job['request']): string {
  const start = request.initFrom ? ` from ${request.initFrom}` : '';
  const layers = request.trainLayers === 'all' ? '' : ` (${request.trainLayers})`;
  const size = request.inputSize === null ? '' : ` at ${request.inputSize} px`;
  return `${request.model}${start}${layers}${size}`;
}

function table(jobs: readonly JobSummary[]): string {
  if (jobs.length === 0) return 'no jobs\n';
  const rows = jobs.map((job) => [
    job.id,
    job.state,
    `${job.request.model}/${job.request.dataset}`,
    `${Math.floor(job.progress.fraction * 100)}%`,
    job.result ? job.result.testAccuracy.toFixed(4) : '-',
    job.createdAt,
  ]);
  return formatTable(['ID', 'STATE', 'MODEL/DATA', 'PROGRESS', 'ACCURACY', 'CREATED'], rows);
}
