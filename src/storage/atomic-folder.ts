import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

const temporarySuffix = '.tmp';
/** A temporary folder's name: `.<name>.<uuid>.tmp`. */
const temporaryName = /^\.(.+)\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/**
 * Puts a folder `root/name` in place all at once: `write` fills a temporary folder beside it,
 * which is then renamed over the old one, so a crash mid-write never leaves a half-written folder
 * where a reader looks (a reader sees the old folder, the new one, or, for a moment, none).
 */
export async function replaceFolderAtomically(
  root: string,
  name: string,
  write: (folder: string) => Promise<void>,
): Promise<void> {
  await mkdir(root, { recursive: true });
  const temporary = path.join(root, `.${name}.${randomUUID()}${temporarySuffix}`);
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

/**
 * The names of the folders under `root`, each once, counting a folder whose only trace is the
 * temporary folder of a write that a crash (SIGKILL, power loss) cut short.
 */
export async function folderNames(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => (entry.name.startsWith('.') ? (temporaryName.exec(entry.name)?.[1] ?? null) : entry.name));
  return [...new Set(names.filter((name): name is string => name !== null))];
}

/** Deletes `root/name` and every temporary folder a cut-short write of it left. */
export async function removeFolder(root: string, name: string): Promise<void> {
  const entries = await readdir(root).catch(() => []);
  const leftovers = entries.filter((entry) => temporaryName.exec(entry)?.[1] === name);
  await Promise.all([name, ...leftovers].map((entry) => rm(path.join(root, entry), { recursive: true, force: true })));
}
