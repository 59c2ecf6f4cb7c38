import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { parseGrid, parseSize } from '../../../src/plan/tiles.js';
import { tasksOfRecords } from '../../../src/fold/summary.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import {
  Scheduler,
  type AttemptOutcome,
  type SchedulerHost,
  type TaskRecord,
} from '../../../src/scheduler/scheduler.js';

// Edges of TaskFold's Settled (the plan's tasks done for good kept as numbers) that taskFold.test.ts does
// not reach: a rerun where every task is skipped, a done task the live page asks to retry, and a run that
// stops on an error after some tasks are done. The records-based list (tasksOfRecords) is the oracle.

function plan(spec: string, tiles?: string): Plan {
  const t = tiles ? { grid: parseGrid(tiles), size: parseSize('64x64') } : undefined;
  return new Plan({
    frames: parseFrameSpec(spec),
    exec: 'r',
    args: [],
    ins: [],
    outs: [t ? 'o/t%d-%{tile}.png=t%d-%{tile}.png' : 'o/f%d.png=f%d.png'],
    hostNames: ['a'],
    tiles: t,
  });
}

function records(p: Plan, skipped: (t: Task) => boolean = () => false): TaskRecord[] {
  return p.tasks.map((t) => {
    const r = Scheduler.record(t);
    if (skipped(t)) r.status = 'skipped';
    return r;
  });
}

/** A host of fake time: every render takes `ms`, frame `fails` fails. */
function host(name: string, ms: number, fails?: number): SchedulerHost {
  return {
    name,
    slots: 1,
    async run(task, _attempt, signal, slot): Promise<AttemptOutcome> {
      slot.started();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (signal.aborted) return { kind: 'cancelled' };
      return task.frame === fails ? { kind: 'failed', message: 'boom' } : { kind: 'done' };
    },
  };
}

function watched(recs: TaskRecord[]) {
  let drift = 0;
  const s = new Scheduler(recs, { retries: 0, maxConsecutiveFailures: 10, now: () => Date.now() + (drift += 0.7351) });
  const origin = Date.now() - 3.21;
  const fold = new TaskFold(origin);
  fold.begin(recs);
  s.on('event', (e) => fold.add(e));
  const check = (): void => {
    const want = tasksOfRecords(s.records, origin);
    expect(fold.list()).toStrictEqual(want);
    expect(JSON.stringify(fold.list())).toBe(JSON.stringify(want));
  };
  return { s, fold, check };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TaskFold: settled tasks at the edges', () => {
  it('a rerun where every task is skipped', async () => {
    const { s, check } = watched(records(plan('1,5'), () => true));
    s.expectHost('a');
    s.addHost(host('a', 10));
    await vi.runAllTimersAsync();
    await s.drained();
    check();
    expect(s.records.every((r) => r.status === 'skipped')).toBe(true);
  });

  it('tiles, some skipped: a done tile cannot be retried from the live page, a failed one can and is then done', async () => {
    let fails: number | undefined = 2;
    const recs = records(plan('1,3', '2x2'), (t) => t.frame === 3 && t.tile?.index === 1);
    const { s, check } = watched(recs);
    s.expectHost('a');
    s.addHost({ ...host('a', 10), run: (...args) => host('a', 10, fails).run(...args) });
    let retried = -1;
    for (let i = 0; i < 200 && !s.done; i++) {
      await vi.advanceTimersByTimeAsync(7);
      check();
      const failed = s.records.findIndex((r) => r.status === 'failed');
      if (retried < 0 && failed >= 0) {
        // Done tiles are kept as numbers by the fold: a retry of one is refused, and changes nothing.
        const done = s.records.findIndex((r) => r.status === 'done');
        expect(s.retry(done)).toMatch(/is done, not failed/);
        check();
        fails = undefined;
        expect(s.retry(failed)).toBeUndefined();
        retried = failed;
        check();
      }
    }
    await s.drained();
    check();
    expect(retried).toBeGreaterThanOrEqual(0);
    expect(s.records[retried]).toMatchObject({ status: 'done', attempts: 2 });
    // The tile of frame 2 that had started when the host was fixed fails too, and stays failed.
    expect(s.records.filter((r) => r.status === 'failed').length).toBeGreaterThan(0);
    expect(s.records.filter((r) => r.status === 'skipped')).toHaveLength(1);
  });

  it('a run stopped on an error after some tasks are done: the waiting ones are cancelled, the done ones kept', async () => {
    const recs = records(plan('1,6'), (t) => t.frame === 6);
    const { s, fold, check } = watched(recs);
    s.expectHost('a');
    s.addHost(host('a', 10));
    await vi.advanceTimersByTimeAsync(25);
    check();
    expect(s.records.filter((r) => r.status === 'done').length).toBeGreaterThan(0);
    // As run.ts does when the run fails (cancelWaiting after the scheduler cancelled what it had).
    s.cancel();
    await vi.runAllTimersAsync();
    await s.drained();
    fold.cancelWaiting();
    for (const r of s.records) if (r.status === 'pending') r.status = 'cancelled';
    check();
    expect(fold.list().tasks.map((t) => t.status)).toEqual([
      'done',
      'done',
      'cancelled',
      'cancelled',
      'cancelled',
      'skipped',
    ]);
  });
});
