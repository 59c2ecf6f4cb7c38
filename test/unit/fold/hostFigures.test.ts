import { describe, expect, it } from 'vitest';
import type { SchedulerEvent, TaskRef } from '../../../src/scheduler/events.js';
import { HostFigures } from '../../../src/fold/hostFigures.js';
import type { RunEvent } from '../../../src/fold/runEvents.js';
import {
  attemptEnded,
  attemptQueued,
  chunkRef,
  chunkSplit,
  hostState,
  runEnd,
  runStart,
  taskRef,
} from '../../helpers/events.js';

const task = (index: number): TaskRef => ({ index, frame: index, tile: null, label: `frame ${index}` });

type Ended = Extract<SchedulerEvent, { type: 'attempt-ended' }>;

function ended(
  host: string,
  index: number,
  outcome: Ended['outcome'],
  seconds: number,
  more: Partial<Ended> = {},
): Ended {
  return {
    type: 'attempt-ended',
    at: 0,
    task: task(index),
    attempt: 1,
    host,
    outcome,
    ignored: false,
    attempts: 1,
    settled: outcome === 'done' ? 'done' : null,
    seconds,
    exitCode: outcome === 'done' ? 0 : 1,
    signal: null,
    timedOut: false,
    stalled: false,
    bytesIn: 0,
    bytesOut: 0,
    ...more,
  };
}

function queued(host: string, index: number, lane: number): RunEvent {
  return {
    type: 'attempt-queued',
    at: 0,
    task: task(index),
    attempt: 1,
    host,
    lane,
    behind: false,
    speculative: false,
  };
}

function feed(events: RunEvent[]): HostFigures {
  const f = new HostFigures();
  for (const e of events) f.add(e);
  return f;
}

