import { describe, expect, it } from 'vitest';
import { countTasks, noCounts, TaskFold, type FoldTask, type StatusCounts } from '../../../src/fold/taskFold.js';
import type { TaskRef } from '../../../src/scheduler/events.js';
import {
  attemptEnded,
  attemptQueued,
  attemptStarted,
  chunkFormed,
  chunkSplit,
  speculationLost,
  taskDone,
  taskRetried,
} from '../../helpers/events.js';

// What the views read of TaskFold besides its list (taskFold.test.ts checks the list and the counts by status
// against the scheduler's records): how a task stands (the page's grid), the `rendering` counts (the progress
// line), the tiles done per frame, a run stopped on an error, and the events built by hand to reach each edge.

/** Task `index` of a plan of whole frames: frame index + 1, or with `tile` that tile of frame `frame`. */
function frameTask(index: number, frame = index + 1, tile: number | null = null): FoldTask {
  return { index, frame, label: `frame ${frame}`, chunk: undefined, tile: tile === null ? null : { index: tile } };
}

function refOf(t: FoldTask): TaskRef {
  return { index: t.index, frame: t.frame, tile: t.tile?.index ?? null, label: t.label };
}

function counts(over: Partial<StatusCounts>): StatusCounts {
  return { ...noCounts(), ...over };
}

function fold(tasks: FoldTask[], skipped: number[] = [], origin?: number): TaskFold {
  const f = new TaskFold(origin);
  f.begin(tasks.map((task) => ({ task, status: skipped.includes(task.index) ? 'skipped' : 'pending' })));
  return f;
}

describe('TaskFold.standing', () => {
  it('a task no plan or event names is undefined; planned ones are pending or skipped, not rendering', () => {
    const f = fold([frameTask(0), frameTask(1)], [1]);
    expect(f.standing(2)).toBeUndefined();
    expect(f.standing(0)).toEqual({ status: 'pending', rendering: false, lastFailed: false });
    expect(f.standing(1)).toEqual({ status: 'skipped', rendering: false, lastFailed: false });
  });

  it('queued is running but not rendering; started is rendering; ended failed and retried is pending with lastFailed', () => {
    const t = frameTask(0);
    const f = fold([t]);
    const task = refOf(t);
    f.add(attemptQueued({ task, host: 'a' }));
    expect(f.standing(0)).toEqual({ status: 'running', rendering: false, lastFailed: false });
    f.add(attemptStarted({ task, host: 'a' }));
    expect(f.standing(0)).toEqual({ status: 'running', rendering: true, lastFailed: false });
    f.add(attemptEnded({ task, host: 'a', outcome: 'failed', message: 'boom' }));
    expect(f.standing(0)).toEqual({ status: 'pending', rendering: false, lastFailed: true });
    f.add(taskRetried({ task }));
    expect(f.standing(0)).toEqual({ status: 'pending', rendering: false, lastFailed: true });
  });

  it('a task done for good is kept as numbers and stands done (not rendering, not failed)', () => {
    const t = frameTask(0);
    const f = fold([t], [], 0);
    const task = refOf(t);
    f.add(attemptQueued({ task, host: 'a', at: 1000 }));
    f.add(attemptStarted({ task, host: 'a', at: 1500 }));
    f.add(attemptEnded({ task, host: 'a', outcome: 'done', at: 3000 }));
    f.add(taskDone({ task, status: 'done', host: 'a', at: 3000 }));
    expect(f.standing(0)).toEqual({ status: 'done', rendering: false, lastFailed: false });
    expect(f.list().tasks[0]).toMatchObject({
      status: 'done',
      host: 'a',
      won: { host: 'a', attempt: 1 },
      start: 1.5,
      end: 3,
    });
    // Settled: a late event naming it changes nothing.
    f.add(attemptQueued({ task, host: 'b', attempt: 2 }));
    expect(f.standing(0)).toEqual({ status: 'done', rendering: false, lastFailed: false });
  });
});

