import { ArchiveError } from './archive.ts';

/**
 * The folders and name of an archive entry's path, read with `/` or `\` between parts and
 * Unicode-normalised (NFC), without empty and `.` parts. A path that starts at the root (`/`, a
 * drive letter) or climbs out with `..` is refused: nothing read from an archive may name a place
 * outside it, whoever uses the path later.
 */
export function entryPathSegments(path: string): string[] {
  const normalised = path.normalize('NFC').replaceAll('\\', '/');
  if (normalised.startsWith('/') || /^[A-Za-z]:/.test(normalised)) {
    throw new ArchiveError(
      `the archive's entry ${JSON.stringify(path)} has an absolute path; refused (paths must stay inside the archive)`,
    );
  }
  const segments = normalised.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..')) {
    throw new ArchiveError(`the archive's entry ${JSON.stringify(path)} climbs out of the archive with ../; refused`);
  }
  return segments;
}

/** Hidden files and the folders macOS adds to a zip (`.DS_Store`, `__MACOSX/`): never the user's content. */
export function isHiddenEntry(segments: readonly string[]): boolean {
  return segments.some((segment) => segment.startsWith('.') || segment === '__MACOSX');
}