describe('HostFigures', () => {
  it('gives each host its tasks done, failures, mean and median seconds, bytes in and out', () => {
    const f = feed([
      {
        type: 'run-start',
        at: 1000,
        tasks: 6,
        pending: 6,
        hosts: [
          { name: 'a', slots: 2 },
          { name: 'b', slots: 1 },
        ],
      },
      { type: 'host-state', at: 1000, host: 'a', state: 'ok' },
      { type: 'host-state', at: 1000, host: 'b', state: 'ok' },
      ended('a', 0, 'done', 1, { bytesIn: 10, bytesOut: 100 }),
      ended('a', 1, 'done', 3, { bytesIn: 10, bytesOut: 100 }),
      ended('a', 2, 'done', 8, { bytesIn: 10, bytesOut: 100 }),
      ended('b', 3, 'failed', 2, { bytesIn: 10 }),
      ended('b', 3, 'done', 4, { bytesIn: 10, bytesOut: 50 }),
      ended('b', 4, 'done', 6, { bytesIn: 10, bytesOut: 50 }),
      ended('b', 5, 'lost', 1),
      { type: 'host-state', at: 12_000, host: 'b', state: 'lost', reason: 'gone' },
      { type: 'run-end', at: 13_000, done: 5, failed: 0, cancelled: 0, skipped: 0 },
    ]).figures();
    expect(f.hosts).toEqual([
      {
        name: 'a',
        state: 'ok',
        slots: 2,
        tasksDone: 3,
        failures: 0,
        lost: 0,
        meanSeconds: 4,
        medianSeconds: 3,
        bytesIn: 30,
        bytesOut: 300,
      },
      {
        name: 'b',
        state: 'lost',
        message: 'gone',
        slots: 1,
        tasksDone: 2,
        failures: 1,
        lost: 1,
        meanSeconds: 5,
        medianSeconds: 5,
        bytesIn: 30,
        bytesOut: 100,
      },
    ]);
    // 22 s of completed tasks over 3 slots; the run took 12 s from its start to its end.
    expect(f).toMatchObject({ makespan: 12, taskSeconds: 22, slots: 3, ideal: 7.333 });
  });

  it("adds a host's once-per-host inputs and outputs to its bytes", () => {
    const f = feed([
      { type: 'host-files', at: 0, host: 'a', direction: 'in', files: 2, bytes: 1000, seconds: 0.1 },
      ended('a', 0, 'done', 2, { bytesIn: 10, bytesOut: 20 }),
      { type: 'host-files', at: 5, host: 'a', direction: 'out', files: 1, bytes: 300, seconds: 0.1 },
    ]).figures();
    expect(f.hosts.map((h) => [h.name, h.bytesIn, h.bytesOut])).toEqual([['a', 1010, 320]]);
  });

  it('counts the bytes of a losing copy but not its task, and a released attempt once it ends, with the time it held its slot', () => {
    const f = feed([
      ended('a', 0, 'released', 5, { bytesIn: 0, bytesOut: 0 }),
      ended('a', 0, 'done', 6, { bytesOut: 70 }),
      ended('b', 0, 'cancelled', 3, { bytesIn: 5, ignored: true }),
      ended('b', 1, 'done', 9, { bytesOut: 20, ignored: true }),
    ]).figures();
    expect(f.hosts.map((h) => [h.name, h.tasksDone, h.bytesIn, h.bytesOut, h.meanSeconds])).toEqual([
      ['a', 1, 0, 70, 6],
      ['b', 0, 5, 20, null],
    ]);
    // Its slot was free after 5 s (the outputs came back meanwhile): the ideal counts that.
    expect(f.taskSeconds).toBe(5);
  });

  it('takes slots from the run start, else from the lanes a host was seen to use, and leaves unusable hosts out of the ideal', () => {
    const f = feed([
      {
        type: 'run-start',
        at: 0,
        tasks: 4,
        pending: 4,
        hosts: [
          { name: 'a', slots: 4 },
          { name: 'down', slots: 8 },
        ],
      },
      { type: 'host-state', at: 0, host: 'a', state: 'ok' },
      { type: 'host-state', at: 0, host: 'down', state: 'unreachable', reason: 'no route' },
      // Added to the inventory during the run: its slots are what it used.
      queued('late', 0, 0),
      queued('late', 1, 2),
      ended('late', 0, 'done', 2),
      ended('a', 1, 'done', 4),
    ]).figures();
    expect(f.hosts.map((h) => [h.name, h.state, h.slots])).toEqual([
      ['a', 'ok', 4],
      ['down', 'unreachable', 8],
      ['late', 'ok', 3],
    ]);
    expect(f.hosts[1]!.message).toBe('no route');
    expect(f.slots).toBe(7);
    expect(f.ideal).toBe(0.857);
  });

  it('has a median of an even count as the mean of the middle two, and nulls before anything happened', () => {
    const f = feed([
      ended('a', 0, 'done', 1),
      ended('a', 1, 'done', 10),
      ended('a', 2, 'done', 2),
      ended('a', 3, 'done', 3),
    ]).figures();
    expect(f.hosts[0]).toMatchObject({ meanSeconds: 4, medianSeconds: 2.5 });
    expect(new HostFigures().figures()).toEqual({ hosts: [], makespan: null, ideal: null, taskSeconds: 0, slots: 0 });
  });

  it('lists a host once an event of its own names it, not from the run start alone', () => {
    const f = new HostFigures();
    f.add({
      type: 'run-start',
      at: 0,
      tasks: 1,
      pending: 1,
      hosts: [
        { name: 'a', slots: 1 },
        { name: 'b', slots: 1 },
      ],
    });
    f.add({ type: 'host-state', at: 0, host: 'b', state: 'connecting' });
    expect(f.figures().hosts.map((h) => [h.name, h.state])).toEqual([['b', 'connecting']]);
    expect(f.figures().slots).toBe(0);
  });

  it('gives a makespan up to the last event while the run goes on', () => {
    const f = new HostFigures();
    f.add({ type: 'run-start', at: 500, tasks: 1, pending: 1 });
    f.add({ type: 'host-state', at: 2500, host: 'a', state: 'ok' });
    expect(f.figures().makespan).toBe(2);
  });
});

