import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
// The error classes alone: the client and the contract's schemas load with commands.ts, when a command runs.
import { ApiError, UnreachableError } from '../client/errors.ts';
import { Failure, UsageError } from './errors.ts';
import type { Output } from './follow.ts';
import { trainingOptionLines, trainingOptions, type TrainingOption } from './options.ts';

/** What the CLI talks to: the process's streams and environment, or a test's. */
export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** stderr is a terminal: progress is drawn as a live bar. */
  readonly interactive: boolean;
  readonly columns?: number;
}

export const defaultUrl = 'http://127.0.0.1:3000';

const usage = `Usage: trainer <command> [options]

Commands:
  submit --dataset D [--model M] [training options] [--webhook URL] [--follow]
                             start a training job (without --model, auto picks the network, base
                             and recipe for the data set and says why); --follow shows its progress
                             until it ends
  watch <job-id>             follow a job (progress bar, epochs, final accuracy) until it ends
  predict <job-id> <image>…  classify images with the model a completed job trained
  list [--state S] [--limit N] [--cursor C]
                             list jobs, newest first; S: queued, running, completed, failed or cancelled
  cancel <job-id>            cancel a queued or running job
  delete <job-id>            delete an ended job: its record, logs, model and checkpoint
  model <job-id> [-o FILE]   download the model a completed job trained, a zip for TensorFlow.js
                             (default FILE: the name the server gives, e.g. lenet5-mnist-<job-id>.zip)
  datasets upload <archive> [--name N] [--image-size N] [--colour grey|rgb] [--test-fraction X]
                  [--split-seed N] [--image-kind natural|strokes] [--wait]
                             upload your images (zip, tar or tar.gz of <class>/<image> folders, or
                             train/ and test/ folders of them); --wait shows processing until it ends
  datasets list              the data sets: built-in ones and yours, with their state
  datasets show <id>         an uploaded data set's report: classes, images per split, skipped files, warnings
  datasets delete <id>       delete an uploaded data set
  bases [list]               your uploaded bases: pretrained models that --init-from takes by id
  bases upload <zip> [--name N]
                             upload a TF.js layers model zip (a job's model download, or
                             tensorflowjs_converter's output); the server says which network it fits
  bases show <id>            an uploaded base: its network, input, classes and the layers it covers
  bases delete <id>          delete an uploaded base
  experiment submit --grid JSON [--base JSON] [--name N] [--metric testAccuracy|testLoss]
                    [--webhook URL] [--follow]
                             start an experiment: a job for every combination of the grid's values,
                             e.g. --base '{"epochs":2}' --grid '{"model":["lenet5","alexnet"]}'
  experiment watch <id>      the experiment's table of runs, redrawn as they train, until all ended
  experiment show <id>       the table of runs once: varied values, state, progress, accuracy, loss
  experiment cancel <id>     cancel the experiment's queued and running runs
  experiment delete <id>     delete an ended experiment and its runs' jobs

Training options (submit; defaults are the server's):
${trainingOptionLines()}
  --model takes lenet5, alexnet, resnet20, mobilenetv2 or auto (the default); --dataset a built-in
  data set's name or an uploaded one's id; --init-from starts from a completed job's model (its id),
  a built-in base (imagenet, for mobilenetv2) or a base you uploaded (its id); --train-layers all,
  top, head or dense; --input-size N (mobilenetv2, 32 to 224) resizes images inside the network;
  --validation-split takes a fraction or 'dataset' (an upload's val/ folder); --early-stopping and
  --schedule take the JSON of the request's earlyStopping and learningRateSchedule, e.g.
  --early-stopping '{"patience":3}' --schedule '{"type":"cosine","warmupEpochs":1}'
  --webhook URL: POST the job (an experiment: once all its runs ended) there when it ends, signed
  with the secret in $TRAINER_WEBHOOK_SECRET

Options of every command:
  --url URL    the service (default: $TRAINER_URL, else ${defaultUrl})
               its API key, when it wants one, comes from $TRAINER_API_KEY (never a flag: flags show in process lists)
  --json       machine-readable output only: JSON on stdout (watch and --follow: one event per line)
  -h, --help   show this help

Exit status: 0 done; 1 the server refused, could not be reached, or a followed job did not complete; 2 bad usage.
`;

