import { describe, expect, it } from 'vitest';
import type { SchedulerEvent } from '../../../src/scheduler/events.js';
import { RunModel } from '../../../src/ui/model.js';

import {
  attemptEnded,
  attemptQueued,
  attemptStarted,
  chunkFormed,
  chunkRef,
  hostState,
  runStart,
  speculationLost,
  taskDone,
  taskRef as ref,
  taskRetried,
} from '../../helpers/events.js';

type Outcome = Extract<SchedulerEvent, { type: 'attempt-ended' }>['outcome'];

function model(): RunModel {
  return new RunModel({
    title: 't',
    startedAt: new Date(0),
    origin: 1000,
    hosts: [
      { name: 'a', slots: 2 },
      { name: 'b', slots: 1 },
    ],
    tasks: [0, 1, 2].map((i) => ({
      index: i,
      frame: i + 1,
      tile: null,
      label: `frame ${i + 1}`,
      skipped: i === 2,
      image: true,
    })),
  });
}

describe('RunModel', () => {
  // attempt-ended's seconds (the attempt's time) feed the host figures, as in a run.
  it('folds a run: states, speculative copies, host rows, failures with their tail, timeline, progress', () => {
    const m = model();
    const events = [
      runStart({ at: 1000, tasks: 3, pending: 2 }),
      hostState({ at: 1000, host: 'a', state: 'ok' }),
      hostState({ at: 1000, host: 'b', state: 'ok' }),
      attemptQueued({
        at: 1000,
        task: ref(0),
        attempt: 1,
        host: 'a',
        lane: 0,
        behind: false,
        speculative: false,
      }),
      attemptQueued({
        at: 1000,
        task: ref(1),
        attempt: 1,
        host: 'a',
        lane: 1,
        behind: false,
        speculative: false,
      }),
      attemptStarted({ at: 1500, task: ref(0), attempt: 1, host: 'a', lane: 0 }),
      attemptStarted({ at: 1500, task: ref(1), attempt: 1, host: 'a', lane: 1 }),
    ];
    for (const e of events) m.apply(e);
    let s = m.snapshot();
    expect(s.tasks.map((t) => t.state)).toEqual(['running', 'running', 'skipped']);
    expect(s.hosts.find((h) => h.name === 'a')).toMatchObject({ state: 'ok', busy: 2, slots: 2 });
    expect(s.progress).toMatchObject({ total: 3, skipped: 1, running: 2, done: 0 });

    m.apply(
      attemptEnded({
        at: 2000,
        task: ref(1),
        attempt: 1,
        host: 'a',
        outcome: 'failed',
        message: 'exit 1; last output:\nline one\nline two',
        ignored: false,
      }),
    );
    m.apply(
      attemptQueued({
        at: 2000,
        task: ref(0),
        attempt: 2,
        host: 'b',
        lane: 0,
        behind: false,
        speculative: true,
      }),
    );
    m.apply(attemptStarted({ at: 2000, task: ref(0), attempt: 2, host: 'b', lane: 0 }));
    s = m.snapshot();
    expect(s.tasks[0]).toMatchObject({ state: 'running', live: 2, copies: 2 });
    expect(s.tasks[1]).toMatchObject({ state: 'retrying' });
    expect(s.failures).toEqual([
      { i: 1, label: 'frame 2', host: 'a', attempt: 1, at: 1, message: 'exit 1', tail: 'line one\nline two' },
    ]);
    expect(s.hosts.find((h) => h.name === 'a')).toMatchObject({ failures: 1, busy: 1 });

    m.apply(attemptEnded({ at: 2500, task: ref(1), attempt: 1, host: 'a', outcome: 'released', ignored: false }));
    m.apply(
      taskDone({
        at: 2500,
        task: ref(1),
        status: 'failed',
        host: 'a',
        attempts: 1,
        winner: null,
        copies: 1,
        error: 'exit 1',
      }),
    );
    m.apply(attemptEnded({ at: 3000, task: ref(0), attempt: 2, host: 'b', outcome: 'released', ignored: false }));
    m.apply(
      attemptEnded({
        at: 3500,
        task: ref(0),
        attempt: 2,
        host: 'b',
        outcome: 'done',
        ignored: false,
        seconds: 1.5,
        bytesIn: 0,
        bytesOut: 0,
      }),
    );
    m.apply(
      taskDone({
        at: 3500,
        task: ref(0),
        status: 'done',
        host: 'b',
        attempts: 1,
        winner: { host: 'b', attempt: 2 },
        copies: 2,
      }),
    );
    m.apply(attemptEnded({ at: 3600, task: ref(0), attempt: 1, host: 'a', outcome: 'cancelled', ignored: true }));
    s = m.snapshot();
    expect(s.tasks[0]).toMatchObject({ state: 'done', host: 'b', seconds: 1.5, live: 0 });
    expect(s.tasks[1]!.state).toBe('failed');
    expect(s.latest).toBe(0);
    expect(s.hosts.find((h) => h.name === 'b')).toMatchObject({ tasksDone: 1, meanSeconds: 1.5, busy: 0 });
    expect(s.bars.find((b) => b.i === 0 && b.attempt === 2)).toMatchObject({
      speculative: true,
      start: 1,
      freed: 2,
      end: 2.5,
      outcome: 'done',
    });
    expect(s.bars.find((b) => b.i === 0 && b.attempt === 1)).toMatchObject({ outcome: 'cancelled', ignored: true });
    expect(s.progress).toMatchObject({ done: 1, failed: 1, running: 0 });
    expect(s.retryable).toBe(true);

    m.apply(taskRetried({ at: 3700, task: ref(1), attempts: 1 }));
    expect(m.snapshot().tasks[1]!.state).toBe('retrying');
    expect(m.snapshot().progress.failed).toBe(0);
  });

  it("does not count a copy being stopped for a faster one among its task's live attempts", () => {
    const m = model();
    const queued = (attempt: number, host: string, lane: number): SchedulerEvent =>
      attemptQueued({
        at: 1000,
        task: ref(0),
        attempt,
        host,
        lane,
        behind: false,
        speculative: attempt > 1,
      });
    for (const e of [queued(1, 'a', 0), queued(2, 'a', 1), queued(3, 'b', 0)]) m.apply(e);
    expect(m.snapshot().tasks[0]).toMatchObject({ live: 3 });
    // Attempt 1 is replaced by a faster copy (4), then 2 and 3 fail while 1 is still being stopped.
    m.apply(
      speculationLost({
        at: 1100,
        task: ref(0),
        attempt: 1,
        host: 'a',
        winner: { host: 'b', attempt: 4 },
        replaced: true,
      }),
    );
    m.apply(queued(4, 'b', 1));
    expect(m.snapshot().tasks[0]).toMatchObject({ live: 3 });
    m.apply(
      attemptEnded({
        at: 1200,
        task: ref(0),
        attempt: 2,
        host: 'a',
        outcome: 'failed',
        message: 'exit 1',
        ignored: false,
      }),
    );
    m.apply(
      attemptEnded({
        at: 1200,
        task: ref(0),
        attempt: 4,
        host: 'b',
        outcome: 'failed',
        message: 'exit 1',
        ignored: false,
      }),
    );
    m.apply(
      attemptEnded({
        at: 1200,
        task: ref(0),
        attempt: 3,
        host: 'b',
        outcome: 'failed',
        message: 'exit 1',
        ignored: false,
      }),
    );
    expect(m.snapshot().tasks[0]).toMatchObject({ live: 0, state: 'retrying' });
    // Its end, later, is told once and counts nothing.
    m.apply(attemptEnded({ at: 1300, task: ref(0), attempt: 1, host: 'a', outcome: 'cancelled', ignored: true }));
    expect(m.snapshot().tasks[0]).toMatchObject({ live: 0, state: 'retrying' });
  });

  it('hands out what changed since the last delta, and the end of the run once', () => {
    const m = model();
    expect(m.takeDelta()?.hosts.map((h) => h.name)).toEqual(['a', 'b']);
    expect(m.takeDelta()).toBeUndefined();
    m.apply(
      attemptQueued({
        at: 1000,
        task: ref(0),
        attempt: 1,
        host: 'a',
        lane: 0,
        behind: false,
        speculative: false,
      }),
    );
    expect(m.takeDelta()!.tasks.map((t) => t.i)).toEqual([0]);
    m.apply(attemptStarted({ at: 1000, task: ref(0), attempt: 1, host: 'a', lane: 0 }));
    const d = m.takeDelta()!;
    expect(d.tasks.map((t) => t.i)).toEqual([0]);
    expect(d.bars).toHaveLength(1);
    expect(m.takeDelta()).toBeUndefined();
    m.ended({ exitCode: 130, lines: ['stopped'] });
    expect(m.takeDelta()).toMatchObject({ end: { exitCode: 130 }, retryable: false });
    expect(m.takeDelta()).toBeUndefined();
  });

  it('draws an attempt when its renderer starts: one waiting behind it on its slot is not drawn, nor one stopped before it started', () => {
    const m = new RunModel({
      title: 't',
      startedAt: new Date(0),
      origin: 0,
      hosts: [{ name: 'a', slots: 1 }],
      tasks: [0, 1, 2].map((i) => ({
        index: i,
        frame: i + 1,
        tile: null,
        label: `frame ${i + 1}`,
        skipped: false,
        image: false,
      })),
    });
    const queued = (i: number, at: number, behind: boolean): SchedulerEvent =>
      attemptQueued({ at, task: ref(i), attempt: 1, host: 'a', lane: 0, behind, speculative: false });
    const ended = (i: number, at: number, outcome: Outcome): SchedulerEvent =>
      attemptEnded({
        at,
        task: ref(i),
        attempt: 1,
        host: 'a',
        outcome,
        ignored: false,
        attempts: 0,
        settled: outcome === 'cancelled' ? 'cancelled' : null,
        seconds: 0,
        bytesIn: 0,
        bytesOut: 0,
      });
    m.apply(hostState({ at: 0, host: 'a', state: 'ok' }));
    m.apply(queued(0, 0, false));
    m.apply(attemptStarted({ at: 1000, task: ref(0), attempt: 1, host: 'a', lane: 0 }));
    m.apply(queued(1, 1000, true));
    let s = m.snapshot();
    expect(s.bars.map((b) => [b.label, b.outcome])).toEqual([['frame 1', 'running']]);
    expect(s.tasks.map((t) => t.state)).toEqual(['running', 'queued', 'queued']);
    expect(s.progress).toMatchObject({ running: 1, done: 0 });
    // Stopped: the running one is drawn stopped, with its frame; the one waiting behind it never started and is not drawn.
    m.apply(ended(1, 2000, 'cancelled'));
    m.apply(ended(0, 2000, 'cancelled'));
    s = m.snapshot();
    expect(s.bars.map((b) => [b.label, b.outcome, b.start, b.end])).toEqual([['frame 1', 'cancelled', 1, 2]]);
    expect(s.hosts[0]).toMatchObject({ busy: 0 });
  });

  it('shows a task lost with its host as queued again, and one whose attempt failed as to retry', () => {
    const m = model();
    const started = (i: number, attempt: number): SchedulerEvent[] => [
      attemptQueued({
        at: 1000,
        task: ref(i),
        attempt,
        host: 'a',
        lane: i,
        behind: false,
        speculative: false,
      }),
      attemptStarted({ at: 1000, task: ref(i), attempt, host: 'a', lane: i }),
    ];
    const ended = (i: number, attempt: number, outcome: Outcome): SchedulerEvent =>
      attemptEnded({
        at: 1500,
        task: ref(i),
        attempt,
        host: 'a',
        outcome,
        message: outcome,
        ignored: false,
        attempts: 1,
        settled: null,
        seconds: 0.5,
        bytesIn: 0,
        bytesOut: 0,
      });
    for (const e of [...started(0, 1), ...started(1, 1)]) m.apply(e);
    m.apply(ended(0, 1, 'failed'));
    m.apply(ended(1, 1, 'lost'));
    expect(m.snapshot().tasks.map((t) => t.state)).toEqual(['retrying', 'queued', 'skipped']);
    // Failed once, then lost: queued again, as the lost attempt left it.
    for (const e of started(0, 2)) m.apply(e);
    m.apply(ended(0, 2, 'lost'));
    expect(m.snapshot().tasks[0]!.state).toBe('queued');
  });

  it('counts frames: a chunk counts as its frames, done or not', () => {
    const chunk = chunkRef;
    const m = new RunModel({
      title: 't',
      startedAt: new Date(0),
      origin: 0,
      hosts: [{ name: 'a', slots: 1 }],
      tasks: [{ index: 0, frame: 1, tile: null, label: 'frames 1-12', skipped: false, image: false, count: 12 }],
    });
    expect(m.snapshot().progress).toMatchObject({ total: 12, done: 0 });
    m.apply(chunkFormed({ at: 0, from: chunk(0, 1, 12), task: chunk(1, 1, 4), rest: chunk(0, 5, 12) }));
    m.apply(
      attemptQueued({
        at: 0,
        task: chunk(1, 1, 4),
        attempt: 1,
        host: 'a',
        lane: 0,
        behind: false,
        speculative: false,
      }),
    );
    m.apply(attemptStarted({ at: 0, task: chunk(1, 1, 4), attempt: 1, host: 'a', lane: 0 }));
    expect(m.snapshot().progress).toMatchObject({ total: 12, running: 4 });
    m.apply(
      attemptEnded({
        at: 1000,
        task: chunk(1, 1, 4),
        attempt: 1,
        host: 'a',
        outcome: 'done',
        ignored: false,
        attempts: 1,
        settled: 'done',
        seconds: 1,
        bytesIn: 0,
        bytesOut: 0,
      }),
    );
    m.apply(
      taskDone({
        at: 1000,
        task: chunk(1, 1, 4),
        status: 'done',
        host: 'a',
        attempts: 1,
        winner: { host: 'a', attempt: 1 },
        copies: 1,
      }),
    );
    expect(m.snapshot().progress).toMatchObject({ total: 12, done: 4, running: 0 });
  });
});
