import type { FastifyRequest } from 'fastify';
import type { JobSettings } from '../contract/job-request.ts';
import { readArtifactMetadata } from '../models/artifact.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import type { JobStore } from '../store/job-store.ts';
import { ownerOf } from './auth.ts';
import type { DatasetFacts } from './dataset-facts.ts';
import { invalidBody } from './http-error.ts';

/**
 * Refuses (400, saying why) a job whose `initFrom` can't be started from: not a completed job of
 * the client's, another model, or a model for images of another shape than the data set's.
 */
export async function assertCanStartFrom(
  store: JobStore,
  request: FastifyRequest,
  settings: JobSettings,
  dataset: DatasetFacts,
  artifactsDir: string,
): Promise<void> {
  const from = settings.initFrom;
  if (from === null) return;
  const refuse = (why: string) => invalidBody('initFrom', why, 'initFrom');
  const owner = ownerOf(request);
  const source = await store.get(from);
  if (!source || (owner !== null && (await store.owner(from)) !== owner))
    throw refuse(`names no job of yours (${from})`);
  if (source.state !== 'completed')
    throw refuse(`names job ${from}, which is ${source.state}: fine-tuning starts from a completed job`);
  if (source.request.model !== settings.model)
    throw refuse(`names job ${from}, which trained ${source.request.model}, not ${settings.model}`);
  const trained = await readArtifactMetadata(artifactsDir, from).catch(() => {
    throw refuse(`names job ${from}, whose trained model is no longer there`);
  });
  if (!sameShape(trained.shape, dataset.shape)) {
    throw refuse(
      `names job ${from}, whose model takes ${describe(trained.shape)} images; this data set's are ${describe(dataset.shape)} (upload it with that imageSize and colour)`,
    );
  }
}

function sameShape(a: ImageShape, b: ImageShape): boolean {
  return a.height === b.height && a.width === b.width && a.channels === b.channels;
}

function describe(shape: ImageShape): string {
  return `${shape.height}×${shape.width}×${shape.channels}`;
}
