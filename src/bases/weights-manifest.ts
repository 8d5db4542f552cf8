import type * as tf from '@tensorflow/tfjs-core';
import { BaseError } from './base-error.ts';
import type { LayersModelJson } from './model-json.ts';

/** Bytes per value of what a layers model's weights may be stored as: their dtype, or their quantization's. */
const dtypeBytes: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1 };
const quantizedBytes: Readonly<Record<string, number>> = { uint8: 1, uint16: 2, float16: 2 };

export interface ManifestWeights {
  /** Every group's weights, in order: what tf.io.decodeWeights reads `weights` with. */
  readonly weightSpecs: tf.io.WeightsManifestEntry[];
  /** Every group's shards, one after another, in a buffer of their own (tfjs takes its ArrayBuffer whole). */
  readonly weights: Uint8Array<ArrayBuffer>;
}

/**
 * The model's weights as its manifest describes them, checked against the archive's shards: every
 * shard named is there, each group's shards hold exactly the bytes its weights' dtype, shape and
 * quantization take (no byte short, none over), no shard is named twice, and no `.bin` file lies
 * in the archive that the manifest doesn't name (a shard of another model, or one it lost).
 */
export function collectWeights(
  { weightsManifest }: LayersModelJson,
  folder: string,
  files: ReadonlyMap<string, Buffer>,
): ManifestWeights {
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const shards: Buffer[] = [];
  const named = new Set<string>();
  const weightNames = new Set<string>();
  weightsManifest.forEach((group, index) => {
    const groupShards = group.paths.map((shardPath) => {
      const path = shardPathIn(folder, shardPath);
      if (named.has(path)) throw new BaseError(`model.json's weights manifest names the shard ${shardPath} twice`);
      named.add(path);
      const shard = files.get(path);
      if (!shard)
        throw new BaseError(`model.json's weights manifest names the shard ${shardPath}, which the archive lacks`);
      return shard;
    });
    let expected = 0;
    for (const spec of group.weights) {
      if (weightNames.has(spec.name))
        throw new BaseError(`model.json's weights manifest lists the weight ${spec.name} twice`);
      weightNames.add(spec.name);
      expected += weightBytes(spec);
      weightSpecs.push(spec as tf.io.WeightsManifestEntry);
    }
    const held = groupShards.reduce((sum, shard) => sum + shard.byteLength, 0);
    if (held !== expected) {
      const where = `weight group ${index + 1} (${group.paths.join(', ')})`;
      throw new BaseError(
        held < expected
          ? `the shards of ${where} hold ${held} bytes, but its ${group.weights.length} weights take ${expected} by model.json's manifest: a shard is truncated or missing`
          : `the shards of ${where} hold ${held} bytes, ${held - expected} more than its ${group.weights.length} weights take by model.json's manifest: the shards don't belong to it`,
      );
    }
    shards.push(...groupShards);
  });
  const stray = [...files.keys()].filter((path) => path.endsWith('.bin') && !named.has(path));
  if (stray.length > 0)
    throw new BaseError(
      `the archive holds ${stray.join(', ')}, which model.json's weights manifest doesn't name: a shard of another model, or a manifest that lost it`,
    );
  return { weightSpecs, weights: ownBuffer(shards) };
}

/**
 * The shards one after another in a buffer of their own. One shard read whole from the archive is
 * that already, and is taken as it is: a model of a few hundred MB is not copied for nothing.
 */
function ownBuffer(shards: readonly Buffer[]): Uint8Array<ArrayBuffer> {
  const [only] = shards;
  if (shards.length === 1 && only && only.byteOffset === 0 && only.byteLength === only.buffer.byteLength)
    return new Uint8Array(only.buffer as ArrayBuffer);
  const weights = new Uint8Array(shards.reduce((sum, shard) => sum + shard.byteLength, 0));
  let offset = 0;
  for (const shard of shards) {
    weights.set(shard, offset);
    offset += shard.byteLength;
  }
  return weights;
}

/** The bytes one weight takes in its shard: its values times the bytes of its dtype or quantization. */
function weightBytes(spec: LayersModelJson['weightsManifest'][number]['weights'][number]): number {
  const values = spec.shape.reduce((product, side) => product * side, 1);
  const stored = spec.quantization?.dtype;
  const bytes = stored === undefined ? dtypeBytes[spec.dtype] : quantizedBytes[stored];
  if (bytes === undefined) {
    throw new BaseError(
      stored === undefined
        ? `the weight ${spec.name} is of dtype ${spec.dtype}; a layers model's weights are float32, int32 or bool`
        : `the weight ${spec.name} is quantised to ${stored}; TensorFlow.js reads uint8, uint16 and float16`,
    );
  }
  return values * bytes;
}

/** A shard's path in the archive: the manifest's path from model.json's folder, which it may not leave. */
function shardPathIn(folder: string, shardPath: string): string {
  const segments = shardPath.normalize('NFC').replaceAll('\\', '/').split('/');
  if (shardPath.startsWith('/') || shardPath.includes(':') || segments.includes('..'))
    throw new BaseError(
      `model.json's weights manifest names the shard ${JSON.stringify(shardPath)}; shards must lie in model.json's folder or below it`,
    );
  return [folder, ...segments.filter((segment) => segment !== '' && segment !== '.')].filter(Boolean).join('/');
}
