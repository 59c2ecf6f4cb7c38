import { execFileSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HostLifecycle } from '../../../src/execute/hostLifecycle.js';
import { LiveInventory } from '../../../src/execute/liveInventory.js';
import type { InventoryDiff } from '../../../src/inventory/diff.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { eventually, WAIT_MS } from '../../helpers/wait.js';

function setup(yaml: string, opts: { only?: string; exclude?: string; outs?: string[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'distray-live-'));
  const sshConfig = join(dir, 'ssh_config');
  writeFileSync(sshConfig, '');
  const file = join(dir, 'hosts.yaml');
  writeFileSync(file, yaml);
  const plan = new Plan({
    frames: parseFrameSpec('1,4'),
    exec: 'r',
    args: ['%d'],
    ins: [],
    outs: opts.outs ?? [],
    hostNames: ['x'],
  });
  const diffs: InventoryDiff[] = [];
  const notes: string[] = [];
  const recorded: string[] = [];
  const lifecycle = { update: (d: InventoryDiff) => diffs.push(d) } as unknown as HostLifecycle;
  const live = new LiveInventory(
    loadInventory(file, { sshConfigPath: sshConfig }).filter((h) => h.name !== opts.exclude),
    {
      file,
      sshConfig,
      only: opts.only?.split(','),
      exclude: opts.exclude?.split(','),
      plan,
      lifecycle,
      note: (m) => notes.push(m),
      debounceMs: 20,
      record: (entries) => {
        recorded.push(...entries.map((e) => e.host));
        return Promise.resolve();
      },
    },
  );
  const write = (text: string): void => writeFileSync(file, text);
  return { dir, file, live, diffs, notes, recorded, write };
}

const names = (d: InventoryDiff | undefined): string[] => [
  ...(d?.added ?? []).map((h) => `+${h.name}`),
  ...(d?.removed ?? []).map((h) => `-${h.name}`),
  ...(d?.changed ?? []).map((c) => `~${c.after.name}`),
];

describe('LiveInventory', () => {
  it('refuses an inventory swapped for a FIFO without reading it, keeps the hosts it had, and takes the next good file', async () => {
    const t = setup('hosts:\n  - a\n');
    // Nothing ever writes to it: reading it would wait for ever.
    const fifo = join(t.dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    renameSync(fifo, t.file);
    await t.live.reload('changed');
    expect(t.diffs).toEqual([]);
    expect(t.notes).toEqual([
      `inventory ${t.file} (changed): the inventory ${t.file} is a FIFO, not a regular file; name the inventory's YAML file itself; edit ignored, the run goes on with the hosts it had`,
    ]);
    rmSync(t.file);
    t.write('hosts:\n  - a\n  - b\n');
    await t.live.reload('changed');
    expect(names(t.diffs[0])).toEqual(['+b']);
  });

  it('hands hosts added, removed and changed to the lifecycle, and keeps applying --exclude', async () => {
    const t = setup('hosts:\n  - a\n  - b\n  - c\n', { exclude: 'c' });
    t.write('hosts:\n  - a\n  - host: b\n    slots: 2\n  - c\n  - d\n');
    await t.live.reload('changed');
    expect(names(t.diffs[0])).toEqual(['+d', '~b']);
    expect(t.notes).toEqual([`inventory ${t.file} re-read (changed): +d, b (slots 1 -> 2)`]);
    expect(t.recorded).toEqual(['d', 'b']);
    t.write('hosts:\n  - d\n');
    await t.live.reload('SIGHUP');
    expect(names(t.diffs[1])).toEqual(['-a', '-b']);
  });

  it('reports a broken edit in one line with file:line, ignores it, and compares the next edit with the hosts it had', async () => {
    const t = setup('hosts:\n  - a\n  - b\n');
    t.write('hosts:\n  - a\n  - host: b\n    slots: lots\n');
    await t.live.reload('changed');
    expect(t.diffs).toEqual([]);
    expect(t.notes).toHaveLength(1);
    expect(t.notes[0]).toMatch(
      new RegExp(
        `^inventory ${t.file} \\(changed\\): ${t.file}:4.*slots.*; edit ignored, the run goes on with the hosts it had$`,
      ),
    );
    expect(t.notes[0]).not.toContain('\n');
    t.write('hosts: [');
    await t.live.reload('changed');
    expect(t.notes[1]).toMatch(/edit ignored/);
    t.write('hosts:\n  - a\n  - e\n');
    await t.live.reload('changed');
    expect(names(t.diffs[0])).toEqual(['+e', '-b']);
  });

  it('ignores an edit that leaves no host (a file caught half-written) or that the command line cannot use', async () => {
    const t = setup('hosts:\n  - a\n', { only: 'a,b', outs: ['shared.txt=f/%d.txt'] });
    t.write('hosts:\n  - c\n');
    await t.live.reload('changed');
    expect(t.notes[0]).toMatch(/leave no host.*edit ignored/);
    // --out shared.txt=f/%d.txt: shared.txt is the same remote path for every task: two slots on one host would write it together.
    t.write('hosts:\n  - host: a\n    slots: 2\n  - b\n');
    await t.live.reload('changed');
    expect(t.notes[1]).toMatch(
      /--out shared\.txt=f\/%d\.txt: its remote path is the same for every task, but a runs 2 tasks at once.*or use slots: 1; edit ignored/,
    );
    expect(t.diffs).toEqual([]);
    t.write('hosts:\n  - a\n  - b\n');
    await t.live.reload('changed');
    expect(names(t.diffs[0])).toEqual(['+b']);
  });

  it('says so on SIGHUP when nothing changed, and nothing when a save changed no host', async () => {
    const t = setup('hosts:\n  - a\n');
    t.write('# a comment\nhosts:\n  - a\n');
    await t.live.reload('changed');
    await t.live.reload('SIGHUP');
    expect(t.notes).toEqual([`inventory ${t.file} (SIGHUP): no host changed`]);
    expect(t.diffs).toEqual([]);
  });

  it('notices the file replaced by a rename (as editors save) and a SIGHUP, once per burst', async () => {
    const t = setup('hosts:\n  - a\n');
    t.live.start();
    try {
      const tmp = join(t.dir, '.hosts.yaml.swp');
      writeFileSync(tmp, 'hosts:\n  - a\n  - b\n');
      renameSync(tmp, t.file);
      await waitFor(() => t.diffs.length === 1, 'the rename to be read as a first change');
      expect(names(t.diffs[0])).toEqual(['+b']);
      writeFileSync(t.file, 'hosts:\n  - a\n  - b\n  - c\n');
      process.kill(process.pid, 'SIGHUP');
      await waitFor(() => t.diffs.length === 2, 'the SIGHUP to be read as a second change');
      expect(names(t.diffs[1])).toEqual(['+c']);
      // The write's own change notice comes after the SIGHUP's reading: it finds nothing new.
      await new Promise((r) => setTimeout(r, 100));
      expect(t.diffs).toHaveLength(2);
    } finally {
      await t.live.stop();
    }
  });
});

async function waitFor(check: () => boolean, what: string): Promise<void> {
  if (!(await eventually(check, WAIT_MS))) throw new Error(`still waiting, after ${WAIT_MS} ms, for ${what}`);
}
