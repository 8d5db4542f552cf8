import { z } from 'zod';
import { builtInBaseNames, datasetNames, modelNames, type ModelName } from './names.ts';
import { webhookRequest } from './webhook.ts';

const oneOf = (what: string, names: readonly string[]) =>
  `${what} must be one of: ${names.join(', ')} (the ones this server implements)`;

const int = () => z.number().int();
const initFromError = `initFrom must be the id of a completed job or of an uploaded base (GET /bases), or a built-in base: ${builtInBaseNames.join(', ')} (GET /models)`;
const datasetError = `dataset must be one of: ${datasetNames.join(', ')} (the built-in ones), or the id of a data set you uploaded (POST /datasets)`;

/** What early stopping watches, after each epoch, on the validation images. */
export const earlyStoppingMetrics = ['validationLoss', 'validationAccuracy'] as const;

/**
 * Which layers a job trains: all of them; (fine-tuning) `top`, the network's last stage and its
 * classifier; `head`, only a new classifier on the base's features; `dense`, only the dense layers.
 */
const trainLayerChoices = ['all', 'top', 'head', 'dense'] as const;
export type TrainLayers = (typeof trainLayerChoices)[number];

/**
 * How the weights follow the gradient: `sgd`, the notebook's SGD with momentum and weight decay
 * added to the gradient (PyTorch's SGD); `adam` (Kingma & Ba, weight decay added to the gradient
 * as PyTorch's Adam does); `adamw` (Adam with the weight decay applied to the weights themselves,
 * Loshchilov & Hutter, as PyTorch's AdamW). Adam's betas and epsilon are PyTorch's and Keras's defaults.
 */
const optimizerNames = ['sgd', 'adam', 'adamw'] as const;
export type OptimizerName = (typeof optimizerNames)[number];

/** POST /jobs body. Field names, ranges and defaults are the public contract (API.md). */
export const jobRequest = z
  .strictObject({
    model: z
      .enum([...modelNames, 'auto'], { error: oneOf('model', [...modelNames, 'auto']) })
      .default('auto')
      .meta({
        description:
          "the network to train, or auto (the default): the server picks the network, its base, input size and recipe from the data set's size, image size and kind, and the job's autoChoice says what and why; settings the request gives win over auto's",
      }),
    // The same message from either branch: zod reports one of them when neither matches.
    dataset: z
      .union([z.enum(datasetNames, { error: datasetError }), z.uuid({ error: datasetError })], { error: datasetError })
      .meta({
        description: `a built-in data set (${datasetNames.join(', ')}) or the id of one you uploaded and that is ready`,
      }),
    initFrom: z
      .union([z.enum(builtInBaseNames, { error: initFromError }), z.uuid({ error: initFromError })], {
        error: initFromError,
      })
      .nullable()
      .optional()
      .meta({
        description: `fine-tuning: start from the weights this completed job trained (same model and image shape; when the class count differs, the last layer starts afresh), or from a pretrained base (GET /models lists each network's: ${builtInBaseNames.join(', ')}); default none, or auto's choice`,
      }),
    trainLayers: z
      .enum(trainLayerChoices, { error: `trainLayers must be one of: ${trainLayerChoices.join(', ')}` })
      .optional()
      .meta({
        description:
          "all (the default): train every layer; top: keep initFrom's layers up to the network's last stage as they are and train the rest (MobileNetV2: blocks 11-16 onwards; ResNet-20: its last stage; LeNet-5 and AlexNet: the dense layers); head: only a new classifier on the globally pooled output of the base (a linear probe); dense: only the dense (fully connected) layers. Frozen BatchNorm layers normalise with their moving statistics and keep them",
      }),
    inputSize: int().min(32).max(224).nullable().optional().meta({
      description:
        "mobilenetv2 only: resize images to inputSize × inputSize inside the network (bilinear), for a pretrained base that sees more at a larger size; default the data set's own size, or auto's choice",
    }),
    validationSplit: z
      .union([z.number().gt(0).max(0.5), z.literal('dataset')], {
        error: "validationSplit must be a fraction in (0, 0.5] or 'dataset'",
      })
      .nullable()
      .default(null)
      .meta({
        description:
          "hold out this fraction of the training images (after trainLimit; stratified by class, chosen by the seed) to validate on after every epoch, or 'dataset': the data set's own validation split (an upload's val/ folder); default none",
      }),
    earlyStopping: z
      .strictObject({
        metric: z.enum(earlyStoppingMetrics).default('validationLoss'),
        patience: int()
          .min(1)
          .max(1000)
          .default(3)
          .meta({ description: 'epochs without an improvement of more than minDelta before training stops' }),
        minDelta: z.number().min(0).default(0),
        restoreBest: z
          .boolean()
          .default(true)
          .meta({ description: "end with the best epoch's weights, and report that epoch" }),
      })
      .nullable()
      .default(null)
      .meta({ description: 'stop when the validation metric stops improving (needs validationSplit); default none' }),
    learningRateSchedule: z
      .discriminatedUnion('type', [
        z.strictObject({
          type: z.literal('step'),
          stepEpochs: int()
            .min(1)
            .meta({ description: "multiply the learning rate by factor every stepEpochs epochs (PyTorch's StepLR)" }),
          factor: z.number().gt(0).max(1).default(0.1),
        }),
        z.strictObject({
          type: z.literal('cosine'),
          warmupEpochs: int()
            .min(0)
            .default(0)
            .meta({ description: 'epochs of linear warm-up from learningRate / (warmupEpochs + 1)' }),
          minLearningRate: z.number().min(0).default(0).meta({
            description: "the learning rate the cosine reaches in the last epoch (PyTorch's CosineAnnealingLR eta_min)",
          }),
        }),
      ])
      .nullable()
      .optional()
      .meta({
        description:
          'the learning rate of each epoch; null: learningRate throughout; default: cosine without warm-up for resnet20, else null',
      }),
    epochs: int().min(1).max(1000).optional().meta({ description: "default 10, or auto's choice" }),
    batchSize: int().min(1).max(4096).optional().meta({ description: 'default 128 for resnet20, else 64' }),
    optimizer: z
      .enum(optimizerNames, { error: oneOf('optimizer', optimizerNames) })
      .optional()
      .meta({
        description:
          "default sgd, or auto's choice. sgd: SGD with momentum (PyTorch's SGD); adam: Adam (beta1 0.9, beta2 0.999, epsilon 1e-8); adamw: Adam with decoupled weight decay (PyTorch's AdamW)",
      }),
    learningRate: z.number().gt(0).max(10).optional().meta({
      description: 'the (peak) learning rate; default 0.001 for adam and adamw, for sgd 0.1 for resnet20, else 0.01',
    }),
    momentum: z
      .number()
      .min(0)
      .lt(1)
      .default(0.9)
      .meta({ description: "sgd's momentum; adam and adamw ignore it (their beta1 is 0.9)" }),
    weightDecay: z.number().min(0).max(1).optional().meta({
      description:
        'sgd and adam: L2 weight decay added to the gradient (as PyTorch SGD and Adam); adamw: decoupled, the weights shrink by learningRate × weightDecay each step; default 0.01 for adamw, else defaultWeightDecay of the model in GET /models',
    }),
    labelSmoothing: z.number().min(0).max(0.5).optional().meta({
      description:
        "the training loss's targets become (1 − labelSmoothing) × one-hot + labelSmoothing / classes (PyTorch's CrossEntropyLoss(label_smoothing)); 0, the default with a named model, is plain cross-entropy. The test and validation losses stay plain cross-entropy",
    }),
    augment: z.boolean().optional().meta({
      description:
        'random 4-pixel-padded crop (a shift of up to 4 pixels) of training images, with a horizontal flip half the time for natural images only (a mirrored digit or letter is another glyph, so strokes data sets are never flipped); default true for cifar10, else false',
    }),
    seed: int()
      .min(Number.MIN_SAFE_INTEGER)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .meta({ description: 'makes shuffling, augmentation and initialisation repeatable; default random' }),
    trainLimit: int()
      .min(1)
      .optional()
      .meta({ description: 'train on the first N training images only; default the whole set' }),
    testLimit: int()
      .min(1)
      .optional()
      .meta({ description: 'evaluate on the first N test images only; default the whole set' }),
    logEvery: int().min(1).default(100),
    timeoutSeconds: int().min(1).optional().meta({
      description:
        "the job fails when it has trained (and evaluated) this many seconds, counted over every worker that ran it; default and upper bound: the server's MAX_JOB_SECONDS",
    }),
    webhook: webhookRequest.optional().meta({
      description:
        'POST the job (as GET /jobs/:id shows it) to this URL when it ends, signed with the secret: see docs/guides/webhooks.md',
    }),
  })
  .meta({ id: 'JobRequest' });

