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

/** What a base holds of one network: the layers but the classifier it covers, the first it doesn't (in words), its classifier. */
interface Coverage {
  readonly network: ModelName;
  readonly covered: readonly LayerShapes[];
  readonly head: LayerShapes | null;
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
 * AlexNet's build allocates its 57 M weights (about 230 MB, and seconds of initialisation) that
 * matching only reads the shapes of: it is built last, when no other network matched.
 */
const builtLast: ReadonlySet<ModelName> = new Set(['alexnet']);
const matchingOrder: readonly ModelName[] = [
  ...modelNames.filter((name) => !builtLast.has(name)),
  ...modelNames.filter((name) => builtLast.has(name)),
];

/**
 * The network of this server whose every layer with weights but the classifier the base holds
 * under the same name (layer-keys.ts) with the same weight shapes, the network built for the
 * base's input. Our networks differ in their first layer's name or shapes, so at most one
 * matches: the first found is it. Refuses the base naming the network it comes closest to (the
 * most of its layers covered) and the first layer it lacks.
 */
export function matchNetwork(baseLayers: readonly LayerShapes[], input: ImageShape): NetworkMatch {
  const byKey = new Map(baseLayers.map((layer) => [layer.key, layer]));
  const coverages: Coverage[] = [];
  for (const network of matchingOrder) {
    const coverage = coverageOf(network, networkLayers(network, input), byKey);
    if (coverage.firstProblem === null)
      return {
        network,
        coveredLayers: coverage.head ? [...coverage.covered, coverage.head] : coverage.covered,
        classes: coverage.classes,
      };
    coverages.push(coverage);
  }
  const share = (coverage: Coverage) => coverage.covered.length / Math.max(1, coverage.required);
  // Ties go to the network listed first (modelNames' order), whatever order they were built in.
  const closest = modelNames
    .map((network) => coverages.find((coverage) => coverage.network === network) as Coverage)
    .reduce((best, coverage) => (share(coverage) > share(best) ? coverage : best));
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
  if (typeof layers === 'string')
    return { network, covered: [], head: null, required: 1, firstProblem: layers, classes: null };
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
  const head = classes === null ? null : (byKey.get(layers.classifier.key) as LayerShapes);
  return { network, covered, head, required: layers.body.length, firstProblem, classes };
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
