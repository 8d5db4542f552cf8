import * as tf from '@tensorflow/tfjs-core';
// The networks' modules register the layers tfjs lacks (adaptive average pooling, seeded dropout),
// so a base downloaded from an AlexNet job is checked against the classes it can really build.
import '../models/index.ts';
import { BaseError } from './base-error.ts';

interface LayerNode {
  readonly className: string;
  readonly name: string;
}

/**
 * Refuses a topology with a layer class TensorFlow.js can't build (a Keras layer tfjs-layers lacks,
 * a Lambda, a custom layer), naming the layer and its class: loading it would fail with a message
 * about a missing registration that tells a user less. Nested models and wrapped layers are looked into.
 */
export function checkLayerClasses(modelTopology: Record<string, unknown>): void {
  const known = tf.serialization.SerializationMap.getMap().classNameMap;
  const unknown = layerNodes(modelTopology.model_config ?? modelTopology).filter(
    ({ className }) => !Object.hasOwn(known, className),
  );
  const first = unknown[0];
  if (first) {
    const others = unknown.length > 1 ? ` (and ${unknown.length - 1} more layers of classes it lacks)` : '';
    throw new BaseError(
      `the model's layer ${first.name} is of class ${first.className}, which TensorFlow.js can't build${others}: a base may hold only layers tfjs-layers has`,
    );
  }
}

/** Every layer of a Keras config, the model itself first, then its layers, a nested model's in turn. */
function layerNodes(node: unknown): LayerNode[] {
  if (typeof node !== 'object' || node === null) return [];
  const { class_name: className, config, name } = node as Record<string, unknown>;
  if (typeof className !== 'string') return [];
  const settings = typeof config === 'object' && config !== null ? (config as Record<string, unknown>) : {};
  const layerName = typeof settings.name === 'string' ? settings.name : typeof name === 'string' ? name : '(unnamed)';
  // A Sequential's config is its list of layers in old Keras files, an object holding `layers` in newer ones.
  const children = Array.isArray(config)
    ? config
    : [...(Array.isArray(settings.layers) ? settings.layers : []), ...(settings.layer ? [settings.layer] : [])];
  return [{ className, name: layerName }, ...children.flatMap(layerNodes)];
}