describe('TaskFold.counts: rendering', () => {
  it('counts tasks and frames whose renderer runs now, not those queued, ended, or stopped for a faster copy', () => {
    const t0 = frameTask(0);
    const t1 = frameTask(1);
    const f = fold([t0, t1]);
    const [r0, r1] = [refOf(t0), refOf(t1)];
    expect(f.counts().tasks).toEqual(counts({ total: 2, pending: 2 }));
    f.add(attemptQueued({ task: r0, host: 'a' }));
    f.add(attemptQueued({ task: r1, host: 'a', lane: 1 }));
    expect(f.counts().tasks).toEqual(counts({ total: 2, running: 2 }));
    f.add(attemptStarted({ task: r0, host: 'a' }));
    expect(f.counts().tasks).toEqual(counts({ total: 2, running: 2, rendering: 1 }));
    expect(f.counts().frames).toEqual(counts({ total: 2, running: 2, rendering: 1 }));
    // A speculative copy of task 0 on b starts: still one task rendering.
    f.add(attemptQueued({ task: r0, host: 'b', attempt: 2, speculative: true }));
    f.add(attemptStarted({ task: r0, host: 'b', attempt: 2 }));
    expect(f.counts().tasks.rendering).toBe(1);
    expect(f.standing(0)?.rendering).toBe(true);
    // The first copy is stopped to make room for the faster one: the copy renders on.
    f.add(speculationLost({ task: r0, host: 'a', attempt: 1, winner: { host: 'b', attempt: 2 }, replaced: true }));
    expect(f.counts().tasks.rendering).toBe(1);
    expect(f.standing(0)).toMatchObject({ status: 'running', rendering: true });
    // The copy ends too soon (lost): with only the stopped one left the task is pending and renders no more.
    f.add(attemptEnded({ task: r0, host: 'b', attempt: 2, outcome: 'lost', message: 'gone', attempts: 2 }));
    expect(f.standing(0)).toEqual({ status: 'pending', rendering: false, lastFailed: false });
    expect(f.counts().tasks).toEqual(counts({ total: 2, running: 1, pending: 1 }));
    f.add(attemptStarted({ task: r1, host: 'a', lane: 1 }));
    expect(f.counts().tasks).toEqual(counts({ total: 2, running: 1, pending: 1, rendering: 1 }));
  });

  it('a speculative copy that started second renders on when the first ends, until it is stopped', () => {
    const t = frameTask(0);
    const f = fold([t]);
    const task = refOf(t);
    f.add(attemptQueued({ task, host: 'a' }));
    f.add(attemptStarted({ task, host: 'a' }));
    f.add(attemptQueued({ task, host: 'b', attempt: 2, speculative: true }));
    f.add(attemptStarted({ task, host: 'b', attempt: 2 }));
    // The second copy is the one stopped: the first renders on.
    f.add(speculationLost({ task, host: 'b', attempt: 2, winner: { host: 'a', attempt: 1 }, replaced: true }));
    expect(f.standing(0)).toMatchObject({ status: 'running', rendering: true });
    f.add(attemptEnded({ task, host: 'a', outcome: 'failed', message: 'x', settled: null }));
    // The first failed; the one left is being stopped: nothing renders, the task waits.
    expect(f.standing(0)).toEqual({ status: 'pending', rendering: false, lastFailed: true });
    expect(f.counts().tasks.rendering).toBe(0);
  });

  it('a speculation-lost without `replaced` (the task is done by another) leaves its attempt rendering until it ends', () => {
    const t = frameTask(0);
    const f = fold([t]);
    const task = refOf(t);
    f.add(attemptQueued({ task, host: 'a' }));
    f.add(attemptStarted({ task, host: 'a' }));
    f.add(speculationLost({ task, host: 'a', winner: { host: 'b', attempt: 2 } }));
    expect(f.standing(0)).toMatchObject({ status: 'running', rendering: true });
    expect(f.counts().tasks.rendering).toBe(1);
  });

  it('a chunk counts its frames, rendering too', () => {
    const chunk: FoldTask = {
      index: 0,
      frame: 1,
      label: 'frames 1-4',
      chunk: { first: 1, count: 4, step: 1 },
      tile: null,
    };
    const f = fold([chunk, frameTask(1, 5)]);
    expect(f.counts().frames).toEqual(counts({ total: 5, pending: 5 }));
    const task: TaskRef = { index: 0, frame: 1, tile: null, label: 'frames 1-4', last: 4, count: 4 };
    f.add(attemptQueued({ task, host: 'a' }));
    f.add(attemptStarted({ task, host: 'a' }));
    expect(f.counts().frames).toEqual(counts({ total: 5, pending: 1, running: 4, rendering: 4 }));
    expect(f.counts().tasks).toEqual(counts({ total: 2, pending: 1, running: 1, rendering: 1 }));
  });
});

