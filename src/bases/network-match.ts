import { modelNames, type ModelName } from '../contract/names.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { models } from '../models/index.ts';
import { BaseError } from './base-error.ts';
import { weightLayers } from './layer-keys.ts';

/** A layer with weights as matching sees it: its key (layer-keys.ts) and its weights' shapes. */
export interface LayerShapes {
  readonly key: string;
  readonly className: string;
  readonly shapes: readonly (readonly number[])[];
}

/** What a base must hold for a network: every layer with weights but the last, and that last one (the classifier). */
interface NetworkLayers {
  readonly body: readonly LayerShapes[];
  readonly classifier: LayerShapes;
}

/** What a base holds of one network: the layers it covers, and the first of those it doesn't, said in words. */
interface Coverage {
  readonly network: ModelName;
  readonly covered: readonly LayerShapes[];
  readonly required: number;
  readonly firstProblem: string | null;
  readonly classes: number | null;
}

export interface NetworkMatch {
  readonly network: ModelName;
  /** The network's layers the base covers: all but the classifier, and the classifier too when the base has one. */
  readonly coveredLayers: readonly LayerShapes[];
  /** Units of the base's classifier layer (the network's last), or null when it has none that fits. */
  readonly classes: number | null;
}

const remembered = new Map<string, NetworkLayers | string>();
/** Input shapes seen per network are few (a base's, a data set's); a bound keeps a stream of odd ones from growing it. */
const rememberedAtMost = 32;

/**
 * A network's layers with weights for an input shape, from a build of it, or why it can't be built
 * for that input (LeNet-5 needs at least 12×12 pixels): remembered per network and shape, as
 * building AlexNet takes seconds.
 */
export function networkLayers(network: ModelName, input: ImageShape): NetworkLayers | string {
  const key = `${network}:${input.height}x${input.width}x${input.channels}`;
  const known = remembered.get(key);
  if (known !== undefined) return known;
  let found: NetworkLayers | string;
  try {
    const model = models[network].build(input, 2, 0);
    try {
      const layers: LayerShapes[] = weightLayers(model).map(({ key: name, className, shapes }) => ({
        key: name,
        className,
        shapes,
      }));
      found = { body: layers.slice(0, -1), classifier: layers.at(-1) as LayerShapes };
    } finally {
      model.dispose();
    }
  } catch (error) {
    found = `it can't be built for a ${input.height}×${input.width}×${input.channels} input (${(error as Error).message})`;
  }
  if (remembered.size >= rememberedAtMost) remembered.delete(remembered.keys().next().value as string);
  remembered.set(key, found);
  return found;
}

/**
 * The network of this server whose every layer with weights but the classifier the base holds
 * under the same name (layer-keys.ts) with the same weight shapes, the network built for the
 * base's input; where several do, the one that covers the most layers. Refuses the base naming
 * the network it comes closest to and the first layer it lacks.
 */
export function matchNetwork(baseLayers: readonly LayerShapes[], input: ImageShape): NetworkMatch {
  const byKey = new Map(baseLayers.map((layer) => [layer.key, layer]));
  const coverages = modelNames.map((network) => coverageOf(network, networkLayers(network, input), byKey));
  const matches = coverages.filter((coverage) => coverage.firstProblem === null);
  const best = matches.sort((a, b) => b.required - a.required)[0];
  if (best) return { network: best.network, coveredLayers: best.covered, classes: best.classes };
  const closest = [...coverages].sort(
    (a, b) => b.covered.length / Math.max(1, b.required) - a.covered.length / Math.max(1, a.required),
  )[0] as Coverage;
  throw new BaseError(
    `the model matches none of this server's networks (${modelNames.join(', ')}): closest is ${closest.network}, which ${closest.firstProblem}; ` +
      `the base holds ${closest.covered.length} of the ${closest.required} layers with weights it needs (every one but the classifier, same names and weight shapes)`,
  );
}

function coverageOf(
  network: ModelName,
  layers: NetworkLayers | string,
  byKey: ReadonlyMap<string, LayerShapes>,
): Coverage {
  if (typeof layers === 'string') return { network, covered: [], required: 1, firstProblem: layers, classes: null };
  const covered: LayerShapes[] = [];
  let firstProblem: string | null = null;
  for (const needed of layers.body) {
    const held = byKey.get(needed.key);
    if (held && sameShapes(held.shapes, needed.shapes)) covered.push(held);
    else
      firstProblem ??= held
        ? `has ${needed.key} (${needed.className}) with weights ${describeShapes(needed.shapes)} where the base's has ${describeShapes(held.shapes)}`
        : `lacks ${needed.key} (${needed.className}, weights ${describeShapes(needed.shapes)})`;
  }
  const classes = classifierClasses(byKey.get(layers.classifier.key), layers.classifier);
  const head = classes === null ? [] : [byKey.get(layers.classifier.key) as LayerShapes];
  return { network, covered: [...covered, ...head], required: layers.body.length, firstProblem, classes };
}

/** The units of the base's layer under the classifier's key when it has the classifier's shapes but for the class count, else null. */
function classifierClasses(held: LayerShapes | undefined, classifier: LayerShapes): number | null {
  if (!held || held.shapes.length !== classifier.shapes.length) return null;
  const units = held.shapes[0]?.at(-1);
  const fits = held.shapes.every(
    (shape, index) =>
      shape.at(-1) === units && sameShapes([shape.slice(0, -1)], [(classifier.shapes[index] as number[]).slice(0, -1)]),
  );
  return fits && units !== undefined ? units : null;
}

export function sameShapes(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): boolean {
  return a.length === b.length && a.every((shape, index) => shape.join() === b[index]?.join());
}

export function describeShapes(shapes: readonly (readonly number[])[]): string {
  return shapes.map((shape) => `[${shape.join(', ')}]`).join(' ');
}
