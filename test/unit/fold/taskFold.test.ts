import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChunkSizer } from '../../../src/plan/chunkSizer.js';
import type { ChunkSize } from '../../../src/plan/chunks.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { parseGrid, parseSize } from '../../../src/plan/tiles.js';
import { summarise, tasksOfRecords } from '../../../src/fold/summary.js';
import { countTasks, TaskFold } from '../../../src/fold/taskFold.js';
import { chunkRecords } from '../../../src/run.js';
import {
  Scheduler,
  type AttemptFailure,
  type SchedulerEvent,
  type SchedulerHost,
  type SchedulerOptions,
  type TaskRecord,
} from '../../../src/scheduler/scheduler.js';
import { FakeHost, type Behaviour, type Final } from '../../helpers/fakeFarm.js';
import { startHosts as start } from '../../helpers/scheduler.js';

/**
 * The report's task list folded from the scheduler's events must be what the
 * scheduler's own records say, field for field, at any quiet moment of a
 * run and at its end: the records-based list (tasksOfRecords, what the
 * report was made from before) is the oracle. Each case drives a real
 * Scheduler over fake hosts on fake time.
 */

const failure = (over: Partial<AttemptFailure> = {}): AttemptFailure => ({
  stage: 'render',
  exitCode: 3,
  signal: null,
  timedOut: false,
  stalled: false,
  notFound: false,
  ...over,
});
const failed = (
  message: string,
  over: Partial<AttemptFailure> = {},
  log: string | undefined = `logs/${message}.log`,
): Final => ({ kind: 'failed', message, log, failure: failure(over) });

/** The plan's tasks as scheduler records, those whose frames are in `skipped` complete already. */
function records(plan: Plan, skipped: readonly number[] = []): TaskRecord[] {
  const rs = plan.tasks.map((t) => Scheduler.record(t));
  for (const r of rs) if (skipped.includes(r.task.frame)) r.status = 'skipped';
  return plan.chunked ? chunkRecords(plan, rs) : rs;
}

function framesPlan(spec: string, opts: { tiles?: string; chunk?: ChunkSize } = {}): Plan {
  const tiles = opts.tiles ? { grid: parseGrid(opts.tiles), size: parseSize('64x64') } : undefined;
  return new Plan({
    frames: parseFrameSpec(spec),
    exec: 'r',
    args: [],
    ins: [],
    outs: [opts.tiles ? 'o/t%d-%{tile}.png=t%d-%{tile}.png' : 'o/f%d.png=f%d.png'],
    hostNames: ['a', 'b', 'c'],
    tiles,
    chunk: opts.chunk,
  });
}

/**
 * A scheduler over `recs`, its events folded as a run folds them. The clock
 * is fake time plus a little more at each reading, so that no two readings
 * are alike and sums of times are not round: a fold that took a time from
 * the wrong event would show.
 */
function watched(recs: TaskRecord[], options: Partial<SchedulerOptions> = {}) {
  let drift = 0;
  const s = new Scheduler(recs, {
    retries: 2,
    maxConsecutiveFailures: 3,
    now: () => Date.now() + (drift += 1.2731),
    ...options,
  });
  const origin = Date.now() - 12.3456;
  const fold = new TaskFold(origin);
  // And one without the clock's origin: its tasks have no start and end.
  const bare = new TaskFold();
  for (const f of [fold, bare]) {
    f.begin(recs);
    s.on('event', (e) => f.add(e));
  }
  const check = (): void => {
    const got = fold.list();
    const want = tasksOfRecords(s.records, origin);
    expect(got).toStrictEqual(want);
    // The same JSON text too: the report's lines keep their keys' order.
    expect(JSON.stringify(got)).toBe(JSON.stringify(want));
    expect(bare.list()).toStrictEqual(tasksOfRecords(s.records));
    // The counts every view reads, kept as the run goes, are the list's (of tasks, and of frames).
    const counts = countTasks(want.tasks);
    for (const f of [fold, bare]) {
      const now = f.counts();
      expect({ ...now.tasks, rendering: 0 }).toEqual(counts.tasks);
      expect({ ...now.frames, rendering: 0 }).toEqual(counts.frames);
    }
  };
  return { s, fold, check };
}

