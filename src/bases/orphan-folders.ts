import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** Where POST /bases writes an upload while it is checked: `BASES_DIR/uploads/<id>.part`. */
export const uploadsFolder = 'uploads';

/** A temporary folder of replaceFolderAtomically: `.<id>.<uuid>.tmp`. */
const temporaryName = /^\.(.+)\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/**
 * Removes what an API process killed midway through an upload or a delete left in BASES_DIR: an
 * upload's partial archive, a base's temporary folder, a base folder without a record (written, then
 * killed before it was recorded; or unrecorded, then killed before it was removed). Only what is
 * older than `graceMs`: another API process may be checking or writing that upload right now.
 * Answers the names removed.
 */
export async function removeOrphanBaseFiles(
  root: string,
  isRecorded: (id: string) => Promise<boolean>,
  graceMs: number,
  now = Date.now(),
): Promise<string[]> {
  const removed: string[] = [];
  const isOld = async (file: string) => {
    const modified = await stat(file).then(
      (found) => found.mtimeMs,
      () => now,
    );
    return now - modified > graceMs;
  };
  const remove = async (file: string) => {
    await rm(file, { recursive: true, force: true });
    removed.push(path.relative(root, file));
  };
  for (const name of await readdir(path.join(root, uploadsFolder)).catch(() => [] as string[])) {
    const file = path.join(root, uploadsFolder, name);
    if (name.endsWith('.part') && (await isOld(file))) await remove(file);
  }
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory() || entry.name === uploadsFolder) continue;
    const folder = path.join(root, entry.name);
    const temporary = temporaryName.test(entry.name);
    if (!temporary && (await isRecorded(entry.name))) continue;
    if (await isOld(folder)) await remove(folder);
  }
  return removed;
}
