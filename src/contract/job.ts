import { z } from 'zod';
import { deviceDescription } from './device.ts';
import { earlyStoppingMetrics, jobSettings } from './job-request.ts';
import { jobWebhook } from './webhook.ts';

export const jobStates = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export const jobState = z.enum(jobStates);
export type JobState = z.infer<typeof jobState>;
/** The states a job ends in: it never leaves one, and its event stream ends with it. */
export const finalJobState = z.enum(['completed', 'failed', 'cancelled'] as const satisfies readonly JobState[]);
export type FinalJobState = z.infer<typeof finalJobState>;
/** finalJobState's values, typed to be searched with any state. */
export const finalStates: readonly JobState[] = finalJobState.options;

export const jobProgress = z
  .object({
    epoch: z.number().int().meta({ description: 'the epoch being trained (1-based); 0 before training starts' }),
    epochs: z.number().int(),
    batch: z.number().int().meta({ description: 'batches done in the current epoch' }),
    batchesPerEpoch: z.number().int(),
    fraction: z.number().min(0).max(1),
  })
  .meta({ id: 'JobProgress' });
export type JobProgress = z.infer<typeof jobProgress>;

export const lossLogLine = z
  .object({
    epoch: z.number().int(),
    batch: z.number().int(),
    loss: z.number().meta({ description: 'mean training loss over the last logEvery batches' }),
  })
  .meta({ id: 'LossLogLine' });
export type LossLogLine = z.infer<typeof lossLogLine>;

export const epochSummary = z
  .object({
    epoch: z.number().int(),
    loss: z.number().meta({ description: 'mean training loss over the epoch' }),
    testAccuracy: z.number().min(0).max(1),
    testLoss: z.number().optional().meta({
      description:
        'mean cross-entropy on the test images after the epoch (absent for jobs trained before it was recorded)',
    }),
    seconds: z.number(),
    imagesPerSecond: z.number(),
    learningRate: z.number().optional().meta({
      description:
        "the epoch's learning rate, by the job's learningRateSchedule (absent for jobs trained before schedules existed)",
    }),
    validationLoss: z
      .number()
      .optional()
      .meta({ description: 'mean cross-entropy on the validation images after the epoch (with validationSplit)' }),
    validationAccuracy: z.number().min(0).max(1).optional(),
  })
  .meta({ id: 'EpochSummary' });
export type EpochSummary = z.infer<typeof epochSummary>;

const zeroDivision =
  'a ratio whose denominator is 0 is 0, as scikit-learn computes it with zero_division=0 (so the precision of a class never predicted is 0)';

const classMetrics = z
  .object({
    className: z.string(),
    precision: z
      .number()
      .min(0)
      .max(1)
      .meta({ description: 'of the test images predicted as this class, the fraction that are' }),
    recall: z
      .number()
      .min(0)
      .max(1)
      .meta({ description: 'of the test images of this class, the fraction predicted as it (its per-class accuracy)' }),
    f1: z.number().min(0).max(1).meta({ description: 'the harmonic mean of precision and recall' }),
    support: z.number().int().min(0).meta({ description: 'test images of this class' }),
  })
  .meta({ id: 'ClassMetrics', description: `one class's metrics from the confusion matrix; ${zeroDivision}` });
export type ClassMetrics = z.infer<typeof classMetrics>;

const macroMetrics = z
  .object({
    precision: z.number().min(0).max(1),
    recall: z.number().min(0).max(1),
    f1: z
      .number()
      .min(0)
      .max(1)
      .meta({ description: 'the mean of the per-class F1 scores (not the F1 of the mean precision and recall)' }),
  })
  .meta({
    id: 'MacroMetrics',
    description: `unweighted means of the per-class metrics over the classes that occur in the test images or the predictions, as scikit-learn's average="macro" takes them; ${zeroDivision}`,
  });
export type MacroMetrics = z.infer<typeof macroMetrics>;

export const jobResult = z
  .object({
    testAccuracy: z.number().min(0).max(1),
    testLoss: z.number(),
    correct: z.number().int(),
    total: z.number().int(),
    perClassAccuracy: z.array(z.number().min(0).max(1)),
    confusionMatrix: z.array(z.array(z.number().int())).meta({ description: 'rows: true class, columns: predicted' }),
    classNames: z.array(z.string()),
    perClass: z.array(classMetrics).optional().meta({
      description:
        'precision, recall, F1 and support of each class, in the order of classNames (absent for jobs trained before they were recorded)',
    }),
    macro: macroMetrics
      .optional()
      .meta({ description: 'the macro averages of perClass (absent for jobs trained before they were recorded)' }),
    params: z.number().int(),
    trainSeconds: z.number(),
    backend: z
      .string()
      .meta({ description: 'the TensorFlow.js backend that trained the model: tensorflow, webgpu, wasm or cpu' }),
    device: deviceDescription.optional().meta({
      description:
        'what that backend computed on: the GPU adapter, or the CPU (absent for jobs trained before it was recorded)',
    }),
    earlyStopping: z
      .object({
        metric: z.enum(earlyStoppingMetrics),
        bestEpoch: z.number().int(),
        bestValue: z.number().nullable(),
        stoppedAfterEpoch: z
          .number()
          .int()
          .nullable()
          .meta({ description: 'the epoch after which training stopped; null: it trained every epoch' }),
        keptEpoch: z.number().int().meta({
          description:
            "the epoch whose weights the model ends with (the best one with restoreBest); the test figures are that epoch's",
        }),
      })
      .optional()
      .meta({ description: 'with earlyStopping: where it left the job' }),
    terminatedAfterEpoch: z.number().int().optional().meta({
      description:
        "the epoch after which its experiment's successive halving ended this run, below the best at that rung; absent when it trained every epoch",
    }),
    replicas: z.number().int().positive().optional().meta({
      description:
        'data-parallel replicas (threads) that trained it together: 1 unless TRAIN_THREADS gave the worker more and its backend runs in worker threads (absent for jobs trained before it was recorded)',
    }),
  })
  .meta({ id: 'JobResult' });
export type JobResult = z.infer<typeof jobResult>;

export const jobError = z.object({ message: z.string() }).meta({ id: 'JobError' });

const timestamp = z.iso.datetime();

export const job = z
  .object({
    id: z.string(),
    state: jobState,
    request: jobSettings,
    progress: jobProgress,
    logs: z.array(lossLogLine),
    epochs: z.array(epochSummary),
    result: jobResult.nullable(),
    error: jobError.nullable(),
    createdAt: timestamp,
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
    experimentId: z.string().optional().meta({
      description: 'the experiment this job is a run of (GET /experiments/:id); absent for a job submitted on its own',
    }),
    webhook: jobWebhook
      .optional()
      .meta({ description: 'the webhook the job was submitted with, and its deliveries (absent without one)' }),
  })
  .meta({ id: 'Job' });
export type Job = z.infer<typeof job>;

/** A job as GET /jobs lists it: everything but the logs and per-epoch history, which can be long. */
const jobSummary = job.omit({ logs: true, epochs: true }).meta({ id: 'JobSummary' });
export type JobSummary = z.infer<typeof jobSummary>;

export const jobList = z
  .object({
    jobs: z.array(jobSummary),
    next: z.string().nullable().meta({ description: 'cursor for the next page; null on the last page' }),
  })
  .meta({ id: 'JobList' });
export type JobList = z.infer<typeof jobList>;

export const jobListQuery = z.strictObject({
  state: jobState.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().regex(/^\d+$/, { error: 'must be a cursor returned as next by an earlier page' }).optional(),
});

export const jobIdParams = z.strictObject({ id: z.string().min(1).max(100) });
