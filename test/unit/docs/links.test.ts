import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The documentation is split over the README and pages that link to each other:
// every relative link and #anchor must land on a file and a heading that exist.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** What users read: no internal history (issue numbers, sessions) in these. */
const USER_DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];
const ALL_DOCS = [...USER_DOCS, 'BENCHMARKS.md', 'CHANGELOG.md', 'CONTRIBUTING.md'];

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** The text with fenced code blocks blanked (their lines kept, so line numbers stay). */
function withoutFences(text: string): string {
  let fence: string | undefined;
  return text
    .split('\n')
    .map((line) => {
      const m = /^\s*(`{3,}|~{3,})/.exec(line);
      if (fence === undefined && m) {
        fence = m[1]!;
        return '';
      }
      if (fence !== undefined) {
        if (m && m[1]![0] === fence[0] && m[1]!.length >= fence.length && line.trim() === m[1]) fence = undefined;
        return '';
      }
      return line;
    })
    .join('\n');
}

/** GitHub's anchor for a heading's text (github-slugger): lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link shows its text
    .replace(/[`*]/g, ''); // code and emphasis marks are not text
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a markdown file's headings, a repeated one numbered as GitHub does (`x`, `x-1`, ...). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of withoutFences(text).split('\n')) {
    const m = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every inline link's target `[text](target)` outside code (fences and `code spans`). */
function links(text: string): string[] {
  const prose = withoutFences(text).replace(/(`+)[^`]*?\1/g, '');
  return [...prose.matchAll(/\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

/** What is wrong with each relative link of `doc` (a path from the repository's root). */
function brokenLinks(doc: string): string[] {
  const problems: string[] = [];
  for (const target of links(read(doc))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const hash = target.indexOf('#');
    const path = hash < 0 ? target : target.slice(0, hash);
    const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const file = path === '' ? join(ROOT, doc) : resolve(ROOT, dirname(doc), decodeURIComponent(path));
    const where = `${doc}: link "${target}"`;
    if (relative(ROOT, file).startsWith('..')) {
      problems.push(`${where} leaves the repository`);
      continue;
    }
    if (!existsSync(file)) {
      problems.push(`${where}: ${relative(ROOT, file)} does not exist`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!file.endsWith('.md') || statSync(file).isDirectory()) {
      problems.push(`${where}: an anchor into a file that is not markdown`);
      continue;
    }
    const found = anchors(readFileSync(file, 'utf8'));
    if (!found.has(anchor))
      problems.push(`${where}: ${relative(ROOT, file)} has no heading "#${anchor}" (it has: ${[...found].join(', ')})`);
  }
  return problems;
}

describe('the anchors of headings', () => {
  it('are made as GitHub makes them', () => {
    expect(slug('Events (`--events`)')).toBe('events---events');
    expect(slug('JUnit XML (`--junit`)')).toBe('junit-xml---junit');
    expect(slug("Against the machine's floor")).toBe('against-the-machines-floor');
    expect(slug('Hosts that come and go (editing the inventory during a run)')).toBe(
      'hosts-that-come-and-go-editing-the-inventory-during-a-run',
    );
    expect(slug('The scheduler alone, at farm sizes this machine cannot host')).toBe(
      'the-scheduler-alone-at-farm-sizes-this-machine-cannot-host',
    );
    expect(slug('ssh_config')).toBe('ssh_config');
    expect(slug('[0.1.0] - Unreleased')).toBe('010---unreleased');
    expect([...anchors('# A\n```\n# not a heading\n```\n## A\n### B #\n')]).toEqual(['a', 'a-1', 'b']);
  });

  it('finds links in prose, not in code', () => {
    expect(links('see [x](a.md#b) and `[y](c.md)`\n```\n[z](d.md)\n```\n[w](e.md "title") [v](\n  f.md)')).toEqual([
      'a.md#b',
      'e.md',
      'f.md',
    ]);
  });
});

describe('the documentation', () => {
  it.each(ALL_DOCS)('%s: every relative link and #anchor resolves', (doc) => {
    expect(brokenLinks(doc)).toEqual([]);
  });

  it('has every page in docs/ linked from the README', () => {
    const linked = new Set(links(read('README.md')).map((l) => l.split('#')[0]));
    for (const doc of [
      ...USER_DOCS.filter((d) => d !== 'README.md'),
      'BENCHMARKS.md',
      'CHANGELOG.md',
      'CONTRIBUTING.md',
    ])
      expect(linked, doc).toContain(doc);
  });

  it.each(USER_DOCS)('%s: speaks of the product, not of its history (no issue numbers or sessions)', (doc) => {
    const lines = read(doc).split('\n');
    const history = lines
      .map((line, i) => `${doc}:${i + 1}: ${line}`)
      .filter((line) =>
        /\bissues? #?\d{1,2}\b|#\d{1,2}\b(?![\d.])|\bsessions?\b/i.test(line.slice(line.indexOf(': ') + 2)),
      );
    expect(history).toEqual([]);
  });

  it('CHANGELOG.md names no issue or session either', () => {
    expect(read('CHANGELOG.md')).not.toMatch(/\bissues? #?\d+\b|\bsessions?\b/i);
  });

  it('gives the same exit statuses in the README and the CLI reference', () => {
    const table = (doc: string): string =>
      /\| code \| when \|\n(?:\|.*\|\n)+/.exec(read(doc))?.[0] ?? `no exit status table in ${doc}`;
    expect(table('README.md')).toBe(table('docs/cli.md'));
  });
});
