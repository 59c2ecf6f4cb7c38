import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The import graph of src/: no module imports itself back through others
// (type imports included: a cycle of types is still two modules that cannot
// be read apart), and each folder imports only the folders its place in the
// data flow allows (CONTRIBUTING.md, "Layout").

const SRC = join(import.meta.dirname, '../../src');

/** Every module of src/ and the src/ modules it imports, by path relative to src/ ('plan/plan.ts'). */
function importGraph(): Map<string, string[]> {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(SRC, file), 'utf8'), true, true);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => normalize(join(dirname(file), name.replace(/\.js$/, '.ts'))));
    graph.set(file, targets);
  }
  return graph;
}

/** The cycles of the graph, each as the path that closes it (a -> b -> a); depth-first, each cycle found once per entry. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'closed'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'closed');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

/** The modules at the top, that put a command together from every folder. */
const TOP = new Set(['run.ts', 'check.ts', 'config.ts', 'index.ts']);

/** A module's folder; '.' for the leaves in src/ itself (errors.ts, outcome.ts, ...), 'top' for TOP. */
const folder = (file: string): string =>
  file.includes('/') ? file.slice(0, file.indexOf('/')) : TOP.has(file) ? 'top' : '.';

/**
 * The folders each folder may import ('.' is the leaves in src/ itself:
 * errors.ts, outcome.ts, ...). Read top to bottom, data flows down: a folder imports
 * only folders listed before it, never a view, an output or the CLI.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  '.': [],
  text: ['.'],
  plan: ['.'],
  fsutil: ['.'],
  inventory: ['.', 'text'],
  ssh: ['.', 'fsutil', 'inventory'],
  hostShell: ['.', 'ssh'],
  hosts: ['.', 'hostShell', 'inventory', 'ssh'],
  scheduler: ['.', 'plan'],
  transfer: ['.', 'fsutil', 'hostShell', 'hosts', 'plan'],
  stitch: ['.', 'plan', 'scheduler', 'transfer'],
  clean: ['.', 'fsutil', 'hosts', 'inventory', 'plan', 'ssh'],
  execute: ['.', 'clean', 'fsutil', 'hostShell', 'hosts', 'inventory', 'plan', 'scheduler', 'ssh', 'transfer'],
  fold: ['plan', 'scheduler', 'stitch'],
  views: ['fold', 'scheduler', 'text'],
  ui: ['.', 'fold', 'inventory', 'plan', 'scheduler', 'transfer', 'views'],
  report: ['.', 'fold', 'fsutil', 'hosts', 'plan', 'scheduler', 'stitch', 'ui'],
};

describe('the import graph of src/', () => {
  const graph = importGraph();

  it('has no cycles, type imports included', () => {
    expect(cycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('finds a cycle when there is one (the check itself)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(cycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  });

  it('has each folder import only the folders before it in the data flow', () => {
    const wrong: string[] = [];
    for (const [file, targets] of graph) {
      const from = folder(file);
      const allowed = MAY_IMPORT[from];
      if (allowed === undefined) continue; // the top and cli/, which may import anything
      for (const target of targets) {
        const to = folder(target);
        if (to !== from && !allowed.includes(to)) wrong.push(`${file} imports ${relative('.', target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
