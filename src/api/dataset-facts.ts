import type { FastifyRequest } from 'fastify';
import { isBuiltInDataset, type ImageKind } from '../contract/names.ts';
import type { ImageShape } from '../datasets/dataset.ts';
import { datasets } from '../datasets/index.ts';
import type { DatasetStore } from '../store/dataset-store.ts';
import { ownerOf } from './auth.ts';
import { invalidBody } from './http-error.ts';

/** What a job's defaults and checks need to know of the data set it names. */
export interface DatasetFacts {
  readonly shape: ImageShape;
  readonly classNames: readonly string[];
  readonly trainSize: number;
  readonly testSize: number;
  /** Images of its own validation split (validationSplit: 'dataset'); 0 when it has none. */
  readonly validationSize: number;
  readonly augmentByDefault: boolean;
  readonly imageKind: ImageKind;
}

/** The owner key of a client's data sets: its API client's, or '' without API keys. */
export function datasetOwnerOf(request: FastifyRequest): string {
  return ownerOf(request) ?? '';
}

/**
 * With API keys, a client sees only the data sets it uploaded: another's is answered as unknown,
 * so ids can't be probed. True when the client may see the data set whose owner is `owner`.
 */
export function mayUseDataset(request: FastifyRequest, owner: string | null): boolean {
  return owner !== null && (ownerOf(request) === null || owner === datasetOwnerOf(request));
}

/** A built-in data set's facts, or those of an uploaded one the client may use and that is ready (400 otherwise, saying why). */
export async function datasetFactsFor(
  datasetStore: DatasetStore,
  request: FastifyRequest,
  name: string,
): Promise<DatasetFacts> {
  if (isBuiltInDataset(name)) return { ...datasets[name], validationSize: 0 };
  const refuse = (why: string) => invalidBody('dataset', why, `dataset ${name}`);
  const uploaded = await datasetStore.get(name);
  if (!uploaded || !mayUseDataset(request, await datasetStore.owner(name)))
    throw refuse('is no data set of yours (GET /datasets lists them)');
  if (uploaded.state === 'processing') throw refuse('is still processing; wait until its state is ready');
  if (uploaded.state === 'failed' || !uploaded.report)
    throw refuse(`failed to process (${uploaded.error?.message ?? 'no report'}); upload it again`);
  const { report } = uploaded;
  return {
    shape: report.shape,
    classNames: report.classNames,
    trainSize: report.splits.train.images,
    testSize: report.splits.test.images,
    validationSize: report.splits.val?.images ?? 0,
    augmentByDefault: false,
    imageKind: report.imageKind,
  };
}
