import type { SkipReason } from '../../contract/datasets.ts';
import { entryPathSegments, isHiddenEntry } from '../../archives/entry-path.ts';

export type SplitName = 'train' | 'test' | 'val';

/** Where an archive's file belongs: a split (null: the archive has no split folders) and a class, or why it is skipped. */
export type Placement =
  | { readonly split: SplitName | null; readonly className: string }
  | { readonly skip: SkipReason; readonly detail: string };

const splitFolders: Readonly<Record<string, SplitName>> = {
  train: 'train',
  test: 'test',
  val: 'val',
  validation: 'val',
};
/** Characters that make a name lie about itself: controls, and bidirectional overrides that reorder what is shown. */
const deceptive = /[\p{Cc}\u202a-\u202e\u2066-\u2069]/u;
const maxClassNameLength = 100;

/**
 * Lays out an archive's file paths the ImageFolder way: `<class>/<image>`, or
 * `train|test|val/<class>/<image>`, below any folders that wrap everything (a zipped folder). Paths
 * are read with `/` or `\` between parts and Unicode-normalised (NFC), so one class is one folder
 * whichever system named it. A path that climbs out (`..`) or starts at the root is refused.
 */
export function placeFiles(paths: readonly string[]): Map<string, Placement> {
  const parts = new Map<string, string[]>();
  const placements = new Map<string, Placement>();
  for (const path of paths) {
    const segments = entryPathSegments(path);
    if (isHiddenEntry(segments)) {
      placements.set(path, { skip: 'hidden', detail: 'a hidden or system file' });
    } else {
      parts.set(path, segments);
    }
  }
  // Folders that wrap every file, as zipping a folder makes: not classes.
  const all = [...parts.values()];
  let depth = 0;
  while (
    all.length > 0 &&
    all.every((segments) => segments.length > depth + 2 && segments[depth] === all[0]?.[depth]) &&
    !isSplitFolder(all[0]?.[depth])
  )
    depth++;
  const split =
    all.some((segments) => splitFolders[(segments[depth] ?? '').toLowerCase()] === 'train') &&
    all.every((segments) => isSplitFolder(segments[depth]));
  for (const [path, segments] of parts) {
    const inside = segments.slice(depth + (split ? 1 : 0));
    if (inside.length < 2) {
      placements.set(path, {
        skip: 'outsideClassFolder',
        detail: split ? 'not inside a class folder of its split' : 'not inside a class folder',
      });
      continue;
    }
    const className = inside[0] as string;
    const problem = classNameProblem(className);
    if (problem) {
      placements.set(path, { skip: 'outsideClassFolder', detail: `its class folder's name ${problem}` });
      continue;
    }
    placements.set(path, {
      split: split ? (splitFolders[(segments[depth] as string).toLowerCase()] as SplitName) : null,
      className,
    });
  }
  return placements;
}

function isSplitFolder(segment: string | undefined): boolean {
  return segment !== undefined && Object.hasOwn(splitFolders, segment.toLowerCase());
}

function classNameProblem(name: string): string | null {
  if (name.trim() === '') return 'is blank';
  if (deceptive.test(name)) return 'holds control or text-direction characters';
  if (name.length > maxClassNameLength) return `is longer than ${maxClassNameLength} characters`;
  return null;
}