/** Runs fake time in steps, comparing the fold with the records after each, then to the end. */
async function runChecked(s: Scheduler, check: () => void, step = 37): Promise<void> {
  for (let i = 0; i < 2000 && !s.done; i++) {
    await vi.advanceTimersByTimeAsync(step);
    check();
  }
  await vi.runAllTimersAsync();
  await s.drained();
  check();
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TaskFold equals the summary of the scheduler records', () => {
  it('every task done, on hosts of different speeds and slots', async () => {
    const { s, check } = watched(records(framesPlan('1,30')));
    start(s, [new FakeHost('a', 2, () => ({ ms: 40 })), new FakeHost('b', 1, () => ({ ms: 110 }))]);
    await runChecked(s, check);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
  });

  it('failed after its retries, with the failure facts and the log of its last attempt', async () => {
    const { s, check } = watched(records(framesPlan('1,8')), { retries: 2, maxConsecutiveFailures: 10 });
    let n = 0;
    const flaky: Behaviour = (t) => ({
      ms: 50,
      outcome:
        t.frame === 3
          ? failed(`boom${++n}`, { stage: n % 2 ? 'render' : 'output', exitCode: n % 2 ? 2 : 0 })
          : undefined,
    });
    start(s, [new FakeHost('a', 1, flaky), new FakeHost('b', 1, flaky)]);
    await runChecked(s, check);
    expect(s.records[2]).toMatchObject({ status: 'failed', attempts: 3, log: 'logs/boom3.log' });
  });

  it('failed by a signal, a timeout, a stall, a failure with no facts, and one with no log', async () => {
    const { s, check } = watched(records(framesPlan('1,6')), { retries: 0, maxConsecutiveFailures: 10 });
    const outcomes: Record<number, Final> = {
      1: failed('killed', { exitCode: null, signal: 'SIGKILL' }),
      2: failed('timed out', { exitCode: null, signal: 'SIGTERM', timedOut: true }),
      3: failed('stalled', { exitCode: null, stalled: true }),
      4: { kind: 'failed', message: 'internal error: x' },
      5: failed('no log', { stage: 'input' }, undefined),
    };
    start(s, [new FakeHost('a', 2, (t) => ({ ms: 30 + t.frame, outcome: outcomes[t.frame] }))]);
    await runChecked(s, check, 11);
    expect(s.records.map((r) => r.status)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed', 'done']);
  });

  it('retried elsewhere after failing, and done there', async () => {
    const { s, check } = watched(records(framesPlan('1,10')));
    start(s, [
      new FakeHost('a', 1, (t) => ({ ms: 30, outcome: t.frame % 3 === 0 ? failed(`bad ${t.frame}`) : undefined })),
      new FakeHost('b', 1, () => ({ ms: 45 })),
    ]);
    await runChecked(s, check);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    expect(s.records.some((r) => r.attempts > 1 && r.error === undefined)).toBe(true);
  });

  it('a host that throws, and one taken out after failing three tasks in a row (the rest fail when no host is left)', async () => {
    const { s, check } = watched(records(framesPlan('1,9')), { retries: 5 });
    const broken: SchedulerHost = {
      name: 'broken',
      slots: 1,
      run: () => {
        throw new Error('cannot start');
      },
    };
    start(s, [broken]);
    await runChecked(s, check);
    expect(s.records.every((r) => r.status === 'failed')).toBe(true);
    expect(s.records.some((r) => /no host is left/.test(r.error ?? ''))).toBe(true);
  });

  it('speculation: a hung render copied to a faster slot; the copy wins, the original is stopped', async () => {
    const { s, check } = watched(records(framesPlan('1,8')), { speculate: true });
    start(s, [
      new FakeHost('a', 1, (t) => ({ ms: 100, outcome: t.frame === 3 ? 'hang' : undefined })),
      new FakeHost('b', 1, () => ({ ms: 100 })),
    ]);
    await runChecked(s, check);
    expect(s.records[2]).toMatchObject({ status: 'done', copies: 2, won: { host: 'b', attempt: 2 } });
  });

  it('speculation: a losing copy that fails late (deaf to the abort) changes nothing', async () => {
    const { s, check } = watched(records(framesPlan('1,3')), { speculate: true });
    start(s, [
      new FakeHost('a', 1, (t) => (t.frame === 2 ? { ms: 10_000, outcome: failed('late'), deaf: true } : { ms: 100 })),
      new FakeHost('b', 1, () => ({ ms: 100 })),
    ]);
    await runChecked(s, check, 97);
    expect(s.records[1]).toMatchObject({ status: 'done', won: { host: 'b' }, attempts: 1 });
  });

  it('a lost host: its tasks are copied elsewhere at once (lost counted), and without speculation put back', async () => {
    for (const speculate of [true, false]) {
      const { s, check } = watched(records(framesPlan('1,6')), { speculate });
      let lose = true;
      const a = new FakeHost('a', 2, () =>
        lose ? { ms: 150, outcome: { kind: 'lost', message: 'connection reset' } } : { ms: 50 },
      );
      start(s, [a, new FakeHost('b', 2, () => ({ ms: 100 }))]);
      await vi.advanceTimersByTimeAsync(60);
      check();
      s.removeHost('a', 'lost', 'keepalive timed out');
      check();
      lose = false;
      await runChecked(s, check);
      expect(s.records.every((r) => r.status === 'done')).toBe(true);
      expect(s.records.some((r) => r.lost > 0)).toBe(true);
    }
  });

  it('a lost host that comes back with its result first', async () => {
    const { s, check } = watched(records(framesPlan('1,1')), { speculate: true });
    start(s, [new FakeHost('a', 1, () => ({ ms: 300 })), new FakeHost('b', 1, () => ({ ms: 1_000 }))]);
    await vi.advanceTimersByTimeAsync(50);
    s.removeHost('a', 'lost', 'connection reset');
    await runChecked(s, check);
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'a', attempt: 1 }, copies: 2 });
  });

  it('cancel mid-run: running attempts stopped, queued tasks cancelled, with a lost attempt among them', async () => {
    const { s, check } = watched(records(framesPlan('1,20')));
    start(s, [
      new FakeHost('a', 2, (t) => ({ ms: 80, outcome: t.frame === 4 ? failed('once') : undefined })),
      new FakeHost('b', 1, (t) => ({
        ms: 120,
        outcome: t.frame === 3 ? { kind: 'lost', message: 'gone' } : undefined,
      })),
    ]);
    await vi.advanceTimersByTimeAsync(250);
    check();
    s.cancel();
    check();
    await runChecked(s, check);
    expect(s.records.some((r) => r.status === 'cancelled')).toBe(true);
    expect(s.records.some((r) => r.status === 'done')).toBe(true);
  });

  it('skipped tasks, and slots that queue their next task behind the running one', async () => {
    const { s, check } = watched(records(framesPlan('1,40'), [1, 2, 7, 20, 40]));
    start(s, [new FakeHost('a', 2, () => ({ ms: 30 }), true), new FakeHost('b', 1, () => ({ ms: 70 }), true)]);
    await runChecked(s, check);
    expect(s.records.filter((r) => r.status === 'skipped')).toHaveLength(5);
  });

  it('slots released before the outputs are in (downloads overlap the next render)', async () => {
    const { s, check } = watched(records(framesPlan('1,12')));
    start(s, [
      new FakeHost('a', 2, (t) => ({
        ms: 40,
        fetchMs: 25,
        outcome: t.frame === 5 ? failed('output missing', { stage: 'output', exitCode: 0 }) : undefined,
      })),
    ]);
    await runChecked(s, check, 13);
    expect(s.records[4]!.attempts).toBeGreaterThan(1);
  });

  it('tiles', async () => {
    const { s, check } = watched(records(framesPlan('1,4', { tiles: '2x2' })));
    start(s, [
      new FakeHost('a', 2, (t) => ({
        ms: 20,
        outcome: t.tile?.index === 3 && t.frame === 2 ? failed('tile') : undefined,
      })),
      new FakeHost('b', 2, () => ({ ms: 35 })),
    ]);
    await runChecked(s, check);
    expect(s.records).toHaveLength(16);
  });

  it('Scheduler.retry: a task that gave up, put back by hand, then done', async () => {
    const { s, check } = watched(records(framesPlan('1,4')), { retries: 1, maxConsecutiveFailures: 10 });
    let fixed = false;
    start(s, [
      new FakeHost('a', 1, (t) => ({ ms: 100, outcome: t.frame === 1 && !fixed ? failed('boom') : undefined })),
    ]);
    await vi.advanceTimersByTimeAsync(250);
    check();
    expect(s.records[0]!.status).toBe('failed');
    fixed = true;
    expect(s.retry(0)).toBeUndefined();
    check();
    await runChecked(s, check);
    expect(s.records[0]).toMatchObject({ status: 'done', attempts: 3 });
  });
});

