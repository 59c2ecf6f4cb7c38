import { describe, expect, it } from 'vitest';
import { describeDiff, diffInventory } from '../../../src/inventory/diff.js';
import type { HostConfig } from '../../../src/inventory/types.js';

const host = (name: string, extra: Partial<HostConfig> = {}): HostConfig =>
  ({
    name,
    host: name,
    port: 22,
    user: 'render',
    slots: 1,
    workdir: 'w',
    env: {},
    local: false,
    source: 'hosts.yaml:3',
    ...extra,
  }) as HostConfig;

describe('diffInventory', () => {
  it('finds hosts added, removed and changed, by name, in the order of the files', () => {
    const before = [host('a'), host('b', { slots: 2 }), host('c')];
    const after = [host('a'), host('b', { slots: 4 }), host('d')];
    const d = diffInventory(before, after);
    expect(d.added.map((h) => h.name)).toEqual(['d']);
    expect(d.removed.map((h) => h.name)).toEqual(['c']);
    expect(d.changed.map((c) => [c.after.name, c.fields])).toEqual([['b', ['slots']]]);
    expect(describeDiff(d)).toBe('+d, -c, b (slots 2 -> 4)');
  });

  it('does not count an entry that only moved in the file (its file:line) as changed', () => {
    const d = diffInventory([host('a', { source: 'hosts.yaml:3' })], [host('a', { source: 'hosts.yaml:9' })]);
    expect(d).toEqual({ added: [], removed: [], changed: [] });
    expect(describeDiff(d)).toBe('');
  });

  it('names the fields of any other change', () => {
    const d = diffInventory([host('a')], [host('a', { port: 2222, env: { X: '1' } })]);
    expect(describeDiff(d)).toBe('a (env, port changed)');
  });
});
