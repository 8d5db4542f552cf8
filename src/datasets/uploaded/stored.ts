import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { imageKinds } from '../../contract/names.ts';
import type { Dataset, ImageShape, ImageSplit } from '../dataset.ts';
import { DatasetError } from '../dataset.ts';
import { decodeRecords, recordBytes } from '../record-layout.ts';

/**
 * An uploaded data set on disk, `DATASETS_DIR/<id>/`: `dataset.json` (this description) and one
 * file per split in CIFAR-10's record layout (record-layout.ts), `train.bin`, `test.bin` and,
 * when the archive had one, `val.bin`. Written all at once (replaceFolderAtomically), so a folder
 * that exists is complete.
 */
const storedDataset = z.object({
  format: z.literal('trainer-dataset/1'),
  id: z.string(),
  name: z.string(),
  shape: z.object({
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    channels: z.union([z.literal(1), z.literal(3)]),
  }),
  classNames: z.array(z.string()).min(2).max(256),
  imageKind: z.enum(imageKinds),
  counts: z.object({
    train: z.number().int().positive(),
    test: z.number().int().positive(),
    val: z.number().int().nonnegative(),
  }),
});
export type StoredDataset = z.infer<typeof storedDataset>;

export const descriptionFile = 'dataset.json';
export const splitFile = (split: 'train' | 'test' | 'val') => `${split}.bin`;

export function datasetFolder(root: string, id: string): string {
  return path.join(root, id);
}

/** Loads an uploaded data set for training, refusing one whose files are missing, truncated or changed. */
export async function loadUploadedDataset(root: string, id: string): Promise<Dataset> {
  const folder = datasetFolder(root, id);
  let description: StoredDataset;
  try {
    description = storedDataset.parse(JSON.parse(await readFile(path.join(folder, descriptionFile), 'utf8')));
  } catch (error) {
    throw new DatasetError(
      `the uploaded data set ${id} can't be read from ${folder} (${(error as Error).message}); it may have been deleted: upload it again`,
    );
  }
  const split = async (name: 'train' | 'test' | 'val', count: number): Promise<ImageSplit> =>
    readSplit(path.join(folder, splitFile(name)), count, description.shape, description.classNames.length);
  return {
    name: description.name,
    shape: description.shape,
    classNames: description.classNames,
    imageKind: description.imageKind,
    train: await split('train', description.counts.train),
    test: await split('test', description.counts.test),
    ...(description.counts.val > 0 ? { val: await split('val', description.counts.val) } : {}),
  };
}

async function readSplit(file: string, count: number, shape: ImageShape, classes: number): Promise<ImageSplit> {
  const size = recordBytes(shape);
  const expected = count * size;
  const actual = (await stat(file).catch(() => null))?.size;
  if (actual !== expected)
    throw new DatasetError(
      `${file} has ${actual ?? 'no'} bytes, ${expected} expected (${count} records of ${size}): the data set is damaged; upload it again`,
    );
  const bytes = await readFile(file);
  const images = new Uint8Array(count * (size - 1));
  const labels = new Uint8Array(count);
  const bad = decodeRecords(bytes, count, shape, classes, images, labels, 0);
  if (bad !== -1)
    throw new DatasetError(
      `${file} has label ${bytes[bad * size]} in record ${bad}, but the data set has ${classes} classes: it is damaged; upload it again`,
    );
  return { images, labels, count };
}
