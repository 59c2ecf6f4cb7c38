import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChunkSizer } from '../../../src/plan/chunkSizer.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { parseGrid, parseSize } from '../../../src/plan/tiles.js';
import { countsLine, finalLines } from '../../../src/views/failures.js';
import { HostFigures } from '../../../src/fold/hostFigures.js';
import { junitChunks } from '../../../src/report/junit.js';
import { onEndEnv } from '../../../src/report/onEnd.js';
import { foldHostView, PlainProgress, type HostView } from '../../../src/views/progress.js';
import { endSummary, summarise, tasksOfRecords } from '../../../src/fold/summary.js';
import { countTasks, TaskFold, type FoldCounts } from '../../../src/fold/taskFold.js';
import { chunkRecords } from '../../../src/run.js';
import {
  Scheduler,
  type AttemptOutcome,
  type AttemptSlot,
  type SchedulerEvent,
  type TaskRecord,
} from '../../../src/scheduler/scheduler.js';
import { RunModel, type Snapshot } from '../../../src/ui/model.js';
import { FakeHost, random, type Act, type Final } from '../../helpers/fakeFarm.js';
import { startHosts } from '../../helpers/scheduler.js';

/**
 * One fold, every view: farms made at random from a seed (tasks, chunks or
 * tiles, frames complete already, hosts and slots, renders that fail, hang,
 * bring their outputs in late, chunks that die half-way, hosts lost, a
 * stop) run through the real Scheduler over fake hosts on fake time. At
 * every step the run's fold (TaskFold) must be what the scheduler's own
 * records say, and every view's counts must be the fold's: the terminal's
 * overall line, the page's progress and grid (the model reading the run's
 * fold, and one keeping its own), the per-host figures, the summary's first
 * line, JUnit, --on-end's environment and the --events stream's run-end.
 */

/** A host of the farm whose running attempts all end `lost` when it is lost, as the attempt layer's do. */
class LosableHost extends FakeHost {
  private lost: (o: Final) => void = () => {};
  private readonly gone = { promise: new Promise<Final>((resolve) => (this.lost = resolve)) };
  /** Its connection is gone: an attempt stopped meanwhile (a copy elsewhere won) ends lost, as one waiting for its host to come back does. */
  private away = false;
  goAway(): void {
    this.away = true;
  }
  lose(): void {
    this.lost({ kind: 'lost', message: `${this.name}: connection lost` });
  }
  override async run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    const away = (o: Final): Final =>
      o.kind === 'cancelled' && this.away ? { kind: 'lost', message: `${this.name}: connection lost` } : o;
    return away(await Promise.race([super.run(task, attempt, signal, slot), this.gone.promise]));
  }
}

interface Farm {
  plan: Plan;
  s: Scheduler;
  hosts: LosableHost[];
  /** When to lose which host, how long its attempts wait for it to come back before they end lost, and when to stop the run (ms of fake time), if at all. */
  losses: Array<{ at: number; grace: number; host: LosableHost }>;
  stopAt: number | undefined;
}

