import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ArchiveError, archiveFormatOfFile } from '../archives/archive.ts';
import { buildUploadedDataset, DatasetBuildError, type BuildLimits } from '../datasets/uploaded/build.ts';
import { datasetFolder } from '../datasets/uploaded/stored.ts';
import type { DatasetStorageLimits, DatasetStore } from '../store/dataset-store.ts';

export interface DatasetJobDependencies {
  readonly store: DatasetStore;
  /** DATASETS_DIR: archives wait in `uploads/`, data sets are written beside. */
  readonly root: string;
  readonly limits: BuildLimits;
  readonly storage: DatasetStorageLimits;
  readonly logger: Logger;
}

/** Where an uploaded archive waits for processing. */
export function uploadedArchive(root: string, id: string): string {
  return path.join(root, 'uploads', id);
}

/**
 * The worker's processor of uploaded archives: turns one into a data set and records it `ready`
 * with its report, or `failed` with the reason. The data set's folder appears all at once, before
 * it is recorded ready, so a worker killed midway leaves it `processing` (the queue hands it to
 * another worker, which starts again from the archive), never `ready` and half-written.
 */
export async function processDatasetJob(id: string, dependencies: DatasetJobDependencies): Promise<void> {
  const { store, root, logger } = dependencies;
  const log = logger.child({ datasetId: id });
  const dataset = await store.get(id);
  if (dataset?.state !== 'processing') {
    log.info({ state: dataset?.state ?? null }, 'data set is not processing; skipped');
    return;
  }
  const archive = uploadedArchive(root, id);
  // What a worker killed while processing this one left; the queue gives a data set to one worker at a time.
  await removeTemporaryFolders(root, (folderId) => folderId === id);
  try {
    const format = await archiveFormatOfFile(archive).catch(() => {
      throw new DatasetBuildError('its uploaded archive is gone from DATASETS_DIR/uploads; upload it again');
    });
    if (format === null) throw new DatasetBuildError('the upload is not a zip, tar or tar.gz archive');
    log.info({ format, bytes: dataset.archiveBytes }, 'processing data set');
    const report = await buildUploadedDataset({
      archive,
      format,
      id,
      name: dataset.name,
      options: dataset.options,
      root,
      limits: dependencies.limits,
      onProgress: (progress) => store.setProgress(id, progress),
    });
    const state = await store.markReady(id, report, dependencies.storage);
    if (state !== 'ready') await rm(datasetFolder(root, id), { recursive: true, force: true });
    log.info(
      {
        state,
        classes: report.classNames.length,
        train: report.splits.train.images,
        test: report.splits.test.images,
        skipped: report.skipped.count,
      },
      'data set processed',
    );
  } catch (error) {
    const known = error instanceof ArchiveError || error instanceof DatasetBuildError;
    if (!known) log.error({ err: error }, 'data set processing failed');
    const message = known
      ? error.message
      : `processing failed: ${error instanceof Error ? error.message : String(error)}`;
    await store.markFailed(id, message);
    log.info({ reason: message }, 'data set failed');
  }
  await rm(archive, { force: true });
}

/** Removes what processing killed midway left behind: temporary folders of data sets no longer processing. */
export async function removeStaleDatasetFolders(store: DatasetStore, root: string): Promise<void> {
  const processing = new Set(await store.processingIds());
  await removeTemporaryFolders(root, (id) => !processing.has(id));
}

/** The temporary folders replaceFolderAtomically writes (`.<id>.<uuid>.tmp`) of the data sets `stale` picks. */
async function removeTemporaryFolders(root: string, stale: (id: string) => boolean): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const id = /^\.(.+)\.[0-9a-f-]{36}\.tmp$/.exec(name)?.[1];
    if (id !== undefined && stale(id)) await rm(path.join(root, name), { recursive: true, force: true });
  }
}
