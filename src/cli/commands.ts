import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jobStates, type Job, type JobState, type JobSummary } from '../contract/job.ts';
import type { JobRequestInput } from '../contract/job-request.ts';
import { TrainerClient, type UploadFile } from './client.ts';
import { Failure, UsageError } from './errors.ts';
import { completedLine, FollowReport } from './follow.ts';
import type { CliIo, Invocation } from './main.ts';
import { trainingOptions, type TrainingOptionValue } from './options.ts';

/** Runs a parsed command line against the service's public HTTP API; resolves to the exit status. */
export async function execute(invocation: Invocation, io: CliIo): Promise<number> {
  const { command, operands, json, options, flags } = invocation;
  const client = new TrainerClient(invocation.url, invocation.apiKey);
  const print = (text: string) => io.stdout.write(`${text}\n`);

  switch (command) {
    case 'submit': {
      const created = await client.submit(jobRequestFrom(options, flags));
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
      else for (const row of rows) print(`${row.file}: label ${row.label}, class ${JSON.stringify(row.className)}, probability ${row.probability.toFixed(4)}${row.blank ? ' (blank image: a guess)' : ''}`);
      return 0;
    }
    case 'list': {
      const { state, limit, cursor } = options;
      if (state !== undefined && !isState(state)) throw new UsageError(`--state must be one of: ${jobStates.join(', ')}`);
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
      if (page.next !== null) io.stderr.write(`more: trainer list --cursor ${page.next}${state ? ` --state ${state}` : ''}\n`);
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
      print(json ? JSON.stringify({ job: id, file, bytes: bytes.byteLength }) : `model of job ${id} saved to ${file} (${bytes.byteLength} bytes)`);
      return 0;
    }
    case 'cancel': {
      const cancelled = await client.cancel(operands[0] as string);
      print(json ? JSON.stringify(cancelled) : `job ${cancelled.id} ${cancelled.state}`);
      return 0;
    }
  }
}

/** Follows the job's events to its end: a report for people, or one JSON event per line. 0 when it completed. */
async function follow(client: TrainerClient, id: string, json: boolean, io: CliIo): Promise<number> {
  const report = json ? null : new FollowReport(id, { stdout: io.stdout, stderr: io.stderr, live: io.interactive, ...(io.columns ? { columns: io.columns } : {}) });
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
  const { model, dataset } = options;
  if (!model || !dataset) throw new UsageError('submit needs --model and --dataset');
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
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${name} must be a whole number, not ${JSON.stringify(value)}`);
  return Number(value);
}

function decimal(name: string, value: string): number {
  const parsed = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed)) throw new UsageError(`${name} must be a number, not ${JSON.stringify(value)}`);
  return parsed;
}

const mediaTypes: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif' };

async function readImage(file: string): Promise<UploadFile> {
  try {
    const bytes = await readFile(file);
    return { name: path.basename(file), bytes: new Uint8Array(bytes), type: mediaTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Failure(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (error as Error).message}`);
  }
}

function describeSubmitted(created: Job): string {
  const { request } = created;
  return `job ${created.id} submitted: ${request.model} on ${request.dataset}, ${request.epochs} epoch${request.epochs === 1 ? '' : 's'}`;
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
  const header = ['ID', 'STATE', 'MODEL/DATA', 'PROGRESS', 'ACCURACY', 'CREATED'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] as string).length)));
  const format = (row: string[]) => row.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd();
  return `${[header, ...rows].map(format).join('\n')}\n`;
}
