import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { imageKinds, type ImageKind } from '../contract/names.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { datasets } from '../datasets/index.ts';
import { removeFolder, replaceFolderAtomically } from '../storage/atomic-folder.ts';

/** What predict needs besides the network to turn an upload into the model's input and answer. */
export interface ArtifactMetadata {
  readonly jobId: string;
  readonly dataset: string;
  readonly shape: ImageShape;
  readonly classNames: readonly string[];
  /** The training images' kind, which tells predict how to prepare uploads. */
  readonly imageKind: ImageKind;
}

/** model.json as this module writes it; what is read back is checked against the same shape. */
const storedModel = z.object({
  format: z.literal('trainer-model/1'),
  metadata: z.object({
    jobId: z.string(),
    dataset: z.string(),
    shape: z.object({
      height: z.number().int().positive(),
      width: z.number().int().positive(),
      channels: z.number().int().positive(),
    }),
    classNames: z.array(z.string()).min(1),
    // Absent in models saved before data sets declared their kind: see kindOf.
    imageKind: z.enum(imageKinds).optional(),
  }),
  modelTopology: z.record(z.string(), z.unknown()),
  weightSpecs: z.array(
    z.object({ name: z.string(), shape: z.array(z.number().int().nonnegative()), dtype: z.string() }).loose(),
  ),
  weightsBytes: z.number().int().nonnegative(),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
type StoredModel = z.infer<typeof storedModel>;

export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
}

const modelFile = 'model.json';
const weightsFile = 'weights.bin';

function artifactDir(root: string, jobId: string): string {
  return path.join(root, jobId);
}

/** Deletes a job's model, if it has one, and any remains of a write that a crash cut short. */
export async function removeArtifact(root: string, jobId: string): Promise<void> {
  await removeFolder(root, jobId);
}

/** Writes the trained model into `root/<jobId>/` all at once, so predict never loads half a model. */
export async function saveArtifact(root: string, model: tfl.LayersModel, metadata: ArtifactMetadata): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
      const stored: StoredModel = {
        format: 'trainer-model/1',
        metadata: { ...metadata, classNames: [...metadata.classNames] },
        modelTopology: artifacts.modelTopology as StoredModel['modelTopology'],
        weightSpecs: (artifacts.weightSpecs ?? []) as StoredModel['weightSpecs'],
        weightsBytes: weights.byteLength,
        weightsSha256: createHash('sha256').update(weights).digest('hex'),
      };
      await replaceFolderAtomically(root, metadata.jobId, async (folder) => {
        await writeFile(path.join(folder, weightsFile), weights);
        await writeFile(path.join(folder, modelFile), JSON.stringify(stored));
      });
      return {
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength },
      };
    }),
  );
}

export interface LoadedArtifact {
  readonly model: tfl.LayersModel;
  readonly metadata: ArtifactMetadata;
}

/** A saved model's files, checked: its description as written and the weights it describes. */
export interface StoredArtifact {
  readonly metadata: ArtifactMetadata;
  /** The layers-format topology, as tfjs-layers' model.save gave it. */
  readonly modelTopology: Record<string, unknown>;
  readonly weightSpecs: tf.io.WeightsManifestEntry[];
  readonly weights: Buffer;
}

/** Reads a saved model's files, refusing them when missing, truncated or altered. */
export async function readArtifact(root: string, jobId: string): Promise<StoredArtifact> {
  const folder = artifactDir(root, jobId);
  const corrupt = (problem: string) =>
    new ArtifactError(`the model of job ${jobId} in ${folder} is corrupt: ${problem}`);
  let description: string;
  let weights: Buffer;
  try {
    description = await readFile(path.join(folder, modelFile), 'utf8');
    weights = await readFile(path.join(folder, weightsFile));
  } catch (error) {
    throw new ArtifactError(`the model of job ${jobId} can't be read from ${folder}: ${(error as Error).message}`);
  }
  let stored: StoredModel;
  try {
    stored = storedModel.parse(JSON.parse(description));
  } catch {
    throw corrupt(`${modelFile} is not a model description of this service`);
  }
  if (weights.byteLength !== stored.weightsBytes) {
    throw corrupt(`${weightsFile} has ${weights.byteLength} bytes, ${stored.weightsBytes} expected (truncated?)`);
  }
  if (createHash('sha256').update(weights).digest('hex') !== stored.weightsSha256) {
    throw corrupt(`${weightsFile} doesn't match its checksum`);
  }
  const metadata = { ...stored.metadata, imageKind: stored.metadata.imageKind ?? kindOf(stored.metadata.dataset) };
  return {
    metadata,
    modelTopology: stored.modelTopology,
    weightSpecs: stored.weightSpecs as tf.io.WeightsManifestEntry[],
    weights,
  };
}

/** What a saved model was trained on (its model.json's metadata), without reading its weights. */
export async function readArtifactMetadata(root: string, jobId: string): Promise<ArtifactMetadata> {
  const folder = artifactDir(root, jobId);
  try {
    const { metadata } = storedModel.parse(JSON.parse(await readFile(path.join(folder, modelFile), 'utf8')));
    return { ...metadata, imageKind: metadata.imageKind ?? kindOf(metadata.dataset) };
  } catch (error) {
    throw new ArtifactError(`the model of job ${jobId} can't be read from ${folder}: ${(error as Error).message}`);
  }
}

/** Loads a saved model, refusing one whose files are missing, truncated or altered. */
export async function loadArtifact(root: string, jobId: string): Promise<LoadedArtifact> {
  const { metadata, modelTopology, weightSpecs, weights } = await readArtifact(root, jobId);
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  try {
    const model = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology, weightSpecs, weightData }));
    return { model, metadata };
  } catch (error) {
    throw new ArtifactError(
      `the model of job ${jobId} in ${artifactDir(root, jobId)} is corrupt: ${(error as Error).message}`,
    );
  }
}

/** The kind of a model saved before artifacts recorded it: its built-in data set's, else natural. */
function kindOf(dataset: string): ImageKind {
  return Object.hasOwn(datasets, dataset) ? datasets[dataset as keyof typeof datasets].imageKind : 'natural';
}
