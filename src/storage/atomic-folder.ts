import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Puts a folder `root/name` in place all at once: `write` fills a temporary folder beside it,
 * which is then renamed over the old one, so a crash mid-write never leaves a half-written folder
 * where a reader looks (a reader sees the old folder, the new one, or, for a moment, none).
 */
export async function replaceFolderAtomically(root: string, name: string, write: (folder: string) => Promise<void>): Promise<void> {
  await mkdir(root, { recursive: true });
  const temporary = path.join(root, `.${name}.${randomUUID()}.tmp`);
  const final = path.join(root, name);
  try {
    await mkdir(temporary);
    await write(temporary);
    await rm(final, { recursive: true, force: true });
    await rename(temporary, final);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}
