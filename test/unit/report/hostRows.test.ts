import { describe, expect, it } from 'vitest';
import {
  foldHostView,
  hostLine,
  hostRowCap,
  hostRows,
  MAX_HOST_ROWS,
  newHostView,
  type HostView,
} from '../../../src/views/progress.js';
import type { SchedulerEvent, TaskRef } from '../../../src/scheduler/events.js';

function host(name: string, state: string, tasksDone = 0): HostView {
  return { ...newHostView(name), state, tasksDone };
}

function task(frame: number): TaskRef {
  return { index: frame - 1, frame, tile: null, label: `frame ${frame}` };
}

/** Hosts n01..nN, ok, each with as many tasks done as its number. */
function farm(n: number): HostView[] {
  return Array.from({ length: n }, (_, i) => host(`n${String(i + 1).padStart(2, '0')}`, 'ok', i + 1));
}

describe('hostRows', () => {
  it('gives every host its row, in the order they appeared, when they fit', () => {
    expect(hostRows([host('b', 'ok', 2), host('a', 'connecting')], 5)).toEqual([
      'b: idle, 2 done',
      'a: connecting, 0 done',
    ]);
    expect(hostRows(farm(5), 5)).toHaveLength(5);
    expect(hostRows([], 5)).toEqual([]);
  });

  it('shows cap - 1 hosts and counts the rest by state, the most common first', () => {
    const hosts = farm(60);
    hosts[30]!.state = 'lost';
    hosts[45]!.state = 'lost';
    hosts[59]!.state = 'removed';
    const rows = hostRows(hosts, 20);
    expect(rows).toHaveLength(20);
    // The hosts in trouble first, then the changing one, then the first ok ones; each in the order they appeared.
    expect(rows.slice(0, 19).map((r) => r.split(':')[0])).toEqual([
      ...hosts.slice(0, 16).map((h) => h.name),
      'n31',
      'n46',
      'n60',
    ]);
    expect(rows[19]).toBe('and 41 more hosts: 41 ok');
  });

  it('counts hidden hosts of several states', () => {
    const hosts = [host('a', 'lost'), ...farm(3), host('x', 'connecting'), host('y', 'connecting'), host('z', 'done')];
    expect(hostRows(hosts, 3)).toEqual([
      'a: lost, 0 done',
      'x: connecting, 0 done',
      'and 5 more hosts: 3 ok, 1 connecting, 1 done',
    ]);
  });

  it('leaves a single row to the count', () => {
    expect(hostRows(farm(3), 1)).toEqual(['3 hosts: 3 ok']);
  });

  it('a host added during the run takes the next row once it is told (its first host-state), and keeps it up to date', () => {
    const views = new Map<string, HostView>([['a', newHostView('a')]]);
    const events: SchedulerEvent[] = [
      { type: 'host-state', at: 0, host: 'a', state: 'ok' },
      { type: 'host-state', at: 1, host: 'late', state: 'connecting' },
      { type: 'host-state', at: 2, host: 'late', state: 'ok' },
      {
        type: 'attempt-queued',
        at: 3,
        task: task(4),
        attempt: 1,
        host: 'late',
        lane: 0,
        behind: false,
        speculative: false,
      },
      { type: 'attempt-started', at: 4, task: task(4), attempt: 1, host: 'late', lane: 0 },
    ];
    for (const e of events) foldHostView(views, e);
    expect(hostRows([...views.values()], 5)).toEqual(['a: idle, 0 done', 'late: rendering 4, 0 done']);
  });
});

describe('hostLine', () => {
  it('says a removed host was removed, and what it still renders before it leaves', () => {
    const h = host('e2', 'removed', 3);
    h.message = 'removed from the inventory: it takes no new task and leaves once its running ones end';
    h.rendering.set('6/1', { task: task(7), lane: 0 });
    expect(hostLine(h)).toBe(
      'e2: removed, rendering 7, 3 done (removed from the inventory: it takes no new task and leaves once its running ones end)',
    );
    h.rendering.clear();
    expect(hostLine(h)).toMatch(/^e2: removed, 3 done \(/);
  });
});

describe('hostRowCap', () => {
  it('keeps the overall line and the cursor line on screen, within the most rows the view has', () => {
    expect(hostRowCap(40)).toBe(MAX_HOST_ROWS);
    expect(hostRowCap(12)).toBe(9);
    expect(hostRowCap(3)).toBe(1);
    expect(hostRowCap(undefined)).toBe(MAX_HOST_ROWS);
  });
});

describe('hostLine with untrusted text', () => {
  it("shows a host's name and message with their control characters made visible", () => {
    const h = { ...host('evil\x1b[2J', 'unreachable'), message: 'banner \x1b]0;owned\x07' };
    expect(hostLine(h)).toBe('evil\\x1b[2J: unreachable, 0 done (banner \\x1b]0;owned\\x07)');
  });
});
