import { z } from 'zod';
import { jobListQuery, jobProgress, jobResult, jobState, jobStates, type JobState } from './job.ts';
import { jobRequest } from './job-request.ts';
import { jobWebhook, webhookRequest } from './webhook.ts';

/**
 * The job request fields a grid may vary: every one but `logEvery` (how often the loss is logged,
 * which changes no outcome) and `timeoutSeconds` (a limit on the run, not a setting of it).
 */
const gridFields = [
  'model',
  'dataset',
  'initFrom',
  'trainLayers',
  'epochs',
  'batchSize',
  'optimizer',
  'learningRate',
  'momentum',
  'weightDecay',
  'augment',
  'seed',
  'trainLimit',
  'testLimit',
] as const satisfies readonly (keyof z.input<typeof jobRequest>)[];

const experimentMetrics = ['testAccuracy', 'testLoss'] as const;
export type ExperimentMetric = (typeof experimentMetrics)[number];

const gridValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export type GridValue = z.infer<typeof gridValue>;

/**
 * Asynchronous successive halving (ASHA, as Ray Tune's scheduler stops trials): at the rungs
 * minEpochs, minEpochs × reductionFactor, … a run goes on only while its score after that
 * epoch (training/successive-halving.ts rungScore) is among the best 1/reductionFactor of the runs
 * that have reached the rung so far.
 */
const earlyTermination = z
  .strictObject({
    type: z.literal('successiveHalving'),
    reductionFactor: z.number().int().min(2).max(10).default(3),
    minEpochs: z
      .number()
      .int()
      .min(1)
      .default(1)
      .meta({ description: 'the first rung: epochs every run trains before it can be stopped' }),
  })
  .meta({
    id: 'EarlyTermination',
    description:
      "stop weak runs early: at each rung a run below the best 1/reductionFactor of those that reached it (by the experiment's metric: accuracy, or loss, lower better; on the validation images when the runs validate, else on the test images) ends there, completed, with that epoch's result",
  });
export type EarlyTermination = z.infer<typeof earlyTermination>;

/** POST /experiments body. */
export const experimentRequest = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional().meta({ description: 'a name to know it by; default none' }),
    base: jobRequest.partial().default({}).meta({
      description:
        "the job request every run starts from (any POST /jobs field, its defaults filled in); a field the grid varies takes the grid's values instead",
    }),
    grid: z
      .partialRecord(
        z.enum(gridFields),
        z.array(gridValue).min(1, { error: 'give each field of the grid at least one value' }),
      )
      .refine((grid) => Object.keys(grid).length > 0, { error: 'the grid varies at least one field' })
      .meta({
        description:
          'field → the values it takes; every combination is one run, in the order of a nested loop over the fields as given (the last field varies fastest). logEvery and timeoutSeconds are not varied: set them in base',
      }),
    metric: z
      .enum(experimentMetrics, { error: `metric must be one of: ${experimentMetrics.join(', ')}` })
      .default('testAccuracy')
      .meta({ description: 'what makes a run best: the highest testAccuracy or the lowest testLoss' }),
    earlyTermination: earlyTermination.nullable().default(null),
    webhook: webhookRequest.optional().meta({
      description:
        "called once when every run has ended (completed, failed or cancelled): the experiment is POSTed as GET /experiments/:id shows it, signed as a job's webhook is (docs/guides/webhooks.md). A webhook in base is each run's own",
    }),
  })
  .meta({ id: 'ExperimentRequest' });
export type ExperimentRequestInput = z.input<typeof experimentRequest>;
export type ExperimentRequest = z.output<typeof experimentRequest>;

const experimentRun = z
  .object({
    id: z.string().meta({ description: "the run's job: GET /jobs/:id has its logs and epochs" }),
    values: z.record(z.string(), gridValue).meta({ description: 'the values the grid gave this run' }),
    state: jobState,
    progress: jobProgress,
    result: jobResult.nullable().meta({ description: "the job's result; null until it completed" }),
  })
  .meta({ id: 'ExperimentRun' });
export type ExperimentRun = z.infer<typeof experimentRun>;

const stateCounts = z.object(
  Object.fromEntries(jobStates.map((state) => [state, z.number().int()])) as Record<JobState, z.ZodNumber>,
);

export const experiment = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    base: z.record(z.string(), z.unknown()).meta({ description: 'the base request, its defaults filled in' }),
    grid: z.record(z.string(), z.array(gridValue)),
    metric: z.enum(experimentMetrics),
    earlyTermination: earlyTermination.nullable(),
    createdAt: z.iso.datetime(),
    runs: z.array(experimentRun).meta({ description: 'one per combination, in the grid order' }),
    counts: stateCounts.meta({ description: 'runs in each state' }),
    ended: z.boolean().meta({ description: 'every run has ended (completed, failed or cancelled)' }),
    best: experimentRun
      .nullable()
      .meta({ description: 'the completed run best by the metric; null while none has completed' }),
    webhook: jobWebhook
      .optional()
      .meta({ description: 'the webhook the experiment was created with, and its deliveries (absent without one)' }),
  })
  .meta({ id: 'Experiment' });
export type Experiment = z.infer<typeof experiment>;

/** An experiment as GET /experiments lists it: all but its runs (the best one stays). */
const experimentSummary = experiment.omit({ runs: true }).meta({ id: 'ExperimentSummary' });
export type ExperimentSummary = z.infer<typeof experimentSummary>;

export const experimentList = z
  .object({
    experiments: z.array(experimentSummary),
    next: z.string().nullable().meta({ description: 'cursor for the next page; null on the last page' }),
  })
  .meta({ id: 'ExperimentList' });
export type ExperimentList = z.infer<typeof experimentList>;

/** Paged as GET /jobs is, without its state filter. */
export const experimentListQuery = jobListQuery.omit({ state: true });
