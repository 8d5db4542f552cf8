import type * as tfl from '@tensorflow/tfjs-layers';

/** A layer with weights, under the name a base and a network are matched by. */
export interface WeightLayer {
  /** Its own name, or for a layer its model left unnamed, its class's and order's (below). */
  readonly key: string;
  readonly className: string;
  /** Its weights' shapes, in the layer's order (for BatchNorm: gamma, beta, moving mean, moving variance). */
  readonly shapes: readonly (readonly number[])[];
  readonly layer: tfl.layers.Layer;
}

/**
 * The layers with weights of a model, in its layer order, each under a name that is the same in
 * every build of the model. A layer named by its network keeps its name (MobileNetV2's are
 * Keras's). One left unnamed gets a name from a counter of its process, `conv2d_Conv2D17` in
 * tfjs and `conv2d_3` in Keras, different in every build; it is matched as Keras names a fresh
 * model's layers instead: `conv2d`, `conv2d_1`, … by its class and its order among that class's
 * unnamed layers. Nested models (a Keras backbone inside a model with a new head) are looked into.
 */
export function weightLayers(model: tfl.LayersModel): WeightLayer[] {
  const counts = new Map<string, number>();
  return flattened(model.layers).flatMap((layer) => {
    if (layer.weights.length === 0) return [];
    const className = layer.getClassName();
    let key = layer.name;
    if (isUnnamed(layer.name, className)) {
      const stem = toSnakeCase(className);
      const index = counts.get(stem) ?? 0;
      counts.set(stem, index + 1);
      key = index === 0 ? stem : `${stem}_${index}`;
    }
    return [{ key, className, shapes: layer.weights.map((weight) => weight.shape as number[]), layer }];
  });
}

/** A model's layers with the layers of every model nested in it in its place. */
function flattened(layers: readonly tfl.layers.Layer[]): tfl.layers.Layer[] {
  return layers.flatMap((layer) => {
    const nested = (layer as Partial<tfl.LayersModel>).layers;
    return Array.isArray(nested) ? flattened(nested) : [layer];
  });
}

/** Whether a layer's name is what tfjs-layers (`conv2d_Conv2D3`) or Keras (`conv2d`, `conv2d_3`) gives an unnamed layer of its class. */
function isUnnamed(name: string, className: string): boolean {
  const stem = toSnakeCase(className);
  const suffix = name.startsWith(`${stem}_`) ? name.slice(stem.length + 1) : null;
  return (
    name === stem ||
    (suffix !== null && /^\d+$/.test(suffix.startsWith(className) ? suffix.slice(className.length) : suffix))
  );
}

/** tfjs-layers' (and Keras's) snake case of a class name: Conv2D → conv2d, BatchNormalization → batch_normalization. */
function toSnakeCase(className: string): string {
  return className
    .replace(/(.)([A-Z][a-z0-9]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}
