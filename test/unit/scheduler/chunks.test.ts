import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChunkSizer } from '../../../src/plan/chunkSizer.js';
import type { ChunkSize } from '../../../src/plan/chunks.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { PlainProgress } from '../../../src/views/progress.js';
import { summarise } from '../../../src/fold/summary.js';
import { chunkRecords } from '../../../src/run.js';
import type { HostConfig } from '../../../src/inventory/types.js';
import { modelOfPlan } from '../../../src/ui/fromPlan.js';
import { HostFigures } from '../../../src/fold/hostFigures.js';
import { taskName } from '../../../src/report/junit.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import { tasksOfRecords } from '../../../src/fold/summary.js';
import {
  Scheduler,
  isRunStop,
  type AttemptOutcome,
  type AttemptSlot,
  type SchedulerEvent,
  type SchedulerHost,
  type TaskRecord,
} from '../../../src/scheduler/scheduler.js';
import { startHosts as start } from '../../helpers/scheduler.js';

/** What one attempt did: the frames it was given, and the outcome the host returned. */
interface Ran {
  host: string;
  frames: number[];
}

type Behaviour = (frames: number[], attempt: number) => AttemptOutcome;

/**
 * A host whose renderer pays `startupMs` once per attempt and `frameMs` per
 * frame of its chunk, on fake time; `behaviour` decides the outcome.
 */
class ChunkHost implements SchedulerHost {
  constructor(
    readonly name: string,
    readonly slots: number,
    private readonly plan: Plan,
    private readonly log: Ran[],
    private readonly startupMs: number,
    private readonly frameMs: number,
    private readonly behaviour: Behaviour = () => ({ kind: 'done' }),
  ) {}
  async run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    const frames = this.plan.framesOf(task);
    this.log.push({ host: this.name, frames });
    slot.started();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, this.startupMs + this.frameMs * frames.length);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
    if (signal.aborted) return { kind: 'cancelled' };
    return this.behaviour(frames, attempt);
  }
}

function setup(
  spec: string,
  size: ChunkSize,
  opts: { retries?: number; targetMs?: number; done?: readonly number[]; speculate?: boolean } = {},
) {
  const plan = new Plan({
    frames: parseFrameSpec(spec),
    exec: 'r',
    args: ['%{first}', '%{last}'],
    ins: [],
    outs: ['o/f%d.png=f%d.png'],
    hostNames: ['a', 'b'],
    chunk: size,
  });
  const frames = plan.tasks.map((t) => Scheduler.record(t));
  for (const r of frames) if (opts.done?.includes(r.task.frame)) r.status = 'skipped';
  const records = chunkRecords(plan, frames);
  const events: SchedulerEvent[] = [];
  const s = new Scheduler(records, {
    retries: opts.retries ?? 2,
    maxConsecutiveFailures: 3,
    now: () => Date.now(),
    speculate: opts.speculate,
    chunks: new ChunkSizer((first, count, index) => plan.chunkTask(first, count, index), size, opts.targetMs),
  });
  s.on('event', (e) => events.push(e));
  return { plan, s, records, events, log: [] as Ran[] };
}

async function finish(s: Scheduler): Promise<void> {
  await vi.runAllTimersAsync();
  await s.drained();
}

