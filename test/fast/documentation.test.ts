/**
 * The Markdown stays navigable: every relative link names a file that exists (../shared/API.md
 * beside the checkout included), every #anchor a heading of its file as GitHub spells it, and the
 * configuration reference documents every setting of src/config.ts. The README stays short.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { settingNames } from '../../src/config.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Folders never searched: hidden ones, dependencies, and what .gitignore names (data, artifacts, results of runs). */
const skipped = new Set([
  'node_modules',
  ...readFileSync(path.join(root, '.gitignore'), 'utf8')
    .split('\n')
    .filter((line) => line.endsWith('/'))
    .map((line) => line.slice(0, -1)),
]);

function markdownFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name.startsWith('.') || skipped.has(entry.name)) return [];
    const file = path.join(folder, entry.name);
    if (entry.isDirectory()) return markdownFiles(file);
    return entry.name.endsWith('.md') ? [file] : [];
  });
}

/** The text a reader sees as prose: fenced code blocks and inline code spans blanked, so their brackets and hashes are not links or headings. */
function prose(markdown: string): string {
  let fenced = false;
  return markdown
    .split('\n')
    .map((line) => {
      if (/^\s*(```|~~~)/.test(line)) {
        fenced = !fenced;
        return '';
      }
      return fenced ? '' : line;
    })
    .join('\n');
}

/** GitHub's anchor for a heading: lower-case, punctuation dropped, each space a dash; a repeated one gets -1, -2, …. */
function headingSlugs(markdown: string): Set<string> {
  const slugs = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, text = ''] of prose(markdown).matchAll(/^#{1,6}[ \t]+(.*?)[ \t#]*$/gm)) {
    const base = text
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    slugs.add(count === 0 ? base : `${base}-${count}`);
  }
  return slugs;
}

/** Every link target of a Markdown file: inline links and images, and reference definitions. */
function linkTargets(markdown: string): string[] {
  const text = prose(markdown).replace(/`[^`]*`/g, '``');
  const inline = [...text.matchAll(/\]\(\s*<?([^()\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1] ?? '');
  const definitions = [...text.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((match) => match[1] ?? '');
  return [...inline, ...definitions];
}

/** What is wrong with one link of `file`, or undefined when it resolves. */
function brokenLink(file: string, target: string): string | undefined {
  if (/^[a-z][a-z\d+.-]*:/i.test(target)) return undefined; // https:, mailto: … are not checked here
  const hash = target.indexOf('#');
  const linked = hash === -1 ? target : target.slice(0, hash);
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const destination = linked === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(linked));
  if (!existsSync(destination)) return `${target}: no such file`;
  if (anchor === undefined) return undefined;
  if (!destination.endsWith('.md') || statSync(destination).isDirectory())
    return `${target}: an anchor into a file that is not Markdown`;
  if (!headingSlugs(readFileSync(destination, 'utf8')).has(anchor)) return `${target}: no heading with that anchor`;
  return undefined;
}

describe('documentation', () => {
  const files = markdownFiles(root);

  it('finds the README, the docs and the bench results', () => {
    const relative = files.map((file) => path.relative(root, file));
    assert.ok(relative.includes('README.md'));
    assert.ok(relative.includes(path.join('docs', 'README.md')));
    assert.ok(relative.includes(path.join('docs', 'reference', 'configuration.md')));
    assert.ok(relative.some((file) => file.startsWith(path.join('bench', 'results') + path.sep)));
  });

  it('spells anchors as GitHub does', () => {
    const slugs = headingSlugs(
      [
        '# Workers dying at random: `npm run bench -- --chaos`',
        '## Deleting jobs: `DELETE /jobs/:id` and `JOB_RETENTION_DAYS`',
        '## Web dashboard: `GET /`',
        '### Experiments',
        '### Experiments',
        '```sh',
        '# not a heading',
        '```',
        '## Sizing [the lock](#x): 2× faster',
      ].join('\n'),
    );
    assert.deepEqual(
      [...slugs],
      [
        'workers-dying-at-random-npm-run-bench------chaos',
        'deleting-jobs-delete-jobsid-and-job_retention_days',
        'web-dashboard-get-',
        'experiments',
        'experiments-1',
        'sizing-the-lock-2-faster',
      ],
    );
  });

  it('has no relative link or anchor that leads nowhere', () => {
    const broken = files.flatMap((file) =>
      linkTargets(readFileSync(file, 'utf8')).flatMap((target) => {
        const problem = brokenLink(file, target);
        return problem === undefined ? [] : [`${path.relative(root, file)}: ${problem}`];
      }),
    );
    assert.deepEqual(broken, []);
  });

  it('documents every setting of src/config.ts in the configuration reference', () => {
    const reference = readFileSync(path.join(root, 'docs', 'reference', 'configuration.md'), 'utf8');
    assert.ok(settingNames.length >= 40, `${settingNames.length} settings read from the schema`);
    assert.deepEqual(
      settingNames.filter((name) => !reference.includes(`\`${name}\``)),
      [],
    );
  });

  it('keeps the README at most 16 KiB', () => {
    const bytes = statSync(path.join(root, 'README.md')).size;
    assert.ok(bytes <= 16 * 1024, `README.md is ${bytes} bytes`);
  });
});