describe('TaskFold.tilesOf', () => {
  it('per frame, its tiles and those done or complete already; undefined for a frame of no tiles', () => {
    const tasks = [frameTask(0, 1, 0), frameTask(1, 1, 1), frameTask(2, 1, 2), frameTask(3, 2, 0), frameTask(4, 2, 1)];
    const f = fold(tasks, [1]);
    expect(f.tilesOf(1)).toEqual({ done: 1, tiles: 3 });
    expect(f.tilesOf(2)).toEqual({ done: 0, tiles: 2 });
    expect(f.tilesOf(3)).toBeUndefined();
    const task = refOf(tasks[2]!);
    f.add(attemptQueued({ task, host: 'a' }));
    f.add(attemptStarted({ task, host: 'a' }));
    expect(f.tilesOf(1)).toEqual({ done: 1, tiles: 3 });
    f.add(attemptEnded({ task, host: 'a', outcome: 'done' }));
    expect(f.tilesOf(1)).toEqual({ done: 2, tiles: 3 });
    // A copy of the fold's own: changing it changes nothing.
    f.tilesOf(1)!.done = 99;
    f.add(taskDone({ task, status: 'done', host: 'a' }));
    expect(f.tilesOf(1)).toEqual({ done: 2, tiles: 3 });
    expect(f.tilesOf(2)).toEqual({ done: 0, tiles: 2 });
  });

  it('a tile counted done then retried by hand is no longer done', () => {
    const tasks = [frameTask(0, 1, 0), frameTask(1, 1, 1)];
    const f = fold(tasks);
    const task = refOf(tasks[0]!);
    f.add(attemptQueued({ task, host: 'a' }));
    // Done by the attempt, but another copy still running: not settled yet, so the entry lives on.
    f.add(attemptQueued({ task, host: 'b', attempt: 2 }));
    f.add(attemptEnded({ task, host: 'a', outcome: 'done' }));
    expect(f.tilesOf(1)).toEqual({ done: 1, tiles: 2 });
    f.add(taskRetried({ task }));
    expect(f.tilesOf(1)).toEqual({ done: 0, tiles: 2 });
  });
});

describe('TaskFold.begin and cancelWaiting', () => {
  it('only the first begin counts', () => {
    const f = fold([frameTask(0), frameTask(1)], [0]);
    f.begin([{ task: frameTask(0), status: 'pending' }]);
    expect(f.counts().tasks).toEqual(counts({ total: 2, pending: 1, skipped: 1 }));
    expect(f.list().tasks.map((t) => t.status)).toEqual(['skipped', 'pending']);
  });

  it('a run stopped on an error: pending tasks (named or not) are cancelled, the rest are kept', () => {
    const tasks = [frameTask(0), frameTask(1), frameTask(2), frameTask(3), frameTask(4)];
    const f = fold(tasks, [4]);
    const [r0, r1, r2] = tasks.map(refOf);
    f.add(attemptQueued({ task: r0!, host: 'a' }));
    f.add(attemptEnded({ task: r0!, host: 'a', outcome: 'done' }));
    f.add(taskDone({ task: r0!, status: 'done', host: 'a' }));
    f.add(attemptQueued({ task: r1!, host: 'a' }));
    f.add(attemptQueued({ task: r2!, host: 'a', lane: 1 }));
    f.add(attemptEnded({ task: r2!, host: 'a', outcome: 'failed', message: 'boom' }));
    f.cancelWaiting();
    expect(f.list().tasks.map((t) => t.status)).toEqual(['done', 'running', 'cancelled', 'cancelled', 'skipped']);
    expect(f.list().tasks[2]).toMatchObject({ cancelled: true, error: 'boom' });
    expect(f.counts().tasks).toEqual(counts({ total: 5, done: 1, running: 1, cancelled: 2, skipped: 1 }));
    expect(f.standing(3)).toEqual({ status: 'cancelled', rendering: false, lastFailed: false });
    expect(countTasks(f.list().tasks)).toEqual({
      tasks: { ...f.counts().tasks, rendering: 0 },
      frames: { ...f.counts().frames, rendering: 0 },
    });
  });
});

