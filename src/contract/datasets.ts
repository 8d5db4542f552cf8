import { z } from 'zod';
import { imageKinds } from './names.ts';

/** Where a data set stands: uploaded and being turned into training bytes by a worker, ready to train on, or refused. */
export const datasetStates = ['processing', 'ready', 'failed'] as const;
const datasetState = z.enum(datasetStates);
export type DatasetState = z.infer<typeof datasetState>;

const colourChoices = ['grey', 'rgb'] as const;

/** The archive formats POST /datasets takes, by the media type a raw upload names. */
export const archiveMediaTypes = [
  'application/zip',
  'application/x-zip-compressed',
  'application/x-tar',
  'application/gzip',
  'application/x-gzip',
] as const;

/** An archive's file name without its archive extension (the data set's default name); '' when nothing is left. */
export function archiveBaseName(fileName: string): string {
  return fileName.replace(/\.(zip|tar|tar\.gz|tgz)$/i, '');
}

/**
 * POST /datasets options: query parameters with a raw archive, form fields with multipart (both
 * arrive as strings, hence the coercion). Every one optional.
 */
export const datasetUploadOptions = z.strictObject({
  name: z
    .string()
    .trim()
    .min(1)
    .max(100)
    .optional()
    .meta({ description: "what lists show; default: the archive's file name, else 'dataset'" }),
  imageSize: z.coerce.number().int().min(16).max(256).optional().meta({
    description:
      'the side, in pixels, every image is brought to (square); default: the most common size among the images',
  }),
  colour: z.enum(colourChoices).optional().meta({ description: 'default: grey when every image is grey, else rgb' }),
  testFraction: z.coerce.number().gt(0).max(0.9).default(0.2).meta({
    description: 'share of each class held out for testing when the archive has no test/ folder (stratified, seeded)',
  }),
  seed: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(0)
    .meta({ description: 'decides which images the test split holds out' }),
  imageKind: z.enum(imageKinds).optional().meta({
    description:
      'how images (and later uploads to predict) are brought to the size: natural (photographs: centred crop) or strokes (MNIST-like: ink centred in a box); default: guessed from the images, strokes when nearly all are mostly uniform paper with sparse ink (scans of digits or letters), else natural',
  }),
});
// No schema id: @fastify/swagger can't resolve a query string given as a reference.
export type DatasetUploadOptions = z.output<typeof datasetUploadOptions>;

const imageShape = z.object({ height: z.number().int(), width: z.number().int(), channels: z.number().int() });

export const skipReasons = [
  'notAnImage',
  'unreadable',
  'tooSmall',
  'tooLarge',
  'link',
  'hidden',
  'outsideClassFolder',
] as const;
export type SkipReason = (typeof skipReasons)[number];

const skippedFile = z
  .object({ path: z.string(), reason: z.enum(skipReasons), detail: z.string() })
  .meta({ id: 'SkippedFile' });
export type SkippedFile = z.infer<typeof skippedFile>;

const splitCounts = z.object({
  images: z.number().int(),
  perClass: z.array(z.number().int()).meta({ description: 'images of each class, in classNames order' }),
});

/** What processing found: the classes, the images per split, what was skipped and why, and what looks wrong. */
const datasetReport = z
  .object({
    classNames: z.array(z.string()).meta({ description: 'the class folder names, sorted: label i is classNames[i]' }),
    shape: imageShape,
    imageKind: z.enum(imageKinds),
    imageKindSource: z.enum(['given', 'guessed']).optional().meta({
      description:
        "given: the upload's imageKind option; guessed: from the images (absent for data sets processed before guessing)",
    }),
    splits: z.object({ train: splitCounts, test: splitCounts, val: splitCounts.nullable() }),
    testSplit: z
      .enum(['folder', 'heldOut'])
      .meta({ description: "folder: the archive's test/ folder; heldOut: testFraction of each class" }),
    skipped: z.object({
      count: z.number().int(),
      byReason: z.record(z.enum(skipReasons), z.number().int()),
      files: z.array(skippedFile).meta({ description: 'the first 100 skipped files' }),
    }),
    bytes: z.number().int().meta({ description: 'bytes the processed data set occupies on disk' }),
    warnings: z.array(z.string()),
  })
  .meta({ id: 'DatasetReport' });
export type DatasetReport = z.infer<typeof datasetReport>;

const datasetProgress = z
  .object({
    phase: z.enum(['queued', 'reading', 'converting', 'writing']),
    done: z.number().int(),
    total: z.number().int(),
  })
  .meta({ id: 'DatasetProgress' });
export type DatasetProgress = z.infer<typeof datasetProgress>;

const timestamp = z.iso.datetime();

export const uploadedDataset = z
  .object({
    id: z.string(),
    name: z.string(),
    state: datasetState,
    options: datasetUploadOptions.extend({
      testFraction: z.number(),
      seed: z.number().int(),
    }),
    archiveBytes: z.number().int(),
    progress: datasetProgress.nullable(),
    report: datasetReport.nullable().meta({ description: 'once ready' }),
    error: z.object({ message: z.string() }).nullable().meta({ description: 'why it failed' }),
    createdAt: timestamp,
    finishedAt: timestamp.nullable(),
  })
  .meta({ id: 'UploadedDataset' });
export type UploadedDataset = z.infer<typeof uploadedDataset>;

/** Any id is looked up (a built-in data set's name too): one that names no uploaded data set of the client's is a 404. */
export const datasetIdParams = z.strictObject({ id: z.string().min(1).max(100) });