export type JobRequestInput = z.input<typeof jobRequest>;
export type ParsedJobRequest = z.output<typeof jobRequest>;

/** What a job trains with: the request less its webhook, which is kept apart from the settings because of its secret. */
export type TrainingRequest = Omit<ParsedJobRequest, 'webhook'>;

/** A request with every default filled in: what the worker trains and what GET /jobs/:id shows. */
export interface JobSettings extends Required<Omit<TrainingRequest, 'model' | 'initFrom' | 'inputSize'>> {
  readonly model: ModelName;
  /** A completed job's id, a built-in base's name, or null. */
  readonly initFrom: string | null;
  readonly inputSize: number | null;
  /** What `model: auto` picked and why; null when the request named its model. */
  readonly autoChoice: AutoChoice | null;
  /** A built-in data set's name or an uploaded data set's id. */
  readonly dataset: string;
}

const autoChoice = z
  .object({
    reasons: z.array(z.string()).meta({ description: 'one line per choice auto made, saying what and why' }),
  })
  .meta({ id: 'AutoChoice' });
export type AutoChoice = z.infer<typeof autoChoice>;

export const jobSettings = z
  .object({
    model: z.enum(modelNames),
    dataset: z.string().meta({ description: 'a built-in data set name or an uploaded data set id' }),
    initFrom: z.string().nullable(),
    trainLayers: z.enum(trainLayerChoices),
    inputSize: z.number().int().nullable(),
    autoChoice: autoChoice
      .nullable()
      .meta({ description: 'what model: auto picked and why; null when the request named its model' }),
    validationSplit: z.union([z.number(), z.literal('dataset')]).nullable(),
    earlyStopping: z
      .object({
        metric: z.enum(earlyStoppingMetrics),
        patience: z.number().int(),
        minDelta: z.number(),
        restoreBest: z.boolean(),
      })
      .nullable(),
    learningRateSchedule: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('step'), stepEpochs: z.number().int(), factor: z.number() }),
        z.object({ type: z.literal('cosine'), warmupEpochs: z.number().int(), minLearningRate: z.number() }),
      ])
      .nullable(),
    epochs: z.number().int(),
    batchSize: z.number().int(),
    optimizer: z.enum(optimizerNames),
    learningRate: z.number(),
    momentum: z.number(),
    weightDecay: z.number(),
    labelSmoothing: z.number(),
    augment: z.boolean(),
    seed: z.number().int(),
    trainLimit: z.number().int(),
    testLimit: z.number().int(),
    logEvery: z.number().int(),
    timeoutSeconds: z.number().int(),
  })
  .meta({ id: 'JobSettings' }) satisfies z.ZodType<JobSettings>;