const commonOptions = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type ParserOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** What node:util's parseArgs is told of the training options: a string each, two flags for a switch. */
function parserOptionsOf(options: readonly TrainingOption[]): ParserOptions {
  const parser: ParserOptions = {};
  for (const { flag, value } of options) {
    if (value !== 'switch') parser[flag] = { type: 'string' };
    else parser[flag] = parser[`no-${flag}`] = { type: 'boolean' };
  }
  return parser;
}

const submitOptions: ParserOptions = {
  ...parserOptionsOf(trainingOptions),
  webhook: { type: 'string' },
  follow: { type: 'boolean' },
};

const modelOptions = { output: { type: 'string', short: 'o' } } as const;

const datasetsOptions = {
  name: { type: 'string' },
  'image-size': { type: 'string' },
  colour: { type: 'string' },
  'test-fraction': { type: 'string' },
  'split-seed': { type: 'string' },
  'image-kind': { type: 'string' },
  wait: { type: 'boolean' },
} as const;

const basesOptions = { name: { type: 'string' } } as const;

const experimentOptions = {
  base: { type: 'string' },
  grid: { type: 'string' },
  name: { type: 'string' },
  metric: { type: 'string' },
  webhook: { type: 'string' },
  follow: { type: 'boolean' },
} as const;

const listOptions = {
  state: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const;

const commands = [
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
] as const;
type Command = (typeof commands)[number];

/** A command line, parsed and checked: what commands.ts runs. */
export interface Invocation {
  readonly command: Command;
  readonly operands: readonly string[];
  readonly url: string;
  /** From TRAINER_API_KEY, for a service with API keys switched on. */
  readonly apiKey: string | undefined;
  /** From TRAINER_WEBHOOK_SECRET, for --webhook. */
  readonly webhookSecret: string | undefined;
  readonly json: boolean;
  /** The command's own string options, by flag name. */
  readonly options: Readonly<Record<string, string>>;
  /** The command's own boolean flags that were given. */
  readonly flags: ReadonlySet<string>;
}

/** Runs one command line; resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    const invocation = parseCommandLine(argv, io.env);
    if (invocation === 'help') {
      io.stdout.write(usage);
      return 0;
    }
    // Loaded only now: help and usage errors need neither the HTTP client nor the contract's schemas.
    const { execute } = await import('./commands.ts');
    return await execute(invocation, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`trainer: ${error.message}\n\n${usage}`);
      return 2;
    }
    if (error instanceof UnreachableError) {
      io.stderr.write(`trainer: ${error.message}; is it running? (--url or TRAINER_URL say where)\n`);
      return 1;
    }
    if (error instanceof ApiError) {
      io.stderr.write(`trainer: ${error.message} (HTTP ${error.status})\n`);
      return 1;
    }
    if (error instanceof Failure) {
      io.stderr.write(`trainer: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** The command line as an invocation, 'help', or a UsageError. */
export function parseCommandLine(argv: readonly string[], env: CliIo['env']): Invocation | 'help' {
  // Every option any command knows, to find the command; then the command's own, strictly.
  const first = parse(argv, {
    ...commonOptions,
    ...submitOptions,
    ...listOptions,
    ...modelOptions,
    ...datasetsOptions,
    ...basesOptions,
    ...experimentOptions,
  });
  if (first.values.help) return 'help';
  const [name, ...operands] = first.positionals;
  if (name === undefined) throw new UsageError('no command given');
  if (!isCommand(name)) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
  const ownOptions: Partial<Record<Command, ParserOptions>> = {
    submit: submitOptions,
    list: listOptions,
    model: modelOptions,
    datasets: datasetsOptions,
    bases: basesOptions,
    experiment: experimentOptions,
  };
  const own = ownOptions[name] ?? {};
  const { values } = parse(argv, { ...commonOptions, ...own }, name);
  const options: Record<string, string> = {};
  const flags = new Set<string>();
  for (const [key, value] of Object.entries(values)) {
    if (typeof value === 'string') options[key] = value;
    else if (value === true) flags.add(key);
  }
  const { url, ...commandOptions } = options;
  flags.delete('help');
  const json = flags.delete('json');
  const counts: Record<Command, [number, number, string]> = {
    submit: [0, 0, 'no operands'],
    watch: [1, 1, 'one job id'],
    predict: [2, Infinity, 'a job id and one or more image files'],
    list: [0, 0, 'no operands'],
    cancel: [1, 1, 'one job id'],
    delete: [1, 1, 'one job id'],
    model: [1, 1, 'one job id'],
    datasets: [1, 2, 'upload <archive>, list, show <id> or delete <id>'],
    bases: [0, 2, 'list, upload <zip>, show <id> or delete <id>'],
    experiment: [1, 2, 'submit, watch <id>, show <id>, cancel <id> or delete <id>'],
  };
  const [min, max, what] = counts[name];
  if (operands.length < min || operands.length > max) throw new UsageError(`${name} takes ${what}`);
  if (name === 'datasets')
    checkSubcommand(name, operands, {
      upload: 'one archive file',
      list: '',
      show: 'one data set id',
      delete: 'one data set id',
    });
  // `trainer bases` alone lists them.
  if (name === 'bases' && operands.length > 0)
    checkSubcommand(name, operands, {
      list: '',
      upload: 'one zip file',
      show: 'one base id',
      delete: 'one base id',
    });
  if (name === 'experiment')
    checkSubcommand(name, operands, {
      submit: '',
      watch: 'one experiment id',
      show: 'one experiment id',
      cancel: 'one experiment id',
      delete: 'one experiment id',
    });
  return {
    command: name,
    operands,
    url: serverUrl(url, env),
    apiKey: env.TRAINER_API_KEY?.trim() || undefined,
    webhookSecret: env.TRAINER_WEBHOOK_SECRET || undefined,
    json,
    options: commandOptions,
    flags,
  };
}

function parse<T extends ParserOptions>(argv: readonly string[], options: T, command?: Command) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const option = /'(-[^']*)'/.exec(message)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) {
      throw new UsageError(command ? `${command} takes no option ${option}` : `unknown option ${option}`);
    }
    throw new UsageError(message);
  }
}

