/**
 * TF.js layers models as a user brings them as bases: saved through tfjs-layers' own save handler,
 * then zipped as GET /jobs/:id/model gives them or as tensorflowjs_converter lays them out.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ZipEntry } from '../../src/storage/zip.ts';
import { zipOf } from './archives.ts';

export interface SavedModel {
  readonly modelTopology: Record<string, unknown>;
  readonly weightSpecs: tf.io.WeightsManifestEntry[];
  readonly weights: Buffer;
}

/** What tfjs-layers' model.save writes: the topology, the manifest's weights and their bytes. */
export async function savedModel(model: tfl.LayersModel): Promise<SavedModel> {
  let saved: SavedModel | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = {
        modelTopology: artifacts.modelTopology as Record<string, unknown>,
        weightSpecs: artifacts.weightSpecs ?? [],
        weights: Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0))),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!saved) throw new Error('the model was not saved');
  return saved;
}

/** model.json naming `paths` as its one weights group. */
export function modelJsonOf(saved: Pick<SavedModel, 'modelTopology' | 'weightSpecs'>, paths: string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: 'layers-model',
      generatedBy: 'TensorFlow.js tfjs-layers',
      convertedBy: null,
      modelTopology: saved.modelTopology,
      weightsManifest: [{ paths, weights: saved.weightSpecs }],
    }),
  );
}

/** The model as GET /jobs/:id/model zips one: model.json and weights.bin at the root, and files a base doesn't need. */
export function downloadedModelZip(saved: SavedModel, extra: readonly ZipEntry[] = []): Promise<Buffer> {
  return zipOf([
    { name: 'model.json', data: modelJsonOf(saved, ['weights.bin']) },
    { name: 'weights.bin', data: saved.weights, compress: false },
    { name: 'metadata.json', data: Buffer.from('{"classNames":[]}') },
    { name: 'README.md', data: Buffer.from('# a model\n') },
    ...extra,
  ]);
}
