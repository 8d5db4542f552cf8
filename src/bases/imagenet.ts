import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { imagenetBase } from './built-in.ts';

const require = createRequire(import.meta.url);

interface BundledModel {
  readonly weightsManifest: readonly { readonly weights: tf.io.WeightsManifestEntry[] }[];
}

/**
 * nsfwjs ships its models as CommonJS bundles: model.min.js exports the model.json object, the shard
 * file the weights as one base64 string. Read as data; none of the package's code runs.
 */
function nsfwjsModel(): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  // The package's exports map hides dist/models; its main file sits at dist/cjs/index.js.
  const root = path.resolve(path.dirname(require.resolve('nsfwjs')), '../..');
  const folder = path.join(root, 'dist/models/mobilenet_v2');
  const model = require(path.join(folder, 'model.min.js')) as BundledModel;
  const shard = require(path.join(folder, 'group1-shard1of1.min.js')) as string;
  const bytes = Buffer.from(shard, 'base64');
  return {
    specs: model.weightsManifest.flatMap((group) => group.weights),
    data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  };
}

/**
 * Sets the layers of a MobileNetV2 build up to the base's last layer (block_10_project_BN) from
 * ImageNet's weights, by Keras layer name; the layers after it keep their fresh initialisation.
 * Answers how many layers it set.
 */
export function startFromImagenet(model: tfl.LayersModel): number {
  const { specs, data } = nsfwjsModel();
  const last = model.layers.findIndex((layer) => layer.name === imagenetBase.lastLayer);
  if (last < 0) throw new Error(`the network has no layer ${imagenetBase.lastLayer}: not a MobileNetV2 build`);
  const covered = model.layers.slice(0, last + 1).filter((layer) => layer.weights.length > 0);
  // Every spec, in order: each weight's offset in the shard is the sum of the sizes before it.
  const named = tf.io.decodeWeights(data, specs);
  try {
    for (const layer of covered) {
      const values = layer.weights.map((weight) => {
        const name = `${layer.name}/${weight.originalName.split('/').pop() ?? ''}`;
        const value = named[name];
        if (!value) throw new Error(`the ImageNet base has no weight ${name}`);
        if (value.shape.join() !== weight.shape.join())
          throw new Error(
            `the ImageNet base's ${name} is [${value.shape.join(', ')}], the network's [${weight.shape.join(', ')}]`,
          );
        return value;
      });
      layer.setWeights(values);
    }
  } finally {
    tf.dispose(Object.values(named));
  }
  return covered.length;
}