describe('TaskFold edges of events', () => {
  it('a released attempt ends nothing: the task runs on, its outputs coming in', () => {
    const t = frameTask(0);
    const f = fold([t], [], 0);
    const task = refOf(t);
    f.add(attemptQueued({ task, host: 'a', at: 1000 }));
    f.add(attemptStarted({ task, host: 'a', at: 1000 }));
    f.add(attemptEnded({ task, host: 'a', outcome: 'released', at: 2000 }));
    expect(f.standing(0)).toEqual({ status: 'running', rendering: true, lastFailed: false });
    expect(f.list().tasks[0]).toMatchObject({ status: 'running', seconds: 0, start: 1 });
    expect(f.list().tasks[0]).not.toHaveProperty('end');
  });

  it('an attempt that never started is timed from when it ended; a lost one names its error and is counted lost', () => {
    const t = frameTask(0);
    const f = fold([t], [], 0);
    const task = refOf(t);
    f.add(attemptEnded({ task, host: 'a', outcome: 'lost', message: 'connection reset', at: 4000 }));
    expect(f.list().tasks[0]).toMatchObject({
      status: 'pending',
      lost: 1,
      seconds: 0,
      error: 'connection reset',
      end: 4,
    });
  });

  it('an ignored (losing) copy ends without touching the times, the error or the status', () => {
    const t = frameTask(0);
    const f = fold([t], [], 0);
    const task = refOf(t);
    f.add(attemptQueued({ task, host: 'a', at: 1000 }));
    f.add(attemptQueued({ task, host: 'b', attempt: 2, at: 2000 }));
    f.add(attemptEnded({ task, host: 'b', attempt: 2, outcome: 'done', at: 3000, attempts: 2 }));
    f.add(attemptEnded({ task, host: 'a', outcome: 'failed', message: 'late', ignored: true, at: 5000 }));
    const s = f.list().tasks[0]!;
    expect(s).toMatchObject({ status: 'done', host: 'b', seconds: 1, start: 2, end: 3, attempts: 2 });
    expect(s).not.toHaveProperty('error');
  });

  it('chunk-formed carries the failures of the queued chunk to the part a slot took', () => {
    const whole: FoldTask = {
      index: 0,
      frame: 1,
      label: 'frames 1-10',
      chunk: { first: 1, count: 10, step: 1 },
      tile: null,
    };
    const f = fold([whole]);
    const from: TaskRef = { index: 0, frame: 1, tile: null, label: 'frames 1-10', last: 10, count: 10 };
    f.add(attemptQueued({ task: from, host: 'a' }));
    f.add(
      attemptEnded({
        task: from,
        host: 'a',
        outcome: 'failed',
        message: 'died',
        log: 'l.log',
        stage: 'render',
        exitCode: 4,
        settled: null,
      }),
    );
    const part: TaskRef = { index: 1, frame: 1, tile: null, label: 'frames 1-3', last: 3, count: 3 };
    const rest: TaskRef = { index: 0, frame: 4, tile: null, label: 'frames 4-10', last: 10, count: 7 };
    f.add(chunkFormed({ from, task: part, rest }));
    const tasks = f.list().tasks;
    expect(tasks.map((t) => [t.frame, t.last, t.count, t.status])).toEqual([
      [1, 3, 3, 'pending'],
      [4, 10, 7, 'pending'],
    ]);
    expect(tasks[0]).toMatchObject({ attempts: 1, error: 'died', exitCode: 4, stage: 'render' });
    expect(f.standing(1)).toEqual({ status: 'pending', rendering: false, lastFailed: true });
    expect(f.counts().frames).toEqual(counts({ total: 10, pending: 10 }));
    expect(f.counts().tasks).toEqual(counts({ total: 2, pending: 2 }));
  });
});

