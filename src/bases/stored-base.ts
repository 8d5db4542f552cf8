import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { modelNames } from '../contract/names.ts';
import { removeFolder, replaceFolderAtomically } from '../storage/atomic-folder.ts';
import { weightsFile, type CheckedBase } from './check-base.ts';

/**
 * An uploaded base on disk, `BASES_DIR/<id>/`: `model.json` (a TF.js layers model whose one
 * weights file is `weights.bin`, loadable by stock tfjs as it is) and `base.json`, this
 * description. Written all at once (replaceFolderAtomically), so a folder that exists is whole.
 */
const storedBase = z.object({
  format: z.literal('trainer-base/1'),
  id: z.string(),
  name: z.string(),
  /** The uploading client ('' without API keys); Redis's record is what ownership is checked by. */
  owner: z.string(),
  network: z.enum(modelNames),
  input: z.object({
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    channels: z.union([z.literal(1), z.literal(3)]),
  }),
  classes: z.number().int().positive().nullable(),
  /** What model.json and weights.bin occupy: what counts against the storage limits. */
  bytes: z.number().int().nonnegative(),
  createdAt: z.iso.datetime(),
  /** The network's layers the base gives weights for (layer-keys.ts names them), with their weights' shapes. */
  coveredLayers: z.array(
    z.object({ name: z.string(), className: z.string(), shapes: z.array(z.array(z.number().int().nonnegative())) }),
  ),
  weightsBytes: z.number().int().nonnegative(),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type BaseDescription = z.infer<typeof storedBase>;

const descriptionFile = 'base.json';
const modelFile = 'model.json';

export class StoredBaseError extends Error {
  override readonly name = 'StoredBaseError';
}

function baseFolder(root: string, id: string): string {
  return path.join(root, id);
}

/** Writes a checked base to `root/<id>/` all at once; answers its description, as base.json holds it. */
export async function storeBase(
  root: string,
  { id, name, owner, createdAt }: { id: string; name: string; owner: string; createdAt: Date },
  { modelJson, weights, input, match }: CheckedBase,
): Promise<BaseDescription> {
  const model = Buffer.from(JSON.stringify(modelJson));
  const description: BaseDescription = {
    format: 'trainer-base/1',
    id,
    name,
    owner,
    network: match.network,
    input: { ...input, channels: input.channels === 1 ? 1 : 3 },
    classes: match.classes,
    bytes: model.byteLength + weights.byteLength,
    createdAt: createdAt.toISOString(),
    coveredLayers: match.coveredLayers.map(({ key, className, shapes }) => ({
      name: key,
      className,
      shapes: shapes.map((shape) => [...shape]),
    })),
    weightsBytes: weights.byteLength,
    weightsSha256: createHash('sha256').update(weights).digest('hex'),
  };
  await replaceFolderAtomically(root, id, async (folder) => {
    await writeFile(path.join(folder, weightsFile), weights);
    await writeFile(path.join(folder, modelFile), model);
    await writeFile(path.join(folder, descriptionFile), JSON.stringify(description));
  });
  return description;
}

/** Deletes a base's folder and whatever a cut-short write of it left. */
export async function removeStoredBase(root: string, id: string): Promise<void> {
  await removeFolder(root, id);
}

/**
 * What a stored base is (base.json), without its weights: what the API needs to tell whether it
 * fits a job (apply-base.ts's baseMismatch). Refused (StoredBaseError) when it can't be read.
 */
export async function readBaseDescription(root: string, id: string): Promise<BaseDescription> {
  const folder = baseFolder(root, id);
  try {
    return storedBase.parse(JSON.parse(await readFile(path.join(folder, descriptionFile), 'utf8')));
  } catch (error) {
    throw new StoredBaseError(
      `the base ${id} in ${folder} can't be used: its description can't be read (${(error as Error).message}); it may have been deleted: upload it again`,
    );
  }
}

export interface LoadedBase {
  readonly description: BaseDescription;
  readonly model: tfl.LayersModel;
}

/**
 * A stored base, loaded to start a network from (apply-base.ts): refused (StoredBaseError) when its
 * files are missing, truncated or altered since they were checked. The caller disposes the model.
 */
export async function loadBase(root: string, id: string): Promise<LoadedBase> {
  const folder = baseFolder(root, id);
  const damaged = (problem: string) => new StoredBaseError(`the base ${id} in ${folder} can't be used: ${problem}`);
  const description = await readBaseDescription(root, id);
  let modelJson: tf.io.ModelJSON;
  let weights: Buffer;
  try {
    modelJson = JSON.parse(await readFile(path.join(folder, modelFile), 'utf8')) as tf.io.ModelJSON;
    weights = await readFile(path.join(folder, weightsFile));
  } catch (error) {
    throw damaged(`its files can't be read (${(error as Error).message}); upload it again`);
  }
  if (weights.byteLength !== description.weightsBytes)
    throw damaged(
      `${weightsFile} has ${weights.byteLength} bytes, ${description.weightsBytes} expected; upload it again`,
    );
  if (createHash('sha256').update(weights).digest('hex') !== description.weightsSha256)
    throw damaged(`${weightsFile} doesn't match its checksum; upload it again`);
  // readFile gives a large file a buffer of its own: taken as it is, not copied.
  const whole = weights.byteOffset === 0 && weights.byteLength === weights.buffer.byteLength;
  const weightData = (
    whole ? weights.buffer : weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength)
  ) as ArrayBuffer;
  try {
    const model = await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: modelJson.modelTopology,
        weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
        weightData,
      }),
      { strict: true },
    );
    return { description, model };
  } catch (error) {
    throw damaged(`TensorFlow.js can't load it (${(error as Error).message}); upload it again`);
  }
}
