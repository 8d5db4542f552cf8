import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The real CIFAR-10 archive that every developer's and CI's ../shared/ holds. */
export const sharedCifarArchive = path.resolve(
  import.meta.dirname,
  '../../../shared/datasets/cifar10/cifar-10-binary.tar.gz',
);

const classNames = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/**
 * A CIFAR10_PATH for end-to-end tests: the shared real archive when present, else a full-size
 * folder in the official binary format whose classes are learnable (each class its own colour
 * under noise), so "above chance" still means the pipeline works.
 */
export async function cifarPathForTests(folder: string): Promise<{ path: string; real: boolean }> {
  if (existsSync(sharedCifarArchive)) return { path: sharedCifarArchive, real: true };
  const batches = path.join(folder, 'cifar-10-batches-bin');
  await mkdir(batches, { recursive: true });
  let state = 1;
  const noise = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 27;
  for (const [index, name] of [
    'data_batch_1',
    'data_batch_2',
    'data_batch_3',
    'data_batch_4',
    'data_batch_5',
    'test_batch',
  ].entries()) {
    const records = Buffer.alloc(10000 * 3073);
    for (let record = 0; record < 10000; record++) {
      const label = (record * 7 + index) % 10;
      const base = record * 3073;
      records[base] = label;
      for (let plane = 0; plane < 3; plane++) {
        const level = 40 + ((label * (plane + 3) * 37) % 180);
        for (let i = 0; i < 1024; i++) records[base + 1 + plane * 1024 + i] = level + noise();
      }
    }
    await writeFile(path.join(batches, `${name}.bin`), records);
  }
  await writeFile(path.join(batches, 'batches.meta.txt'), `${classNames.join('\n')}\n`);
  return { path: batches, real: false };
}
