import { z } from 'zod';
import { BaseError } from './base-error.ts';

const modelFile = 'model.json';

const graphModelRefusal =
  "a graph model (tensorflowjs_converter --output_format tfjs_graph_model) can't be fine-tuned; convert with --output_format tfjs_layers_model";

/** One weight as a manifest lists it; dtype and quantization are checked against what they take in weights-manifest.ts. */
const weightSpec = z
  .object({
    name: z.string().min(1),
    shape: z.array(z.number().int().nonnegative()),
    dtype: z.string(),
    quantization: z
      .object({ dtype: z.string(), min: z.number().optional(), scale: z.number().optional() })
      .loose()
      .optional(),
  })
  .loose();

/** A group of weights stored one after another across its shards (`paths`), in order. */
const weightsGroup = z.object({ paths: z.array(z.string().min(1)).min(1), weights: z.array(weightSpec) }).loose();

/** model.json of a TF.js layers model, as tfjs-layers' save and tensorflowjs_converter write it. */
const layersModelJson = z
  .object({
    format: z.string().optional(),
    generatedBy: z.string().nullish(),
    convertedBy: z.string().nullish(),
    modelTopology: z.record(z.string(), z.unknown()),
    weightsManifest: z.array(weightsGroup),
  })
  .loose();
export type LayersModelJson = z.infer<typeof layersModelJson>;

export interface FoundModelJson {
  readonly json: LayersModelJson;
  /** The folder model.json is in, inside the archive ('' at its root): its shards' paths start there. */
  readonly folder: string;
}

/**
 * The archive's model.json, at its root or in a folder (a zipped converter output folder), read as
 * a layers model; a graph model, a second model.json or anything else is refused saying what it is.
 */
export function findModelJson(files: ReadonlyMap<string, Buffer>): FoundModelJson {
  const candidates = [...files.keys()].filter((path) => path === modelFile || path.endsWith(`/${modelFile}`));
  if (candidates.length === 0) {
    throw new BaseError(
      `the archive holds no ${modelFile}: upload the zip GET /jobs/:id/model gives, or the folder tensorflowjs_converter --output_format tfjs_layers_model wrote (${modelFile} and its .bin shards), zipped`,
    );
  }
  if (candidates.length > 1)
    throw new BaseError(
      `the archive holds ${candidates.length} ${modelFile} files (${candidates.join(', ')}); a base is one model`,
    );
  const path = candidates[0] as string;
  let parsed: unknown;
  try {
    parsed = JSON.parse((files.get(path) as Buffer).toString('utf8'));
  } catch (error) {
    throw new BaseError(`${path} is not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new BaseError(`${path} is not a TensorFlow.js model: it holds no object`);
  const record = parsed as Record<string, unknown>;
  const topology = record.modelTopology;
  const isGraph =
    record.format === 'graph-model' ||
    (typeof topology === 'object' && topology !== null && Array.isArray((topology as Record<string, unknown>).node));
  if (isGraph) throw new BaseError(graphModelRefusal);
  if (record.format !== undefined && record.format !== 'layers-model')
    throw new BaseError(
      `${path} is a model of format ${JSON.stringify(record.format)}, not a TensorFlow.js layers model`,
    );
  const checked = layersModelJson.safeParse(parsed);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`);
    throw new BaseError(`${path} is not a TensorFlow.js layers model (${problems.slice(0, 3).join('; ')})`);
  }
  return { json: checked.data, folder: path.slice(0, -modelFile.length).replace(/\/$/, '') };
}
