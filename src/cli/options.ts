import type { JobRequestInput } from '../contract/job-request.ts';

// Its own module, without imports at run time: main.ts builds its help and parser from it before
// commands.ts is loaded, and commands.ts can't import main.ts, which awaits it when run as a program.

/**
 * How a training option's value is read: NAME as given, N a whole number, X a number, X|NAME a
 * number when it reads as one and else the name, JSON a JSON object; a switch is --flag or --no-flag.
 */
export type TrainingOptionValue = 'NAME' | 'N' | 'X' | 'X|NAME' | 'JSON' | 'switch';

export interface TrainingOption {
  readonly flag: string;
  /** The job request field it sets. */
  readonly field: keyof JobRequestInput;
  readonly value: TrainingOptionValue;
}

/**
 * submit's training options, in the order the help lists them: the help, the parser's option list
 * and the job request (commands.ts) are all made from this one list.
 */
export const trainingOptions: readonly TrainingOption[] = [
  { flag: 'model', field: 'model', value: 'NAME' },
  { flag: 'dataset', field: 'dataset', value: 'NAME' },
  { flag: 'epochs', field: 'epochs', value: 'N' },
  { flag: 'batch-size', field: 'batchSize', value: 'N' },
  { flag: 'optimizer', field: 'optimizer', value: 'NAME' },
  { flag: 'learning-rate', field: 'learningRate', value: 'X' },
  { flag: 'momentum', field: 'momentum', value: 'X' },
  { flag: 'weight-decay', field: 'weightDecay', value: 'X' },
  { flag: 'label-smoothing', field: 'labelSmoothing', value: 'X' },
  { flag: 'augment', field: 'augment', value: 'switch' },
  { flag: 'seed', field: 'seed', value: 'N' },
  { flag: 'train-limit', field: 'trainLimit', value: 'N' },
  { flag: 'test-limit', field: 'testLimit', value: 'N' },
  { flag: 'log-every', field: 'logEvery', value: 'N' },
  { flag: 'init-from', field: 'initFrom', value: 'NAME' },
  { flag: 'train-layers', field: 'trainLayers', value: 'NAME' },
  { flag: 'input-size', field: 'inputSize', value: 'N' },
  { flag: 'validation-split', field: 'validationSplit', value: 'X|NAME' },
  { flag: 'early-stopping', field: 'earlyStopping', value: 'JSON' },
  { flag: 'schedule', field: 'learningRateSchedule', value: 'JSON' },
  { flag: 'timeout-seconds', field: 'timeoutSeconds', value: 'N' },
];

/** The training options as the help shows them, as many to a line as fit in 100 columns. */
export function trainingOptionLines(): string {
  const shown = trainingOptions.map(({ flag, value }) =>
    value === 'switch' ? `--${flag} | --no-${flag}` : `--${flag} ${value}`,
  );
  const lines: string[] = [];
  for (const option of shown) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 2 + option.length <= 100) lines[lines.length - 1] = `${last}  ${option}`;
    else lines.push(`  ${option}`);
  }
  return lines.join('\n');
}
