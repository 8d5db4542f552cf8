import type { Experiment, ExperimentRequestInput, ExperimentRun } from '../contract/experiment.ts';
import type { TrainerClient } from '../client/index.ts';
import { UsageError } from './errors.ts';
import { jsonObject, webhookOption } from './request-options.ts';
import type { CliIo, Invocation } from './main.ts';
import { formatTable } from './table.ts';

/** How often watch asks for the experiment: its runs' progress moves by the batch, not faster than a person reads. */
const pollMs = 1000;

/** `trainer experiment submit|watch|show|cancel|delete`; watch and --follow answer 0 when every run completed. */
export async function experimentCommand(
  client: TrainerClient,
  { operands, options, flags, json, webhookSecret }: Invocation,
  io: CliIo,
): Promise<number> {
  const [action, id] = operands as [string, string | undefined];
  const print = (text: string) => io.stdout.write(`${text}\n`);
  const show = (experiment: Experiment) => print(json ? JSON.stringify(experiment) : runTable(experiment));
  switch (action) {
    case 'submit': {
      const created = await client.submitExperiment({
        ...experimentRequestFrom(options),
        ...webhookOption(options, webhookSecret),
      });
      if (!json)
        io.stderr.write(
          `experiment ${created.id} submitted: ${created.runs.length} run${created.runs.length === 1 ? '' : 's'}\n`,
        );
      if (!flags.has('follow')) {
        show(created);
        return 0;
      }
      return watch(client, created, json, io);
    }
    case 'watch':
      return watch(client, await client.experiment(id as string), json, io);
    case 'cancel':
      show(await client.cancelExperiment(id as string));
      return 0;
    case 'delete':
      await client.deleteExperiment(id as string);
      print(json ? JSON.stringify({ experiment: id, deleted: true }) : `experiment ${id} deleted`);
      return 0;
    default:
      // show: the parser lets no other subcommand through.
      show(await client.experiment(id as string));
      return 0;
  }
}

const allCompleted = (experiment: Experiment) => experiment.runs.every((run) => run.state === 'completed');

/**
 * Polls the experiment until every run ended. On a terminal the table is redrawn in place on
 * stderr; otherwise each run's change of state is a line there. The final table goes to stdout.
 */
async function watch(client: TrainerClient, first: Experiment, json: boolean, io: CliIo): Promise<number> {
  let experiment = first;
  let drawnLines = 0;
  const states = new Map<string, string>();
  for (;;) {
    if (!json && io.interactive) {
      const table = runTable(experiment);
      io.stderr.write(`${drawnLines > 0 ? `\x1b[${drawnLines}F\x1b[J` : ''}${table}`);
      drawnLines = table.split('\n').length - 1;
    } else if (!json) {
      for (const [index, run] of experiment.runs.entries()) {
        if (states.get(run.id) !== run.state)
          io.stderr.write(`run ${index + 1} (${describeValues(run)}): ${run.state}\n`);
        states.set(run.id, run.state);
      }
    }
    if (experiment.ended) break;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    experiment = await client.experiment(experiment.id);
  }
  if (drawnLines > 0) io.stderr.write(`\x1b[${drawnLines}F\x1b[J`);
  io.stdout.write(json ? `${JSON.stringify(experiment)}\n` : `${runTable(experiment)}\n`);
  return allCompleted(experiment) ? 0 : 1;
}

function describeValues(run: ExperimentRun): string {
  return Object.entries(run.values)
    .map(([field, value]) => `${field}=${String(value)}`)
    .join(', ');
}

/** One row per run: its number, job, varied values, state, progress, test accuracy and loss; the best marked `*`, and a line naming it. */
function runTable(experiment: Experiment): string {
  const fields = Object.keys(experiment.grid);
  const rows = experiment.runs.map((run, index) => [
    `${index + 1}${run.id === experiment.best?.id ? '*' : ''}`,
    run.id.slice(0, 8),
    ...fields.map((field) => String(run.values[field])),
    run.state,
    `${Math.floor((run.state === 'completed' ? 1 : run.progress.fraction) * 100)}%`,
    run.result ? run.result.testAccuracy.toFixed(4) : '-',
    run.result ? run.result.testLoss.toFixed(4) : '-',
  ]);
  const head = `experiment ${experiment.id}${experiment.name ? ` "${experiment.name}"` : ''}: ${Object.entries(
    experiment.counts,
  )
    .filter(([, count]) => count > 0)
    .map(([state, count]) => `${count} ${state}`)
    .join(', ')}`;
  const table = formatTable(
    ['RUN', 'JOB', ...fields.map((field) => field.toUpperCase()), 'STATE', 'PROGRESS', 'ACCURACY', 'LOSS'],
    rows,
  );
  const bestIndex = experiment.runs.findIndex((run) => run.id === experiment.best?.id);
  const best = experiment.best
    ? `best by ${experiment.metric}: run ${bestIndex + 1} (${describeValues(experiment.best)})`
    : `best by ${experiment.metric}: none completed yet`;
  return `${head}\n${table}${best}`;
}

function experimentRequestFrom(options: Readonly<Record<string, string>>): ExperimentRequestInput {
  if (options.grid === undefined)
    throw new UsageError('experiment submit needs --grid, e.g. --grid \'{"learningRate":[0.1,0.01]}\'');
  const request: Record<string, unknown> = { grid: jsonObject('--grid', options.grid) };
  if (options.base !== undefined) request.base = jsonObject('--base', options.base);
  if (options.name !== undefined) request.name = options.name;
  if (options.metric !== undefined) request.metric = options.metric;
  // The server checks fields, values and combinations, and says what is wrong.
  return request as ExperimentRequestInput;
}
