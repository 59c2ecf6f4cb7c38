import { describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { PlainProgress } from '../../../src/views/progress.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import { Scheduler, type SchedulerEvent, type TaskRecord } from '../../../src/scheduler/scheduler.js';

function tiledScheduler(frames: string, cols: number): Scheduler {
  const plan = new Plan({
    frames: parseFrameSpec(frames),
    exec: 'r',
    args: [],
    ins: [],
    outs: ['t%{tile}.png=tiles/f%d-t%{tile}.png'],
    tiles: { grid: { cols, rows: 1 }, size: { width: cols, height: 1 } },
    hostNames: ['h'],
  });
  return new Scheduler(
    plan.tasks.map((t) => Scheduler.record(t)),
    { retries: 0, maxConsecutiveFailures: 3, now: () => 0 },
  );
}

/** The event a task's winning attempt ends with, as the scheduler sends it. */
function done(r: TaskRecord): SchedulerEvent {
  const { index, frame, tile, label } = r.task;
  return Object.freeze({
    type: 'attempt-ended',
    at: 0,
    task: { index, frame, tile: tile?.index ?? null, label },
    attempt: 1,
    host: 'h',
    outcome: 'done',
    ignored: false,
    attempts: 1,
    settled: 'done',
    seconds: 1,
    exitCode: 0,
    signal: null,
    timedOut: false,
    stalled: false,
    bytesIn: 0,
    bytesOut: 0,
  } as const);
}

/** The run's fold of the scheduler's events, subscribed before the view, as a run does. */
function folded(s: Scheduler): TaskFold {
  const fold = new TaskFold();
  fold.begin(s.records);
  s.on('event', (e) => fold.add(e));
  return fold;
}

describe('PlainProgress', () => {
  it("counts a frame's tiles as they end, from the ones already complete", () => {
    const s = tiledScheduler('1,2', 3);
    s.records[0]!.status = 'skipped';
    const lines: string[] = [];
    new PlainProgress((l) => lines.push(l)).attach(s, { fold: folded(s), unit: 'tiles' });
    for (const i of [1, 4, 2]) {
      const r = s.records[i]!;
      r.status = 'done';
      s.emit('event', done(r));
    }
    expect(
      lines.filter((l) => l.includes(' done on ')).map((l) => /\((\d+\/\d+ tiles of frame \d+)\)/.exec(l)?.[1]),
    ).toEqual(['2/3 tiles of frame 1', '1/3 tiles of frame 2', '3/3 tiles of frame 1']);
  });

  // 10,000 tiles ending one by one: the view's work per event must not grow with the frame.
  it('keeps up with a frame of the largest grid', () => {
    const s = tiledScheduler('1', 10_000);
    let last = '';
    new PlainProgress((l) => (last = l)).attach(s, { fold: folded(s), unit: 'tiles' });
    for (const r of s.records) {
      r.status = 'done';
      s.emit('event', done(r));
    }
    expect(last).toContain('(10000/10000 tiles of frame 1)');
  });
});
