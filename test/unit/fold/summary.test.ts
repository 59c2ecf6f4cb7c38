import { describe, expect, it } from 'vitest';
import { endSummary, summarise, tasksOfRecords } from '../../../src/fold/summary.js';
import type { RunFigures, TaskList } from '../../../src/fold/types.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { Scheduler, type TaskRecord } from '../../../src/scheduler/scheduler.js';

const plan = (spec: string, chunk?: number): Plan =>
  new Plan({ frames: parseFrameSpec(spec), exec: 'r', args: [], ins: [], outs: [], hostNames: ['x'], chunk });

/** A record as the scheduler leaves it at the end of a run. */
function record(r: TaskRecord, more: Partial<TaskRecord>): TaskRecord {
  return Object.assign(r, more);
}

describe('tasksOfRecords', () => {
  it('says of a done task its winner and its times from the clock origin, rounded to the millisecond', () => {
    const [t] = plan('1').tasks;
    const done = record(Scheduler.record(t!), {
      status: 'done',
      host: 'a',
      attempts: 2,
      copies: 3,
      seconds: 1.23456,
      startedAt: 10_500.1234,
      endedAt: 12_000,
      won: { host: 'a', attempt: 3 },
      failure: { stage: 'render', exitCode: 1, signal: 'SIGTERM', timedOut: true, stalled: true, notFound: false },
      error: 'an earlier failure',
      log: 'logs/1.log',
    });
    expect(tasksOfRecords([done], 10_000)).toEqual({
      tasks: [
        {
          frame: 1,
          tile: null,
          status: 'done',
          host: 'a',
          attempts: 2,
          copies: 3,
          won: { host: 'a', attempt: 3 },
          exitCode: 0,
          signal: null,
          timedOut: false,
          stalled: false,
          lost: 0,
          cancelled: false,
          seconds: 1.235,
          start: 0.5,
          end: 2,
        },
      ],
    });
    // Without the clock's origin, no times.
    expect(tasksOfRecords([done]).tasks[0]).not.toHaveProperty('start');
    expect(tasksOfRecords([done]).tasks[0]).not.toHaveProperty('end');
  });

  it('says of a failed task how it failed, its error and its log; of a cancelled one, that it was', () => {
    const [a, b, c] = plan('1,3').tasks;
    const failure = {
      stage: 'render' as const,
      exitCode: 3,
      signal: null,
      timedOut: false,
      stalled: true,
      notFound: false,
    };
    const failed = record(Scheduler.record(a!), {
      status: 'failed',
      attempts: 3,
      failure,
      error: 'exit 3',
      log: 'l/1.log',
      lost: 1,
    });
    const cancelled = record(Scheduler.record(b!), { status: 'cancelled', error: 'stopped', log: 'l/2.log' });
    const skipped = record(Scheduler.record(c!), { status: 'skipped', error: 'not shown' });
    const [f, x, s] = tasksOfRecords([failed, cancelled, skipped]).tasks;
    expect(f).toMatchObject({
      status: 'failed',
      exitCode: 3,
      signal: null,
      stalled: true,
      timedOut: false,
      stage: 'render',
    });
    expect(f).toMatchObject({ error: 'exit 3', log: 'l/1.log', lost: 1, cancelled: false, attempts: 3 });
    expect(x).toMatchObject({ status: 'cancelled', cancelled: true, error: 'stopped', exitCode: null });
    expect(x).not.toHaveProperty('log');
    expect(x).not.toHaveProperty('stage');
    expect(s).not.toHaveProperty('error');
    expect(s).not.toHaveProperty('won');
  });

  it('with --chunk: lists chunks by their frames, with their last frame and count, and the frames not done in order', () => {
    const p = plan('1,10', 4);
    const chunks = [p.chunkTask(9, 2, 2), p.chunkTask(1, 4, 0), p.chunkTask(5, 4, 1)];
    const records = [
      record(Scheduler.record(chunks[0]!), { status: 'failed' }),
      record(Scheduler.record(chunks[1]!), { status: 'done' }),
      record(Scheduler.record(chunks[2]!), { status: 'cancelled' }),
    ];
    const list = tasksOfRecords(records);
    expect(list.tasks.map((t) => [t.frame, t.last, t.count, t.label])).toEqual([
      [1, 4, 4, 'frames 1-4'],
      [5, 8, 4, 'frames 5-8'],
      [9, 10, 2, 'frames 9-10'],
    ]);
    expect(list.missingFrames).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('with --chunk and a negative step: lists chunks downwards', () => {
    const p = plan('10,1', 4);
    const records = [p.chunkTask(2, 2, 1), p.chunkTask(10, 4, 0)].map((t) =>
      record(Scheduler.record(t), { status: 'pending' }),
    );
    const list = tasksOfRecords(records);
    expect(list.tasks.map((t) => t.frame)).toEqual([10, 2]);
    expect(list.missingFrames).toEqual([1, 2, 7, 8, 9, 10]);
  });
});

describe('summarise', () => {
  const figures: RunFigures = {
    hosts: [
      {
        name: 'a',
        state: 'done',
        slots: 2,
        tasksDone: 1,
        failures: 0,
        lost: 1,
        meanSeconds: 1.5,
        medianSeconds: 1.5,
        bytesIn: 10,
        bytesOut: 20,
      },
    ],
    makespan: 4,
    ideal: 2,
    taskSeconds: 4,
    slots: 2,
  };
  const list: TaskList = {
    tasks: [
      {
        frame: 1,
        tile: null,
        status: 'done',
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
      },
    ],
  };

  it('adds the hosts their figures, and the run its own, rounding its seconds', () => {
    const s = summarise(
      list,
      [
        { name: 'a', state: 'done', tasksDone: 1, failures: 0 },
        { name: 'b', state: 'unreachable', tasksDone: 0, failures: 0, message: 'refused' },
      ],
      { exitCode: 0, startedAt: new Date(0), seconds: 1.23456, errors: ['e'], figures },
    );
    expect(s).toEqual({
      ok: true,
      exitCode: 0,
      startedAt: '1970-01-01T00:00:00.000Z',
      seconds: 1.235,
      tasks: list.tasks,
      hosts: [
        {
          name: 'a',
          state: 'done',
          tasksDone: 1,
          failures: 0,
          slots: 2,
          lost: 1,
          meanSeconds: 1.5,
          medianSeconds: 1.5,
          bytesIn: 10,
          bytesOut: 20,
        },
        { name: 'b', state: 'unreachable', tasksDone: 0, failures: 0, message: 'refused' },
      ],
      errors: ['e'],
      figures: { makespan: 4, ideal: 2, taskSeconds: 4, slots: 2 },
    });
  });

  it('is not ok with any other exit status, and has no figures without them', () => {
    const s = summarise(list, [], { exitCode: 2, startedAt: new Date(0), seconds: 0, errors: [] });
    expect(s.ok).toBe(false);
    expect(s).not.toHaveProperty('figures');
    expect(s).not.toHaveProperty('missingFrames');
  });

  it('reads the records of a run with --chunk, with their frames not done', () => {
    const p = plan('1,4', 2);
    const records = [p.chunkTask(1, 2, 0), p.chunkTask(3, 2, 1)].map((t, i) =>
      record(Scheduler.record(t), { status: i === 0 ? 'done' : 'failed' }),
    );
    expect(
      summarise(records, [], { exitCode: 1, startedAt: new Date(0), seconds: 0, errors: [] }).missingFrames,
    ).toEqual([3, 4]);
  });
});

describe('endSummary', () => {
  it('drops the task list and the frames for counts of tasks and of frames', () => {
    const p = plan('1,6', 3);
    const records = [p.chunkTask(1, 3, 0), p.chunkTask(4, 3, 1)].map((t, i) =>
      record(Scheduler.record(t), { status: i === 0 ? 'done' : 'failed' }),
    );
    const s = summarise(records, [], { exitCode: 1, startedAt: new Date(0), seconds: 2, errors: [] });
    s.frames = [];
    const e = endSummary(s);
    expect(e).not.toHaveProperty('tasks');
    expect(e).not.toHaveProperty('frames');
    expect(e).toMatchObject({ ok: false, exitCode: 1, seconds: 2, missingFrames: [4, 5, 6] });
    expect(e.counts).toEqual({ pending: 0, running: 0, done: 1, failed: 1, skipped: 0, cancelled: 0 });
    expect(e.frameCounts).toEqual({ pending: 0, running: 0, done: 3, failed: 3, skipped: 0, cancelled: 0 });
  });
});

describe('tasksOfRecords, a list that mixes chunks and single frames', () => {
  it('lists the frames not done of both', () => {
    const p = plan('1,4', 2);
    const single = plan('9').tasks[0]!;
    const records = [
      record(Scheduler.record(p.chunkTask(1, 2, 0)), { status: 'failed' }),
      record(Scheduler.record(single), { status: 'failed' }),
      record(Scheduler.record(p.chunkTask(3, 2, 1)), { status: 'done' }),
    ];
    expect(tasksOfRecords(records).missingFrames).toEqual([1, 2, 9]);
  });
});