describe('TaskFold equals the summary of the scheduler records, with --chunk', () => {
  function chunked(
    spec: string,
    size: ChunkSize,
    opts: { retries?: number; targetMs?: number; skipped?: number[] } = {},
  ) {
    const plan = framesPlan(spec, { chunk: size });
    const w = watched(records(plan, opts.skipped), {
      retries: opts.retries ?? 2,
      chunks: new ChunkSizer((first, count, index) => plan.chunkTask(first, count, index), size, opts.targetMs),
    });
    const events: SchedulerEvent[] = [];
    w.s.on('event', (e) => events.push(e));
    /** A host whose attempt pays a start-up and a time per frame of its chunk. */
    const host = (
      name: string,
      slots: number,
      outcome: (frames: number[], attempt: number) => Final | undefined = () => undefined,
      frameMs = 10,
    ) =>
      new FakeHost(name, slots, (t, attempt) => {
        const frames = plan.framesOf(t);
        return { ms: 20 + frameMs * frames.length, outcome: outcome(frames, attempt) };
      });
    return { plan, ...w, host, events };
  }

  it('chunks of N, with one that dies half-way split into what is done and what is queued again', async () => {
    const { s, check, host } = chunked('1,40', 6, { retries: 0 });
    start(s, [
      host('a', 2, (frames, attempt) =>
        attempt === 1 && frames.includes(9)
          ? { ...failed('died at 10'), done: frames.filter((f) => f < 10) }
          : undefined,
      ),
      host('b', 1),
    ]);
    await runChecked(s, check, 23);
    expect(s.records.some((r) => r.partial)).toBe(true);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
  });

  it('scattered missing frames: chunks split into runs, the missing ones failed for good (missingFrames)', async () => {
    const { s, check, host, fold } = chunked('0,19', 10, { retries: 0 });
    const bad = new Set([3, 4, 8, 15]);
    start(s, [
      host('a', 1, (frames) =>
        frames.some((f) => bad.has(f))
          ? { ...failed('frames missing'), done: frames.filter((f) => !bad.has(f)) }
          : undefined,
      ),
    ]);
    await runChecked(s, check, 19);
    expect(fold.list().missingFrames).toEqual([3, 4, 8, 15]);
  });

  it('a chunk that produced nothing is retried whole, then fails', async () => {
    const { s, check, host } = chunked('1,4', 4, { retries: 1 });
    start(s, [host('a', 1, () => failed('crashed at start-up')), host('b', 1, () => failed('crashed too'))]);
    await runChecked(s, check);
    expect(s.records.map((r) => r.status)).toEqual(['failed']);
  });

  it('auto chunks sized as the run measures them, on a rerun with frames complete already, downwards', async () => {
    const { s, check, host, fold } = chunked('120,1,-1', 'auto', { targetMs: 400, skipped: [1, 2, 60, 61, 62, 100] });
    start(s, [
      host('a', 1),
      host(
        'b',
        2,
        (frames, attempt) =>
          attempt === 1 && frames.includes(50) && frames.length > 1
            ? { ...failed('died'), done: frames.filter((f) => f > 50) }
            : undefined,
        7,
      ),
    ]);
    await runChecked(s, check, 29);
    const list = fold.list();
    expect(list.tasks.map((t) => t.frame)).toEqual([...list.tasks.map((t) => t.frame)].sort((a, b) => b - a));
    expect(list.missingFrames).toEqual([]);
  });

  it('auto chunks: the rest of a chunk that died half-way is carved smaller by a slower host, keeping its failure', async () => {
    const { s, check, host, events } = chunked('1,300', 'auto', { targetMs: 1_000 });
    let died = false;
    const fast = host('a', 1, (frames) => {
      if (died || frames.length < 10) return undefined;
      died = true;
      return { ...failed('died at its third frame', { exitCode: 7 }), done: frames.slice(0, 2) };
    });
    start(s, [fast, host('b', 1, () => undefined, 60)]);
    await runChecked(s, check, 31);
    const split = events.find((e) => e.type === 'chunk-split');
    const rest = split?.type === 'chunk-split' ? split.parts[1]! : undefined;
    // The part queued again was cut by the next slot that took it: the part it took carries its failure.
    expect(events.some((e) => e.type === 'chunk-formed' && e.from.index === rest?.index)).toBe(true);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
  });

  it('a chunk put back whole when its host is lost, and a run stopped while chunks are queued', async () => {
    const { s, check, host } = chunked('1,60', 5);
    let lose = true;
    const a = new FakeHost('a', 1, () => {
      if (!lose) return { ms: 50 };
      lose = false;
      return { ms: 50, outcome: { kind: 'lost', message: 'connection reset' } };
    });
    start(s, [a, host('b', 1)]);
    await vi.advanceTimersByTimeAsync(300);
    check();
    s.cancel();
    await runChecked(s, check);
    expect(s.records.some((r) => r.lost === 1)).toBe(true);
    expect(s.records.some((r) => r.status === 'cancelled')).toBe(true);
  });

  it('a split chunk whose only host leaves with it: its parts not done fail with the failure and log of that attempt', async () => {
    const { s, check, host } = chunked('1,10', 10);
    start(s, [
      host('a', 1, (frames) => {
        s.removeHost('a', 'removed', 'removed from the inventory');
        return { ...failed('died at 5', { exitCode: 9 }), done: frames.filter((f) => f <= 4) };
      }),
    ]);
    await runChecked(s, check);
    expect(s.records.map((r) => [r.status, r.log])).toEqual([
      ['done', undefined],
      ['failed', 'logs/died at 5.log'],
    ]);
  });

  it('a split chunk stopped with the run: its parts not done are cancelled', async () => {
    const { s, check, host } = chunked('1,10', 10);
    start(s, [
      host('a', 1, (frames) => {
        s.cancel();
        return { ...failed('stopped'), done: frames.filter((f) => f <= 4) };
      }),
    ]);
    await runChecked(s, check);
    expect(s.records.map((r) => r.status)).toEqual(['done', 'cancelled']);
  });
});

describe('TaskFold', () => {
  it('cancels the tasks still waiting when a run stops on an error, and gives the report its tasks', () => {
    const plan = framesPlan('1,3');
    const recs = records(plan, [2]);
    const fold = new TaskFold();
    fold.begin(recs);
    fold.cancelWaiting();
    for (const r of recs) if (r.status === 'pending') r.status = 'cancelled';
    expect(fold.list()).toStrictEqual(tasksOfRecords(recs));
    const report = summarise(fold.list(), [], { exitCode: 1, startedAt: new Date(0), seconds: 1, errors: [] });
    expect(report.tasks.map((t) => t.status)).toEqual(['cancelled', 'skipped', 'cancelled']);
    expect(report).not.toHaveProperty('missingFrames');
  });

  it('begins once: a second call (a run that failed after it began) changes nothing', () => {
    const plan = framesPlan('1,2');
    const fold = new TaskFold();
    fold.begin(records(plan));
    fold.begin(records(plan, [1, 2]));
    expect(fold.list().tasks.map((t) => t.status)).toEqual(['pending', 'pending']);
  });
});