describe('TaskFold: what is kept of a task settled, and chunk events counted at once', () => {
  const chunkTask = (index: number, first: number, count: number, step = 1): FoldTask => ({
    index,
    frame: first,
    label: `chunk ${index}`,
    chunk: { first, count, step },
    tile: null,
  });
  const chunkOf = (index: number, frame: number, last: number, count: number): TaskRef => ({
    index,
    frame,
    tile: null,
    label: `chunk ${index}`,
    last,
    count,
  });

  it('a fold not begun lists nothing and counts nothing', () => {
    const f = new TaskFold();
    expect(f.list()).toStrictEqual({ tasks: [] });
    expect(f.counts()).toEqual({ tasks: noCounts(), frames: noCounts() });
    expect(f.standing(0)).toBeUndefined();
    expect(f.tilesOf(1)).toBeUndefined();
  });

  it('a plan without tiles has no tiles per frame', () => {
    const f = fold([frameTask(0), frameTask(1)]);
    expect(f.tilesOf(1)).toBeUndefined();
    expect(f.tilesOf(2)).toBeUndefined();
  });

  it('chunks planned downwards are listed downwards before any event', () => {
    const f = fold([chunkTask(0, 9, 2, -2), chunkTask(1, 5, 2, -2), chunkTask(2, 1, 1, -2)]);
    expect(f.list().tasks.map((t) => [t.frame, t.last, t.count])).toEqual([
      [9, 7, 2],
      [5, 3, 2],
      [1, 1, 1],
    ]);
    expect(f.list().missingFrames).toEqual([1, 3, 5, 7, 9]);
  });

  it('a task done with no host, no winner or no times is listed as it was told', () => {
    const f = fold([frameTask(0), frameTask(1), frameTask(2)], [], 0);
    const [r0, r1, r2] = [0, 1, 2].map((i) => refOf(frameTask(i)));
    // Done with no attempt seen: no start, no end.
    f.add(taskDone({ task: r0!, status: 'done', host: 'a' }));
    // Queued, then done without its attempt's end: a start, no end.
    f.add(attemptQueued({ task: r1!, host: 'a', at: 2000 }));
    f.add(taskDone({ task: r1!, status: 'done', host: 'a' }));
    // Done, its host and winner not named.
    f.add(attemptQueued({ task: r2!, host: 'a', at: 1000 }));
    f.add(attemptEnded({ task: r2!, host: 'a', outcome: 'done', at: 3000 }));
    f.add(taskDone({ task: r2!, status: 'done', host: null, winner: null }));
    const [s0, s1, s2] = f.list().tasks;
    expect(s0).not.toHaveProperty('start');
    expect(s0).not.toHaveProperty('end');
    expect(s1).toMatchObject({ start: 2 });
    expect(s1).not.toHaveProperty('end');
    expect(s2).toMatchObject({ status: 'done', host: null, start: 1, end: 3, seconds: 2 });
    expect(s2).not.toHaveProperty('won');
  });

  it('a chunk split: its parts counted at once (done frames done), the first part listed with its own frames once done', () => {
    const f = fold([chunkTask(0, 1, 10)], [], 0);
    const whole = chunkOf(0, 1, 10, 10);
    f.add(attemptQueued({ task: whole, host: 'a', at: 1000 }));
    f.add(attemptStarted({ task: whole, host: 'a', at: 1000 }));
    f.add(attemptEnded({ task: whole, host: 'a', outcome: 'failed', message: 'died at 5', at: 5000 }));
    const done = { ...chunkOf(0, 1, 4, 4), done: true };
    const rest = { ...chunkOf(1, 5, 10, 6), done: false };
    f.add(chunkSplit({ task: whole, host: 'a', parts: [done, rest], at: 5000 }));
    expect(f.counts().frames).toEqual(counts({ total: 10, done: 4, pending: 6 }));
    expect(f.counts().tasks).toEqual(counts({ total: 2, done: 1, pending: 1 }));
    f.add(taskDone({ task: chunkOf(0, 1, 4, 4), status: 'done', host: 'a', at: 5000 }));
    const tasks = f.list().tasks;
    expect(tasks.map((t) => [t.frame, t.last, t.count, t.status])).toEqual([
      [1, 4, 4, 'done'],
      [5, 10, 6, 'pending'],
    ]);
    expect(tasks[1]).toMatchObject({ error: 'died at 5', start: 1, end: 5, seconds: 4 });
    expect(f.list().missingFrames).toEqual([5, 6, 7, 8, 9, 10]);
  });

  it('a chunk split whose later part is done: that part is counted done at once', () => {
    const f = fold([chunkTask(0, 1, 10)], [], 0);
    const whole = chunkOf(0, 1, 10, 10);
    f.add(attemptQueued({ task: whole, host: 'a', at: 1000 }));
    f.add(attemptEnded({ task: whole, host: 'a', outcome: 'failed', message: 'frames 1-3 missing', at: 4000 }));
    const missing = { ...chunkOf(0, 1, 3, 3), done: false };
    const done = { ...chunkOf(1, 4, 10, 7), done: true };
    f.add(chunkSplit({ task: whole, host: 'a', parts: [missing, done], at: 4000 }));
    expect(f.counts().frames).toEqual(counts({ total: 10, done: 7, pending: 3 }));
    expect(f.counts().tasks).toEqual(counts({ total: 2, done: 1, pending: 1 }));
    expect(f.standing(1)).toEqual({ status: 'done', rendering: false, lastFailed: false });
    expect(f.standing(0)).toEqual({ status: 'pending', rendering: false, lastFailed: true });
    // A part the plan never had, done: kept as it is (not as a task of the plan).
    f.add(taskDone({ task: chunkOf(1, 4, 10, 7), status: 'done', host: 'a', at: 4000 }));
    expect(f.list().tasks.map((t) => [t.frame, t.count, t.status])).toEqual([
      [1, 3, 'pending'],
      [4, 7, 'done'],
    ]);
  });

  it('events naming a task settled for good change nothing and throw nothing', () => {
    const t = frameTask(0);
    const f = fold([t, frameTask(1)], [], 0);
    const task = refOf(t);
    f.add(attemptQueued({ task, host: 'a', at: 1000 }));
    f.add(attemptEnded({ task, host: 'a', outcome: 'done', at: 2000 }));
    f.add(taskDone({ task, status: 'done', host: 'a' }));
    const before = f.list();
    f.add(attemptStarted({ task, host: 'b', attempt: 2 }));
    f.add(attemptEnded({ task, host: 'b', attempt: 2, outcome: 'failed', message: 'late' }));
    f.add(taskRetried({ task }));
    f.add(taskDone({ task, status: 'failed', host: 'b' }));
    f.add(chunkFormed({ from: task, task: chunkOf(2, 1, 1, 1), rest: task }));
    f.add(chunkSplit({ task, host: 'b', parts: [{ ...task, done: true }] }));
    // The chunk's part formed is a task of its own; the two of the plan are as they were.
    expect(f.list().tasks.filter((s) => s.count === undefined)).toStrictEqual(before.tasks);
    expect(f.standing(0)).toEqual({ status: 'done', rendering: false, lastFailed: false });
  });

  it('a fold not begun lists the tasks its events name, chunks in their frames order (downwards here)', () => {
    const f = new TaskFold();
    f.add(attemptQueued({ task: chunkOf(1, 5, 3, 3), host: 'a' }));
    f.add(attemptQueued({ task: chunkOf(0, 9, 7, 2), host: 'a' }));
    expect(f.list().tasks.map((t) => t.frame)).toEqual([9, 5]);
    // A chunk of one frame says nothing of the step: the next chunk of several does.
    const one = new TaskFold();
    one.add(attemptQueued({ task: chunkOf(0, 1, 1, 1), host: 'a' }));
    one.add(attemptQueued({ task: chunkOf(1, 9, 7, 2), host: 'a' }));
    expect(one.list().tasks.map((t) => t.frame)).toEqual([9, 1]);
    const g = new TaskFold();
    g.add(attemptQueued({ task: refOf(frameTask(2)), host: 'a' }));
    expect(g.list().tasks.map((t) => [t.frame, t.status])).toEqual([[3, 'running']]);
  });
});
