import type { FastifyRequest } from 'fastify';
import type { JobSettings } from '../contract/job-request.ts';
import { readArtifactMetadata } from '../models/artifact.ts';
import { basesOf, builtInBaseOf } from '../bases/built-in.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { baseMismatch } from '../bases/apply-base.ts';
import { readBaseDescription } from '../bases/stored-base.ts';
import { ownerOf } from './auth.ts';
import { mayUseDataset } from './dataset-facts.ts';
import type { ApiDependencies } from './dependencies.ts';
import type { DatasetFacts } from './dataset-facts.ts';
import { invalidBody } from './http-error.ts';

/**
 * Refuses (400, saying why) a job whose `initFrom` can't be started from: not a completed job of
 * the client's, another model, or a model for images of another shape than the data set's.
 */
export async function assertCanStartFrom(
  { store, baseStore, config }: Pick<ApiDependencies, 'store' | 'baseStore' | 'config'>,
  request: FastifyRequest,
  settings: JobSettings,
  dataset: DatasetFacts,
): Promise<void> {
  assertFitsNetwork(settings);
  const from = settings.initFrom;
  if (from === null || builtInBaseOf(settings) !== null) return;
  const refuse = (why: string) => invalidBody('initFrom', why, 'initFrom');
  if (await baseStore.get(from)) {
    if (!mayUseDataset(request, await baseStore.owner(from))) throw refuse(`names no job or base of yours (${from})`);
    const base = await readBaseDescription(config.BASES_DIR, from).catch(() => {
      throw refuse(`names base ${from}, whose files are no longer there: upload it again`);
    });
    if (base.network !== settings.model)
      throw refuse(`names base ${from}, a ${base.network}; this job trains ${settings.model}`);
    if (settings.inputSize !== null)
      throw refuse(`names base ${from}, which runs at the data set's own size: leave inputSize out`);
    const mismatch = baseMismatch(base, dataset.shape);
    if (mismatch !== null) throw refuse(`names base ${from}, which doesn't fit this data set: ${mismatch}`);
    return;
  }
  const artifactsDir = config.ARTIFACTS_DIR;
  const owner = ownerOf(request);
  const source = await store.get(from);
  if (!source || (owner !== null && (await store.owner(from)) !== owner))
    throw refuse(`names no job or base of yours (${from})`);
  if (source.state !== 'completed')
    throw refuse(`names job ${from}, which is ${source.state}: fine-tuning starts from a completed job`);
  if (source.request.model !== settings.model)
    throw refuse(`names job ${from}, which trained ${source.request.model}, not ${settings.model}`);
  if ((source.request.inputSize ?? null) !== settings.inputSize || builtInBaseOf(source.request) !== null)
    throw refuse(
      `names job ${from}, which trained ${source.request.initFrom === null ? 'from scratch' : `from ${source.request.initFrom}`} at inputSize ${source.request.inputSize ?? 'of its data set'}: fine-tuning starts from a job trained from scratch at the same inputSize`,
    );
  const trained = await readArtifactMetadata(artifactsDir, from).catch(() => {
    throw refuse(`names job ${from}, whose trained model is no longer there`);
  });
  if (!sameShape(trained.shape, dataset.shape)) {
    throw refuse(
      `names job ${from}, whose model takes ${describe(trained.shape)} images; this data set's are ${describe(dataset.shape)} (upload it with that imageSize and colour)`,
    );
  }
}

/**
 * Refuses settings the network can't take: a built-in base of another network (naming the ones it
 * has), inputSize for a network without an input layer for it, head or top with nothing to keep.
 */
function assertFitsNetwork(settings: JobSettings): void {
  const base = builtInBaseOf(settings);
  if (base !== null && base.network !== settings.model) {
    const own = basesOf(settings.model).map((b) => b.name);
    throw invalidBody(
      'initFrom',
      `${base.name} is a base of ${base.network}; ${settings.model} has ${own.length === 0 ? 'no built-in base' : `these: ${own.join(', ')}`}`,
      'initFrom',
    );
  }
  if (settings.inputSize !== null && settings.model !== 'mobilenetv2')
    throw invalidBody('inputSize', `inputSize is for mobilenetv2; ${settings.model} runs at the data set's own size`);
  if ((settings.trainLayers === 'head' || settings.trainLayers === 'top') && settings.initFrom === null)
    throw invalidBody(
      'trainLayers',
      `trainLayers ${settings.trainLayers} keeps the layers initFrom gives as they are: give initFrom (a base in GET /models, or a completed job)`,
    );
}

function sameShape(a: ImageShape, b: ImageShape): boolean {
  return a.height === b.height && a.width === b.width && a.channels === b.channels;
}

function describe(shape: ImageShape): string {
  return `${shape.height}×${shape.width}×${shape.channels}`;
}