function farmOf(seed: number): Farm {
  const rnd = random(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const chance = (p: number): boolean => rnd() < p;
  const chunk = chance(0.3) ? int(2, 5) : undefined;
  const tiled = chunk === undefined && chance(0.25);
  const n = int(3, 24);
  const plan = new Plan({
    frames: parseFrameSpec(`1,${n}`),
    exec: 'r',
    args: [],
    ins: [],
    outs: [tiled ? 'o/t%d-%{tile}.png=t%d-%{tile}.png' : 'o/f%d.png=f%d.png'],
    hostNames: ['h0', 'h1', 'h2', 'h3'],
    tiles: tiled ? { grid: parseGrid('2x1'), size: parseSize('64x64') } : undefined,
    chunk,
  });
  let recs: TaskRecord[] = plan.tasks.map((t) => Scheduler.record(t));
  for (const r of recs) if (chance(0.15)) r.status = 'skipped';
  if (chunk !== undefined) recs = chunkRecords(plan, recs);
  const speculate = chunk === undefined && chance(0.6);
  // A farm where a render may hang is stopped in the end, if no copy beat it (a copy needs another host).
  const stopAt = chance(0.3) ? int(20, 600) : speculate ? int(3000, 4000) : undefined;
  let drift = 0;
  const s = new Scheduler(recs, {
    retries: int(0, 2),
    maxConsecutiveFailures: 3,
    now: () => Date.now() + (drift += 0.731),
    speculate,
    chunks:
      chunk === undefined
        ? undefined
        : new ChunkSizer((first, count, index) => plan.chunkTask(first, count, index), chunk),
  });
  // Hosts of different speeds: copies of a slow host's tasks race it, and a faster one may take the place of a copy.
  const behave = (task: Task, attempt: number, slow: number): Act => {
    const frames = plan.framesOf(task);
    const ms = int(5, 120) * frames.length * slow;
    const fetchMs = chance(0.3) ? int(1, 60) : undefined;
    const r = rnd();
    if (r < 0.12)
      return {
        ms,
        fetchMs,
        outcome: {
          kind: 'failed',
          message: `r failed on frame ${task.frame}`,
          failure: { stage: 'render', exitCode: 3, signal: null, timedOut: false, stalled: false, notFound: false },
        },
      };
    if (r < 0.2 && frames.length > 1) {
      // A chunk that died half-way, its first frames done.
      const done = frames.slice(0, int(1, frames.length - 1));
      return {
        ms,
        outcome: {
          kind: 'failed',
          message: 'died half-way',
          failure: { stage: 'render', exitCode: 5, signal: null, timedOut: false, stalled: false, notFound: false },
          done,
        },
      };
    }
    // A hung render (a first attempt) ends only with a stop, its host lost, or a copy winning.
    // A chunk stopped with the run keeps its first half (no draw of the generator: the farms stay as they were).
    const stoppedDone =
      frames.length > 1 && task.frame % 2 === 1 ? frames.slice(0, Math.floor(frames.length / 2)) : undefined;
    if (r < 0.24 && attempt === 1 && (stopAt !== undefined || speculate)) return { ms, outcome: 'hang', stoppedDone };
    return { ms, fetchMs, stoppedDone };
  };
  const hosts = Array.from({ length: int(1, 5) }, (_, i) => {
    const slow = chance(0.4) ? int(3, 12) : 1;
    return new LosableHost(`h${i}`, int(1, 3), (task, attempt) => behave(task, attempt, slow), chance(0.5));
  });
  // Never the last host standing: a farm that lost them all would wait for a host forever.
  const losses = hosts
    .slice(1)
    .flatMap((host) => (chance(0.25) ? [{ at: int(10, 500), grace: chance(0.5) ? 0 : int(1, 300), host }] : []));
  return { plan, s, hosts, losses, stopAt };
}

/** The grid's cells counted by state. */
function cellStates(snap: Snapshot): Record<string, number> {
  const states: Record<string, number> = {};
  for (const t of snap.tasks) states[t.state] = (states[t.state] ?? 0) + 1;
  return states;
}

/** The page's counts and grid agree with the fold's counts. */
function expectPage(snap: Snapshot, counts: FoldCounts): void {
  const { frames, tasks } = counts;
  expect(snap.progress).toMatchObject({
    total: frames.total,
    done: frames.done,
    failed: frames.failed,
    cancelled: frames.cancelled,
    skipped: frames.skipped,
    running: frames.rendering,
  });
  const cells = cellStates(snap);
  for (const st of ['done', 'failed', 'cancelled', 'skipped'] as const) expect(cells[st] ?? 0, st).toBe(tasks[st]);
  expect(cells.running ?? 0).toBe(tasks.rendering);
  expect((cells.queued ?? 0) + (cells.retrying ?? 0) + (cells.running ?? 0)).toBe(tasks.pending + tasks.running);
  // The timeline draws attempts that started, and only those.
  for (const b of snap.bars) expect(b.start, `${b.label} attempt ${b.attempt}`).not.toBeNull();
}

/** What the farms did, over all seeds: each case must have come up (a generator that never loses a host tests nothing of it). */
const seen = new Set<string>();

async function runFarm(seed: number): Promise<void> {
  const { plan, s, hosts, losses, stopAt } = farmOf(seed);
  const again = random(seed ^ 0x5eed);
  const origin = Date.now();
  // The run's fold first, then the views, as a run subscribes them.
  const fold = new TaskFold(origin);
  fold.begin(s.records);
  s.on('event', (e) => fold.add(e));
  const figures = new HostFigures();
  s.on('event', (e) => figures.add(e));
  const modelTasks = s.records.map((r) => ({
    index: r.task.index,
    frame: r.task.frame,
    tile: r.task.tile?.index ?? null,
    label: r.task.label,
    skipped: r.status === 'skipped',
    image: true,
    ...(r.task.chunk ? { count: r.task.chunk.count } : {}),
  }));
  const options = {
    title: 't',
    startedAt: new Date(0),
    origin,
    hosts: hosts.map((h) => ({ name: h.name, slots: h.slots })),
    tasks: modelTasks,
  };
  const model = new RunModel({ ...options, fold, figures });
  const own = new RunModel(options);
  s.on('event', (e) => {
    model.apply(e);
    own.apply(e);
  });
  const lines: string[] = [];
  new PlainProgress((l) => lines.push(l)).attach(s, { fold });
  // The live terminal's host rows (what renders on each host now).
  const rows = new Map<string, HostView>();
  s.on('event', (e) => foldHostView(rows, e));
  const events: SchedulerEvent[] = [];
  s.on('event', (e) => events.push(e));

  const check = (): void => {
    const list = fold.list();
    expect(list).toStrictEqual(tasksOfRecords(s.records, origin));
    const counts = fold.counts();
    const want = countTasks(list.tasks);
    expect({ ...counts.tasks, rendering: 0 }).toEqual(want.tasks);
    expect({ ...counts.frames, rendering: 0 }).toEqual(want.frames);
    expectPage(model.snapshot(), counts);
    expectPage(own.snapshot(), counts);
    // With --tiles: each frame's tiles done, as the terminal's "(3/4 tiles of frame 7)" says, are the list's.
    if (plan.tiled) {
      for (const frame of new Set(list.tasks.map((t) => t.frame))) {
        const mine = list.tasks.filter((t) => t.frame === frame);
        expect(fold.tilesOf(frame)).toEqual({
          done: mine.filter((t) => t.status === 'done' || t.status === 'skipped').length,
          tiles: mine.length,
        });
      }
    }
    // What renders on each host now: the terminal's rows, the page's busy slots and its running bars agree, and add up to the fold's.
    const snap = model.snapshot();
    for (const h of snap.hosts) {
      const bars = snap.bars.filter((b) => b.host === h.name && b.outcome === 'running').length;
      expect([h.name, h.busy, bars]).toEqual([h.name, rows.get(h.name)?.rendering.size ?? 0, h.busy]);
    }
    // The tasks running (a renderer runs, or its outputs come in) have a bar running or fetching each, a copy one more.
    const live = new Set(
      snap.bars.filter((b) => b.outcome === 'running' || b.outcome === 'collecting').map((b) => b.i),
    );
    expect(live.size).toBe(counts.tasks.rendering);
    // The page's host rows count what the run's per-host figures count (those the report and summary print).
    for (const h of [...model.snapshot().hosts, ...own.snapshot().hosts]) {
      const f = figures.figure(h.name);
      if (f) expect([h.name, h.tasksDone, h.failures]).toEqual([h.name, f.tasksDone, f.failures]);
    }
  };

  startHosts(s, hosts);
  const pending = [...losses].sort((a, b) => a.at - b.at);
  let stopped = false;
  for (let t = 0; t < 20_000 && !s.done;) {
    const step = 7 + (t % 41);
    await vi.advanceTimersByTimeAsync(step);
    t += step;
    while (pending[0] && pending[0].at <= t) {
      const { host, grace, at } = pending.shift()!;
      // Taken out, then its attempts end lost once the grace period is over (a copy elsewhere may win meanwhile).
      if (grace > 0 && !s.hosts.get(host.name)?.state.startsWith('lost')) {
        host.goAway();
        s.removeHost(host.name, 'lost', `${host.name}: connection lost`);
        pending.push({ host, grace: 0, at: at + grace });
        pending.sort((a, b) => a.at - b.at);
        continue;
      }
      host.goAway();
      if (s.hosts.get(host.name)?.state !== 'lost') s.removeHost(host.name, 'lost', `${host.name}: connection lost`);
      host.lose();
    }
    // Now and then a failed task is retried, as from the live page.
    const failed = s.records.find((r) => r.status === 'failed');
    if (failed && !stopped && again() < 0.3 && s.retry(failed.task.index) === undefined) seen.add('retried');
    if (!stopped && stopAt !== undefined && t >= stopAt) {
      stopped = true;
      s.cancel();
    }
    check();
  }
  await vi.runAllTimersAsync();
  await s.drained();
  expect(s.done, `seed ${seed}: the run ended`).toBe(true);
  check();

  const list = fold.list();
  const counts = fold.counts();
  // The terminal's overall line, at the last frame done: every frame done (or complete already) of all.
  const overall = lines.filter((l) => / \[\d+\/\d+ done/.test(l)).at(-1);
  if (overall)
    expect(/ \[(\d+)\/(\d+) done/.exec(overall)!.slice(1).map(Number)).toEqual([
      counts.frames.done + counts.frames.skipped,
      counts.frames.total,
    ]);
  // Per host: the figures' attempts lost are the tasks'; without chunks (whose parts done count for the host), tasks done and failures are the records'.
  const hostFigures = figures.figures().hosts;
  expect(hostFigures.reduce((n, h) => n + h.lost, 0)).toBe(list.tasks.reduce((n, t) => n + t.lost, 0));
  if (!plan.chunked) {
    for (const h of hostFigures)
      expect([h.name, h.tasksDone, h.failures]).toEqual([
        h.name,
        s.hosts.get(h.name)!.tasksDone,
        s.hosts.get(h.name)!.failures,
      ]);
  }
  // The summary and run-end count what the fold counts.
  const summary = summarise(list, hostFigures, {
    exitCode: 0,
    startedAt: new Date(0),
    seconds: 1,
    errors: [],
    figures: figures.figures(),
  });
  expect(finalLines(summary)[0]).toBe(`${countsLine({ tasks: list.tasks })} in 1.0s (exit 0)`);
  expect(onEndEnv(summary)).toMatchObject({
    DISTRAY_DONE: String(counts.frames.done),
    DISTRAY_FAILED: String(counts.frames.failed),
    DISTRAY_FRAMES: String(counts.frames.total),
  });
  const junit = [...junitChunks(summary)].join('');
  expect(/<testsuite name="distray" tests="(\d+)" failures="(\d+)"/.exec(junit)!.slice(1).map(Number)).toEqual([
    counts.frames.total,
    counts.frames.failed,
  ]);
  const end = endSummary(summary);
  expect({ ...end.counts, total: counts.tasks.total, rendering: counts.tasks.rendering }).toEqual(counts.tasks);
  expect({ ...end.frameCounts, total: counts.frames.total, rendering: counts.frames.rendering }).toEqual(counts.frames);
  for (const e of events) {
    seen.add(e.type);
    if (e.type === 'attempt-ended') seen.add(`${e.outcome}${e.ignored ? ' ignored' : ''}`);
    if (e.type === 'task-done') seen.add(`task ${e.status}`);
    if (e.type === 'speculation-lost' && e.replaced) seen.add('replaced');
    if (e.type === 'attempt-queued' && e.behind) seen.add('behind');
    if (e.type === 'chunk-split' && stopped) seen.add('stopped chunk kept');
  }
  const runEnd = events.find((e) => e.type === 'run-end');
  expect(runEnd).toMatchObject({
    done: counts.tasks.done,
    failed: counts.tasks.failed,
    cancelled: counts.tasks.cancelled,
    skipped: counts.tasks.skipped,
  });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('one fold, every view', () => {
  // Seeds 1..80, and 378 (the first whose farm replaces a copy by a faster one): a failure names its seed, and runFarm(seed) replays it exactly.
  const SEEDS = [...Array.from({ length: 80 }, (_, i) => i + 1), 378];
  it('random farms: the fold is the records, and every view counts what the fold counts', async () => {
    for (const seed of SEEDS) {
      try {
        await runFarm(seed);
      } catch (err) {
        throw new Error(`farm of seed ${seed}: ${(err as Error).message}`, { cause: err });
      }
      vi.clearAllTimers();
    }
    for (const c of [
      'replaced',
      'behind',
      'retried',
      'chunk-split',
      'chunk-formed',
      'speculation-started',
      'speculation-lost',
      'lost',
      'lost ignored',
      'released',
      'failed',
      'cancelled',
      'task failed',
      'task cancelled',
      'task done',
      'stopped chunk kept',
    ])
      expect(seen, c).toContain(c);
  });
});
