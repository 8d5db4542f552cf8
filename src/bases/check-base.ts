import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { archiveFormatOfFile } from '../archives/archive.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { BaseError } from './base-error.ts';
import { checkLayerClasses } from './layer-classes.ts';
import { weightLayers } from './layer-keys.ts';
import { findModelJson } from './model-json.ts';
import { matchNetwork, type LayerShapes, type NetworkMatch } from './network-match.ts';
import { readBaseArchive, type BaseArchiveLimits } from './read-base-archive.ts';
import { collectWeights } from './weights-manifest.ts';

/** The smallest image side a base may take: the data sets' smallest image. */
const minimumSide = 8;

/** An uploaded base that passed every check: its model as it will be stored, and what it is. */
export interface CheckedBase {
  /** model.json with every group's weights in one manifest group, `weights.bin`. */
  readonly modelJson: tf.io.ModelJSON;
  readonly weights: Uint8Array<ArrayBuffer>;
  readonly input: ImageShape;
  readonly match: NetworkMatch;
}

/** The one file a stored base's weights are in, as its model.json names it. */
export const weightsFile = 'weights.bin';

/**
 * Checks an uploaded archive as a base, in the order a user fixes things: the archive (data set
 * limits, paths, size), model.json (a layers model, layer classes tfjs can build), its weights
 * against its manifest, that tfjs-layers loads it, its input (one image, [null, h, w, 1 or 3],
 * sides of 8 or more) and the network it matches. Throws BaseError (or the archive code's
 * ArchiveError) with the reason; holds the model in memory meanwhile.
 */
export async function checkBaseArchive(file: string, limits: BaseArchiveLimits): Promise<CheckedBase> {
  const format = await archiveFormatOfFile(file);
  if (format === null) throw new BaseError('the upload is not a zip (or tar, tar.gz) archive', 415);
  const files = await readBaseArchive(file, format, limits);
  const { json, folder } = findModelJson(files);
  checkLayerClasses(json.modelTopology);
  const { weightSpecs, weights } = collectWeights(json, folder, files);
  files.clear();

  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData: weights.buffer }),
      { strict: true },
    );
  } catch (error) {
    throw new BaseError(`TensorFlow.js can't load the model: ${(error as Error).message}`);
  }
  let input: ImageShape;
  let layers: LayerShapes[];
  try {
    input = imageInputOf(model);
    layers = weightLayers(model).map(({ key, className, shapes }) => ({ key, className, shapes }));
  } finally {
    // Before the networks are built to match it: the two needn't be in memory together.
    model.dispose();
  }
  const modelJson: tf.io.ModelJSON = {
    format: 'layers-model',
    generatedBy: json.generatedBy ?? '',
    convertedBy: json.convertedBy ?? null,
    modelTopology: json.modelTopology,
    weightsManifest: [{ paths: [weightsFile], weights: weightSpecs }],
  };
  return { modelJson, weights, input, match: matchNetwork(layers, input) };
}

/** The model's one image input, [null, height, width, channels]; anything else is refused saying what it is. */
function imageInputOf(model: tfl.LayersModel): ImageShape {
  if (model.inputs.length !== 1)
    throw new BaseError(`the model has ${model.inputs.length} inputs; a base has one, an image`);
  const shape = (model.inputs[0] as tfl.SymbolicTensor).shape;
  const [, height, width, channels] = shape;
  const described = `[${shape.map((side) => side ?? 'null').join(', ')}]`;
  if (shape.length !== 4 || typeof height !== 'number' || typeof width !== 'number' || typeof channels !== 'number')
    throw new BaseError(
      `the model's input is ${described}; a base takes one image, [null, height, width, channels] with its sides given`,
    );
  if (channels !== 1 && channels !== 3)
    throw new BaseError(
      `the model's input is ${described}: ${channels} channels; a base takes grey (1) or RGB (3) images`,
    );
  if (Math.min(height, width) < minimumSide)
    throw new BaseError(
      `the model's input is ${described}; a base takes images of at least ${minimumSide} pixels a side`,
    );
  return { height, width, channels };
}