/** Every frame's status, from the records: each frame is in exactly one. */
function frameStatus(plan: Plan, records: readonly TaskRecord[]): Map<number, string> {
  const status = new Map<number, string>();
  for (const r of records) {
    for (const f of plan.framesOf(r.task)) {
      expect(status.has(f), `frame ${f} is in two records`).toBe(false);
      status.set(f, r.status);
    }
  }
  return status;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Scheduler with --chunk', () => {
  it('hands out chunks of N consecutive frames of the spec as slots take them', async () => {
    const { plan, s, records, log } = setup('0,99,2', 5);
    expect(records).toHaveLength(1);
    start(s, [new ChunkHost('a', 2, plan, log, 100, 10), new ChunkHost('b', 1, plan, log, 100, 10)]);
    await finish(s);
    expect(log.map((r) => r.frames).sort((x, y) => x[0]! - y[0]!)).toEqual(
      Array.from({ length: 10 }, (_, i) => [0, 2, 4, 6, 8].map((f) => f + 10 * i)),
    );
    expect(records.map((r) => r.task.label).sort((x, y) => parseInt(x.slice(7)) - parseInt(y.slice(7)))).toEqual(
      Array.from({ length: 10 }, (_, i) => `frames ${10 * i}-${10 * i + 8}`),
    );
    expect(records.every((r) => r.status === 'done')).toBe(true);
    expect([...frameStatus(plan, records).keys()]).toHaveLength(50);
  });

  it('renders again only the frames a chunk that died half-way did not produce, as a smaller chunk', async () => {
    const { plan, s, records, events, log } = setup('1,10', 10, { retries: 0 });
    // The first attempt dies after frame 4; the next ones succeed.
    const host = new ChunkHost('a', 1, plan, log, 10, 10, (frames, attempt) =>
      attempt === 1
        ? { kind: 'failed', message: 'r exited with status 5', done: frames.filter((f) => f <= 4) }
        : { kind: 'done' },
    );
    start(s, [host]);
    await finish(s);
    expect(log.map((r) => r.frames)).toEqual([
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      [5, 6, 7, 8, 9, 10],
    ]);
    // Retries 0, yet the rest ran: an attempt that completed frames is not held against the rest.
    expect(records.map((r) => [r.task.label, r.status, r.attempts, r.won])).toEqual([
      ['frames 1-4', 'done', 1, { host: 'a', attempt: 1 }],
      ['frames 5-10', 'done', 2, { host: 'a', attempt: 2 }],
    ]);
    const split = events.find((e) => e.type === 'chunk-split');
    expect(split).toMatchObject({
      task: { label: 'frames 1-10', frame: 1, last: 10, count: 10 },
      attempt: 1,
      host: 'a',
      parts: [
        { label: 'frames 1-4', done: true },
        { label: 'frames 5-10', done: false },
      ],
    });
    expect(s.hosts.get('a')).toMatchObject({ tasksDone: 2, failures: 1 });
  });

  it('splits scattered missing frames into a chunk per run of them, and the report says which frames are missing', async () => {
    const { plan, s, records, log } = setup('0,9', 10, { retries: 0 });
    // Frames 3, 4 and 8 never come out on any attempt: their chunks fail for good.
    const bad = new Set([3, 4, 8]);
    const host = new ChunkHost('a', 1, plan, log, 10, 10, (frames) => {
      const done = frames.filter((f) => !bad.has(f));
      return done.length === frames.length ? { kind: 'done' } : { kind: 'failed', message: 'frames missing', done };
    });
    start(s, [host]);
    await finish(s);
    expect(log.map((r) => r.frames)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 4], [8]]);
    const status = frameStatus(plan, records);
    expect([...status].filter(([, st]) => st !== 'done').map(([f, st]) => [f, st])).toEqual([
      [3, 'failed'],
      [4, 'failed'],
      [8, 'failed'],
    ]);
    const summary = summarise(records, s.hosts.values(), {
      exitCode: 1,
      startedAt: new Date(0),
      seconds: 1,
      errors: [],
    });
    expect(summary.missingFrames).toEqual([3, 4, 8]);
    expect(summary.tasks.map((t) => [t.label, t.frame, t.last, t.count, t.status])).toEqual([
      ['frames 0-2', 0, 2, 3, 'done'],
      ['frames 3-4', 3, 4, 2, 'failed'],
      ['frames 5-7', 5, 7, 3, 'done'],
      ['frame 8', 8, 8, 1, 'failed'],
      ['frame 9', 9, 9, 1, 'done'],
    ]);
  });

  it('retries a chunk that produced nothing whole, within --retries, elsewhere first', async () => {
    const { plan, s, records, log } = setup('1,4', 4, { retries: 1 });
    const failing: Behaviour = () => ({ kind: 'failed', message: 'crashed at start-up' });
    start(s, [new ChunkHost('a', 1, plan, log, 10, 10, failing), new ChunkHost('b', 1, plan, log, 10, 10, failing)]);
    await finish(s);
    expect(log.map((r) => [r.host, r.frames])).toEqual([
      ['a', [1, 2, 3, 4]],
      ['b', [1, 2, 3, 4]],
    ]);
    expect(records.map((r) => [r.task.label, r.status, r.attempts])).toEqual([['frames 1-4', 'failed', 2]]);
  });

  it('re-chunks a rerun: frames complete already are skipped, each run of missing frames chunked from its own first frame', async () => {
    const { plan, s, records, log } = setup('1,12', 3, { done: [1, 2, 6, 7, 8, 12] });
    start(s, [new ChunkHost('a', 1, plan, log, 10, 10)]);
    await finish(s);
    expect(log.map((r) => r.frames)).toEqual([
      [3, 4, 5],
      [9, 10, 11],
    ]);
    const status = frameStatus(plan, records);
    expect([...status].filter(([, st]) => st === 'skipped').map(([f]) => f)).toEqual([1, 2, 6, 7, 8, 12]);
    expect([...status].filter(([, st]) => st === 'done').map(([f]) => f)).toEqual([3, 4, 5, 9, 10, 11]);
  });

  it('sizes auto chunks from the measured start-up and time per frame: a frame first, then the target', async () => {
    // Start-up 20 s, then 5 s a frame; a target of 2 minutes.
    const { plan, s, records, log } = setup('1,400', 'auto', { targetMs: 120_000 });
    start(s, [new ChunkHost('a', 1, plan, log, 20_000, 5_000)]);
    await finish(s);
    const sizes = log.map((r) => r.frames.length);
    // 25 s for the first frame: 5 frames (start-up and frame not told apart yet). 45 s for those 5: 5 s a frame
    // after a start-up of 20 s, so (120 - 20) / 5 = 20 frames from then on, and the rest at the end.
    expect(sizes).toEqual([1, 5, ...Array<number>(19).fill(20), 14]);
    expect(records.every((r) => r.status === 'done')).toBe(true);
    expect(log.flatMap((r) => r.frames)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
  });

  it('shows the live page every chunk as it is formed and split, with its frames and state', async () => {
    const { plan, s, records, log } = setup('1,10', 5, { retries: 0 });
    const model = modelOfPlan(plan, [{ name: 'a', slots: 1 } as HostConfig], {
      startedAt: new Date(0),
      clockOrigin: 0,
      records,
      title: 't',
    });
    const figures = new HostFigures();
    s.on('event', (e) => {
      model.apply(e);
      figures.add(e);
    });
    start(s, [
      new ChunkHost('a', 1, plan, log, 10, 10, (frames, attempt) =>
        attempt === 1 && frames[0] === 1 ? { kind: 'failed', message: 'died', done: [1, 2] } : { kind: 'done' },
      ),
    ]);
    await finish(s);
    const tasks = model.snapshot().tasks.map((t) => [t.i, t.label, t.state]);
    expect(tasks).toEqual(records.map((r) => [r.task.index, r.task.label, r.status]));
    expect(tasks.map((t) => t[1]).sort()).toEqual(['frames 1-2', 'frames 3-5', 'frames 6-10']);
    expect(tasks.every((t) => t[2] === 'done')).toBe(true);
    // The host finished three tasks, one of them by the attempt that failed half-way.
    expect(figures.figure('a')).toMatchObject({ tasksDone: 3, failures: 1 });
    expect(s.hosts.get('a')).toMatchObject({ tasksDone: 3, failures: 1 });
    const summary = summarise(records, s.hosts.values(), {
      exitCode: 0,
      startedAt: new Date(0),
      seconds: 1,
      errors: [],
    });
    expect(summary.tasks.map(taskName)).toEqual(['frames 1-2', 'frames 3-5', 'frames 6-10']);
  });

  it('cancels the queued frames and the running chunk when the run is stopped', async () => {
    const { plan, s, records, log } = setup('1,100', 10);
    start(s, [new ChunkHost('a', 1, plan, log, 10, 10)]);
    await vi.advanceTimersByTimeAsync(150);
    s.cancel();
    await finish(s);
    const status = frameStatus(plan, records);
    expect(status.size).toBe(100);
    expect([...status.values()].filter((st) => st === 'done').length).toBeGreaterThan(0);
    expect([...status.values()].every((st) => st === 'done' || st === 'cancelled')).toBe(true);
  });

  it('keeps the frames a chunk finished when the run is stopped: they are done, only the rest is cancelled, and the host is not blamed', async () => {
    const { plan, s, records, events, log } = setup('1,16', 8, { retries: 0 });
    const fold = new TaskFold(0);
    fold.begin(records);
    s.on('event', (e) => fold.add(e));
    const lines: string[] = [];
    new PlainProgress((l) => lines.push(l)).attach(s, { fold });
    const reasons: boolean[] = [];
    // A renderer writing a frame every 10 ms: stopped at 35 ms, frames 1-3 of its chunk are complete.
    class Writing implements SchedulerHost {
      readonly slots = 1;
      constructor(readonly name: string) {}
      async run(task: Task, _attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
        const frames = plan.framesOf(task);
        log.push({ host: this.name, frames });
        slot.started();
        const began = Date.now();
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 10 * frames.length);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          });
        });
        if (!signal.aborted) return { kind: 'done' };
        reasons.push(isRunStop(signal));
        const finished = Math.floor((Date.now() - began) / 10);
        return { kind: 'cancelled', done: frames.slice(0, finished) };
      }
    }
    start(s, [new Writing('a'), new Writing('b')]);
    await vi.advanceTimersByTimeAsync(35);
    s.cancel();
    await finish(s);
    expect(reasons).toEqual([true, true]);
    const status = frameStatus(plan, records);
    const frames = (st: string): number[] =>
      [...status]
        .filter(([, x]) => x === st)
        .map(([f]) => f)
        .sort((x, y) => x - y);
    expect(frames('done')).toEqual([1, 2, 3, 9, 10, 11]);
    expect(frames('cancelled')).toEqual([4, 5, 6, 7, 8, 12, 13, 14, 15, 16]);
    expect(s.hosts.get('a')).toMatchObject({ failures: 0 });
    expect(s.hosts.get('b')).toMatchObject({ failures: 0 });
    expect(events.filter((e) => e.type === 'chunk-split')).toHaveLength(2);
    // The report's list, folded from the events, says the same as the records.
    expect(fold.list()).toStrictEqual(tasksOfRecords(s.records, 0));
    // The plain lines say the chunk was stopped with the run, not that its attempt failed (nothing failed).
    const kept = lines.filter((l) => l.includes(' done on '));
    expect(kept).toHaveLength(2);
    for (const l of kept)
      expect(l).toMatch(/^distray: frames (1-3|9-11) done on [ab] \(of frames (1-8|9-16), stopped with the run\)/);
  });

  it('puts a chunk back whole when its host is lost', async () => {
    const { plan, s, records, log } = setup('1,6', 6);
    let lose = true;
    const a = new ChunkHost('a', 1, plan, log, 10, 10, () => {
      if (!lose) return { kind: 'done' };
      lose = false;
      return { kind: 'lost', message: 'connection reset' };
    });
    start(s, [a, new ChunkHost('b', 1, plan, log, 10, 10)]);
    await finish(s);
    expect(log.map((r) => [r.host, r.frames])).toEqual([
      ['a', [1, 2, 3, 4, 5, 6]],
      ['b', [1, 2, 3, 4, 5, 6]],
    ]);
    expect(records.map((r) => [r.task.label, r.status, r.lost])).toEqual([['frames 1-6', 'done', 1]]);
  });
});
