import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { parseGrid, parseSize } from '../../../src/plan/tiles.js';
import { RunLog } from '../../../src/report/runLog.js';
import type { RunSummary, TaskSummary } from '../../../src/fold/types.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-runlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const plan = new Plan({
  frames: parseFrameSpec('1,3'),
  exec: 'r',
  args: [],
  ins: [],
  outs: ['t%d-%{tile}.png'],
  tiles: { grid: parseGrid('2x2'), size: parseSize('64x64') },
  stitch: 'f%d.png',
  hostNames: ['a'],
});

function summary(statuses: TaskSummary['status'][]): RunSummary {
  return {
    ok: true,
    exitCode: 0,
    startedAt: '2026-01-01T00:00:00.000Z',
    seconds: 1,
    tasks: statuses.map((status, i) => ({
      frame: i,
      tile: null,
      status,
      host: 'a',
      attempts: 1,
      copies: 1,
      exitCode: 0,
      signal: null,
      timedOut: false,
      stalled: false,
      lost: 0,
      cancelled: false,
      seconds: 1,
    })),
    hosts: [],
    errors: [],
    frames: [{ frame: 1, tiles: 4, tilesDone: 4, output: 'f1.png', status: 'stitched' }],
  };
}

const lines = (path: string): Array<Record<string, unknown>> =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('RunLog', () => {
  it('adds the plan and hosts to run-start, writes frame-stitched, and holds run-end back to the last line with the summary', async () => {
    const path = join(dir, 'a.ndjson');
    let clock = 100;
    const log = new RunLog({
      events: path,
      plan,
      hosts: [{ name: 'a', slots: 3 }],
      startedAt: new Date(0),
      note: () => {},
      now: () => clock,
    });
    log.scheduler({ type: 'run-start', at: 10, tasks: 12, pending: 12 });
    log.scheduler({ type: 'run-end', at: 50, done: 12, failed: 0, cancelled: 0, skipped: 0 });
    // After every task ended: a stitch and the hosts' last states still come before run-end.
    log.frame({ frame: 1, tiles: 4, tilesDone: 4, output: 'f1.png', status: 'stitched' });
    clock = 120;
    log.frame({ frame: 2, tiles: 4, tilesDone: 4, output: 'f2.png', status: 'failed', error: 'bad tile' });
    log.scheduler({ type: 'host-state', at: 130, host: 'a', state: 'done' });
    await log.finish(summary(Array<TaskSummary['status']>(12).fill('done')));
    const got = lines(path);
    expect(got.map((e) => e.type)).toEqual(['run-start', 'frame-stitched', 'frame-stitched', 'host-state', 'run-end']);
    expect(got[0]).toEqual({
      v: 1,
      type: 'run-start',
      at: 10,
      tasks: 12,
      pending: 12,
      startedAt: '1970-01-01T00:00:00.000Z',
      frames: 3,
      tiles: 4,
      hosts: [{ name: 'a', slots: 3 }],
    });
    expect(got[1]).toEqual({
      v: 1,
      type: 'frame-stitched',
      at: 100,
      frame: 1,
      tiles: 4,
      output: 'f1.png',
      status: 'stitched',
    });
    expect(got[2]).toMatchObject({ at: 120, status: 'failed', error: 'bad tile' });
    const end = got[4]!;
    expect(end).toMatchObject({ type: 'run-end', at: 50, done: 12 });
    expect(end.summary).toMatchObject({ ok: true, counts: { done: 12 } });
    expect(end.summary).not.toHaveProperty('tasks');
    expect(end.summary).not.toHaveProperty('frames');
    // The figures saw the run end when the scheduler said so.
    expect(log.figures.figures().makespan).toBe(0.04);
  });

  it('writes a run-start and a run-end for a run whose scheduler never started (every task complete already)', async () => {
    const path = join(dir, 'b.ndjson');
    const log = new RunLog({
      events: path,
      plan,
      hosts: [{ name: 'a', slots: 1 }],
      startedAt: new Date(0),
      note: () => {},
      now: () => 7,
    });
    await log.finish(summary(['skipped', 'skipped']));
    expect(lines(path)).toEqual([
      {
        v: 1,
        type: 'run-start',
        at: 7,
        tasks: 2,
        pending: 0,
        startedAt: '1970-01-01T00:00:00.000Z',
        frames: 3,
        tiles: 4,
        hosts: [{ name: 'a', slots: 1 }],
      },
      expect.objectContaining({ v: 1, type: 'run-end', at: 7, done: 0, failed: 0, cancelled: 0, skipped: 2 }),
    ]);
  });

  it("folds the report's tasks from the scheduler events it is given, from the plan's tasks on", () => {
    const log = new RunLog({ plan, hosts: [], startedAt: new Date(0), note: () => {}, clockOrigin: 500 });
    log.tasks.begin(plan.tasks.map((task) => ({ task, status: task.frame === 1 ? 'skipped' : 'pending' })));
    const task = { index: 4, frame: 2, tile: 0, label: 'frame 2 tile 0' };
    log.scheduler({
      type: 'attempt-queued',
      at: 1000,
      task,
      attempt: 1,
      host: 'a',
      lane: 0,
      behind: false,
      speculative: false,
    });
    log.scheduler({ type: 'attempt-started', at: 1500, task, attempt: 1, host: 'a', lane: 0 });
    log.scheduler({
      type: 'attempt-ended',
      at: 4000,
      task,
      attempt: 1,
      host: 'a',
      outcome: 'failed',
      message: 'exit 2',
      ignored: false,
      attempts: 1,
      settled: 'failed',
      seconds: 2.5,
      exitCode: 2,
      signal: null,
      timedOut: false,
      stalled: false,
      stage: 'render',
      bytesIn: 0,
      bytesOut: 0,
      log: 'l/4.log',
    });
    log.scheduler({
      type: 'task-done',
      at: 4000,
      task,
      status: 'failed',
      host: 'a',
      attempts: 1,
      winner: null,
      copies: 1,
      error: 'exit 2',
    });
    const { tasks } = log.tasks.list();
    expect(tasks.map((t) => t.status)).toEqual([
      ...Array<string>(4).fill('skipped'),
      'failed',
      ...Array<string>(7).fill('pending'),
    ]);
    expect(tasks[4]).toEqual({
      frame: 2,
      tile: 0,
      status: 'failed',
      host: 'a',
      attempts: 1,
      copies: 1,
      exitCode: 2,
      signal: null,
      timedOut: false,
      stalled: false,
      lost: 0,
      cancelled: false,
      stage: 'render',
      seconds: 2.5,
      start: 1,
      end: 3.5,
      error: 'exit 2',
      log: 'l/4.log',
    });
  });

  it('keeps figures without a stream', async () => {
    const log = new RunLog({ plan, hosts: [], startedAt: new Date(0), note: () => {} });
    log.scheduler({ type: 'host-state', at: 0, host: 'x', state: 'ok' });
    await log.finish(summary([]));
    expect(log.figures.figures().hosts.map((h) => h.name)).toEqual(['x']);
  });
});