/** A command with subcommands (datasets, bases, experiment) and the operand each takes: what it is, or '' for none. */
function checkSubcommand(
  command: Command,
  operands: readonly string[],
  wanted: Readonly<Record<string, string>>,
): void {
  const [action, ...rest] = operands;
  const operand = action === undefined ? undefined : wanted[action];
  if (operand === undefined)
    throw new UsageError(
      `${command} takes ${Object.keys(wanted).slice(0, -1).join(', ')} or ${Object.keys(wanted).at(-1)}, not ${JSON.stringify(action)}`,
    );
  if (rest.length !== (operand === '' ? 0 : 1))
    throw new UsageError(`${command} ${action} takes ${operand === '' ? 'no operands' : operand}`);
}

function isCommand(name: string): name is Command {
  return (commands as readonly string[]).includes(name);
}

function serverUrl(given: string | undefined, env: CliIo['env']): string {
  const url = given ?? (env.TRAINER_URL?.trim() || defaultUrl);
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return url;
  } catch {
    // Reported below.
  }
  throw new UsageError(
    `${given === undefined ? 'TRAINER_URL' : '--url'} must be an http(s) URL, not ${JSON.stringify(url)}`,
  );
}

function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    interactive: process.stderr.isTTY === true,
    ...(process.stderr.columns ? { columns: process.stderr.columns } : {}),
  };
}

/** `trainer list | head`: a reader that stops early ends the command quietly, not with an EPIPE stack. */
export function exitQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw error;
    });
  }
}

// Run as a program (`node --import tsx src/cli/main.ts …`); bin.js imports runCli instead.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  exitQuietlyOnBrokenPipe();
  process.exitCode = await runCli(process.argv.slice(2));
}
