import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ImageShape } from '../datasets/dataset.ts';

/** What predict needs besides the network to turn an upload into the model's input and answer. */
export interface ArtifactMetadata {
  readonly jobId: string;
  readonly dataset: string;
  readonly shape: ImageShape;
  readonly classNames: readonly string[];
}

interface StoredModel {
  readonly format: 'trainer-model/1';
  readonly metadata: ArtifactMetadata;
  readonly modelTopology: tf.io.ModelArtifacts['modelTopology'];
  readonly weightSpecs: tf.io.WeightsManifestEntry[];
  readonly weightsBytes: number;
  readonly weightsSha256: string;
}

export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
}

const modelFile = 'model.json';
const weightsFile = 'weights.bin';

function artifactDir(root: string, jobId: string): string {
  return path.join(root, jobId);
}

/**
 * Writes the trained model into `root/<jobId>/` all at once: files go to a temporary folder that
 * is renamed into place, so a crash mid-write never leaves a half model that predict would load.
 */
export async function saveArtifact(root: string, model: tfl.LayersModel, metadata: ArtifactMetadata): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
      const stored: StoredModel = {
        format: 'trainer-model/1',
        metadata,
        modelTopology: artifacts.modelTopology,
        weightSpecs: artifacts.weightSpecs ?? [],
        weightsBytes: weights.byteLength,
        weightsSha256: createHash('sha256').update(weights).digest('hex'),
      };
      await mkdir(root, { recursive: true });
      const temporary = path.join(root, `.${metadata.jobId}.${randomUUID()}.tmp`);
      const final = artifactDir(root, metadata.jobId);
      try {
        await mkdir(temporary);
        await writeFile(path.join(temporary, weightsFile), weights);
        await writeFile(path.join(temporary, modelFile), JSON.stringify(stored));
        await rm(final, { recursive: true, force: true });
        await rename(temporary, final);
      } catch (error) {
        await rm(temporary, { recursive: true, force: true });
        throw error;
      }
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
}

export interface LoadedArtifact {
  readonly model: tfl.LayersModel;
  readonly metadata: ArtifactMetadata;
}

/** Loads a saved model, refusing one whose files are missing, truncated or altered. */
export async function loadArtifact(root: string, jobId: string): Promise<LoadedArtifact> {
  const folder = artifactDir(root, jobId);
  let stored: StoredModel;
  let weights: Buffer;
  try {
    stored = JSON.parse(await readFile(path.join(folder, modelFile), 'utf8')) as StoredModel;
    weights = await readFile(path.join(folder, weightsFile));
  } catch (error) {
    throw new ArtifactError(`the model of job ${jobId} can't be read from ${folder}: ${(error as Error).message}`);
  }
  if (stored.format !== 'trainer-model/1' || weights.byteLength !== stored.weightsBytes) {
    throw new ArtifactError(`the model of job ${jobId} in ${folder} is truncated or not in this service's format`);
  }
  if (createHash('sha256').update(weights).digest('hex') !== stored.weightsSha256) {
    throw new ArtifactError(`the weights of job ${jobId} in ${folder} don't match their checksum: the file is corrupt`);
  }
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: stored.modelTopology, weightSpecs: stored.weightSpecs, weightData }),
  );
  return { model, metadata: stored.metadata };
}