describe('HostFigures, event by event', () => {
  it("keeps a host's last state and why, and counts a host usable only once it was ok or took a task", () => {
    const f = feed([
      runStart({
        at: 1000,
        hosts: [
          { name: 'a', slots: 2 },
          { name: 'b', slots: 3 },
          { name: 'c', slots: 4 },
        ],
      }),
      hostState({ at: 1000, host: 'a', state: 'ok' }),
      hostState({ at: 1500, host: 'a', state: 'lost', reason: 'connection reset' }),
      hostState({ at: 1000, host: 'b', state: 'unreachable', reason: 'refused' }),
      attemptQueued({ at: 2000, task: taskRef(0), host: 'c', lane: 0 }),
      attemptEnded({ at: 3000, task: taskRef(0), host: 'c', outcome: 'done', seconds: 2 }),
    ]);
    expect(f.figure('a')).toMatchObject({ state: 'lost', message: 'connection reset', slots: 2 });
    expect(f.figure('b')).toMatchObject({ state: 'unreachable', message: 'refused', slots: 3 });
    expect(f.figure('c')).toMatchObject({ state: 'ok', slots: 4, tasksDone: 1 });
    expect(f.figure('c')).not.toHaveProperty('message');
    expect(f.figure('nobody')).toBeUndefined();
    // a and c were usable: 6 slots; b never was.
    expect(f.figures()).toMatchObject({ slots: 6, taskSeconds: 2, ideal: 0.333, makespan: 2 });
  });

  it('counts from the first run start, to the run end', () => {
    const f = feed([
      runStart({ at: 1000 }),
      runStart({ at: 5000 }),
      runEnd({ at: 3000 }),
      hostState({ at: 9000, host: 'a', state: 'done' }),
    ]);
    expect(f.figures().makespan).toBe(2);
    expect(new HostFigures().figures()).toEqual({ hosts: [], makespan: null, ideal: null, taskSeconds: 0, slots: 0 });
  });

  it('counts a lost attempt against its host even when ignored, and neither a failure nor a cancel of a losing copy', () => {
    const f = feed([
      attemptEnded({ task: taskRef(0), host: 'a', outcome: 'lost', ignored: true }),
      attemptEnded({ task: taskRef(1), host: 'a', outcome: 'failed', ignored: true }),
      attemptEnded({ task: taskRef(2), host: 'a', outcome: 'done', ignored: true, seconds: 5 }),
      attemptEnded({ task: taskRef(3), host: 'a', outcome: 'failed' }),
      attemptEnded({ task: taskRef(4), host: 'a', outcome: 'cancelled' }),
    ]);
    expect(f.figure('a')).toMatchObject({ lost: 1, failures: 1, tasksDone: 0, meanSeconds: null, medianSeconds: null });
    expect(f.figures().taskSeconds).toBe(0);
  });

  it("counts the frames a split chunk had finished as tasks done by its host, besides the attempt's failure", () => {
    const f = feed([
      attemptEnded({ task: chunkRef(0, 1, 6), host: 'a', outcome: 'failed' }),
      chunkSplit({
        task: chunkRef(0, 1, 6),
        host: 'a',
        parts: [
          { ...chunkRef(0, 1, 2), done: true },
          { ...chunkRef(1, 3, 3), done: false },
          { ...chunkRef(2, 4, 6), done: true },
        ],
      }),
    ]);
    expect(f.figure('a')).toMatchObject({ tasksDone: 2, failures: 1 });
  });

  it('rounds the mean and median to the millisecond', () => {
    const f = feed(
      [1, 2, 2.0004].map((s, i) => attemptEnded({ task: taskRef(i), host: 'a', outcome: 'done', seconds: s })),
    );
    expect(f.figure('a')).toMatchObject({ meanSeconds: 1.667, medianSeconds: 2 });
  });
});

describe('HostFigures, what the other tests left open', () => {
  it('lists a host that has taken a task as ok, before any state of its own', () => {
    expect(feed([attemptQueued({ task: taskRef(0), host: 'a', lane: 1 })]).figure('a')).toMatchObject({
      state: 'ok',
      slots: 2,
    });
    expect(feed([attemptEnded({ task: taskRef(0), host: 'b', outcome: 'failed' })]).figure('b')).toMatchObject({
      state: 'ok',
    });
  });

  it('keeps the slot time of each released attempt apart, however their ends interleave', () => {
    const f = feed([
      attemptEnded({ task: taskRef(0), host: 'a', outcome: 'released', seconds: 1 }),
      attemptEnded({ task: taskRef(1), host: 'a', outcome: 'released', seconds: 2 }),
      attemptEnded({ task: taskRef(0), host: 'a', outcome: 'done', seconds: 5 }),
      attemptEnded({ task: taskRef(1), host: 'a', outcome: 'done', seconds: 6 }),
    ]);
    expect(f.figures()).toMatchObject({ taskSeconds: 3 });
    expect(f.figure('a')).toMatchObject({ tasksDone: 2, meanSeconds: 5.5 });
  });

  it('has no makespan without a run start', () => {
    expect(feed([hostState({ at: 5000, host: 'a', state: 'ok' })]).figures().makespan).toBeNull();
  });
});
