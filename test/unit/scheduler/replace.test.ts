import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Task } from '../../../src/plan/plan.js';
import { tasksOfRecords } from '../../../src/fold/summary.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import {
  Scheduler,
  type AttemptOutcome,
  type AttemptSlot,
  type SchedulerEvent,
  type SchedulerHost,
} from '../../../src/scheduler/scheduler.js';
import { refused, tasks } from '../../helpers/scheduler.js';

// A task at its three live attempts can still get a copy on a faster slot: the copy takes the place of the
// attempt expected to end last, which is stopped (speculation-lost with replaced: true) and is on its way
// out: it ends ignored, whatever it ends with. So when the task's other attempts all fail (or are lost)
// while it is still being stopped, their outcome must decide the task; the stopping one cannot. The sim
// test in farm.test.ts shows replacing pays off on a big farm; these show the mechanics on a few fake
// hosts, and after each the report's tasks folded from the events are checked against the records.

const wait = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

interface Timing {
  /** Fake ms a frame renders; Infinity: it hangs until stopped. */
  ms(frame: number): number;
  /** How a render that was not stopped ends (done unless said). */
  ends?(frame: number): 'done' | 'failed' | 'lost';
  /** Frames whose attempt waits here (before its renderer starts) until `open`. */
  gated?: ReadonlySet<number>;
  /** A round trip before the renderer is said to have started, and before a stopped attempt returns. */
  startMs?: number;
  stopMs?: number;
  /**
   * A stopped render that completes all the same: it claims the task's outputs after the stop's round
   * trip ('after'; done if it may), or as it is stopped, and then moves them into place ('before': done,
   * or failed and unclaimed with `moveFails`).
   */
  completesWhenStopped?: 'before' | 'after';
  moveFails?: boolean;
}

/** A fake host: an attempt waits at the gate, renders, ends as `ends` says, and returns `cancelled` stopMs after an abort. */
class Host implements SchedulerHost {
  aborted: number[] = [];
  /** What each claim asked for was answered. */
  claims: boolean[] = [];
  constructor(
    readonly name: string,
    private readonly timing: Timing,
    private readonly gate: Promise<void> = Promise.resolve(),
  ) {}
  readonly slots = 1;
  async run(task: Task, _attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    const t = this.timing;
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    if (t.gated?.has(task.frame)) await Promise.race([this.gate, stopped]);
    if (!signal.aborted) await wait(t.startMs ?? 0, signal);
    if (!signal.aborted) {
      slot.started();
      const ms = t.ms(task.frame);
      await (Number.isFinite(ms) ? wait(ms, signal) : stopped);
    }
    if (!signal.aborted) {
      const how = t.ends?.(task.frame) ?? 'done';
      if (how === 'failed') return { kind: 'failed', message: `frame ${task.frame} failed on ${this.name}` };
      if (how === 'lost') return { kind: 'lost', message: `${this.name} went away` };
      // As the attempt layer does: a copy beaten to the claim discards its outputs.
      return slot.claim?.() === false ? { kind: 'cancelled' } : { kind: 'done' };
    }
    this.aborted.push(task.frame);
    const claimed = t.completesWhenStopped === 'before' ? this.claim(slot) : false;
    await wait(t.stopMs ?? 0);
    if (claimed && t.moveFails) {
      slot.unclaim?.();
      return { kind: 'failed', message: `frame ${task.frame}: its outputs could not be moved into place` };
    }
    if (claimed || (t.completesWhenStopped === 'after' && this.claim(slot))) return { kind: 'done' };
    return { kind: 'cancelled' };
  }

  private claim(slot: AttemptSlot): boolean {
    const claimed = slot.claim?.() ?? true;
    this.claims.push(claimed);
    return claimed;
  }
}

/**
 * Follows the events of one task: the attempts running that have not been
 * told to stop (never more than three), and each attempt told to stop once.
 */
function watchTask(events: SchedulerEvent[], frame: number): { most: number; stopTold: string[] } {
  const live = new Set<string>();
  const stopping = new Set<string>();
  const stopTold: string[] = [];
  let most = 0;
  for (const e of events) {
    if (!('task' in e) || e.task.frame !== frame) continue;
    if (e.type === 'attempt-queued') live.add(`${e.host}#${e.attempt}`);
    if (e.type === 'speculation-lost') {
      stopTold.push(`${e.host}#${e.attempt}`);
      stopping.add(`${e.host}#${e.attempt}`);
    }
    if (e.type === 'attempt-ended' && e.outcome !== 'released') live.delete(`${e.host}#${e.attempt}`);
    // Counted once a copy's start has been told in full (a replacing copy is queued just before the attempt it replaces is told to stop).
    if (e.type !== 'attempt-queued' && e.type !== 'speculation-started')
      most = Math.max(most, [...live].filter((k) => !stopping.has(k)).length);
  }
  return { most, stopTold };
}

/** Fake time passes 100 ms at a time until `done` (a bound keeps a broken scheduler from looping for ever). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await vi.advanceTimersByTimeAsync(100);
  expect(done()).toBe(true);
}

let folded: (() => void) | undefined;

/** The scheduler, its events, and (checked after each test) the report's tasks folded from them, against its records. */
function scheduler(n: number, retries = 2): { s: Scheduler; events: SchedulerEvent[]; same: () => void } {
  const s = new Scheduler(
    tasks(n).map((t) => Scheduler.record(t)),
    { retries, maxConsecutiveFailures: 3, now: () => Date.now(), speculate: true, onRefusedMove: refused },
  );
  const events: SchedulerEvent[] = [];
  const origin = Date.now();
  const fold = new TaskFold(origin);
  fold.begin(s.records);
  s.on('event', (e) => {
    events.push(e);
    fold.add(e);
  });
  const same = (): void => expect(fold.list()).toStrictEqual(tasksOfRecords(s.records, origin));
  folded = same;
  return { s, events, same };
}

const copiesOf = (events: SchedulerEvent[], frame: number): number =>
  events.filter((e) => e.type === 'speculation-started' && e.task.frame === frame).length;
const replacedOf = (events: SchedulerEvent[], frame: number): number =>
  events.filter((e) => e.type === 'speculation-lost' && e.replaced && e.task.frame === frame).length;

/** Frame 1 takes 10 s and fails on a slow host; the others take 400 ms. */
const SLOW_FAILING: Timing = { ms: (fr) => (fr === 1 ? 10_000 : 400), ends: (fr) => (fr === 1 ? 'failed' : 'done') };

/**
 * The farm of these tests: frame 1 starts on h (whose render hangs, or as `h` says); s1 and s2 (slow)
 * take copies of it while f is held up on frame 6 (50 ms for frame 1, 100 ms for others, or as `f`
 * says), so the task is at three attempts when f frees up, a second after s2's copy started: f's copy
 * is then expected to end before all three, and replaces the one expected to end last.
 */
async function replacingFarm(
  s: Scheduler,
  events: SchedulerEvent[],
  timing: { h: Timing; f?: Partial<Timing>; slow: Timing },
): Promise<{ h: Host; f: Host; s1: Host; s2: Host }> {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const h = new Host('h', timing.h);
  const f = new Host('f', { ms: (fr) => (fr === 1 ? 50 : 100), gated: new Set([6]), ...timing.f }, gate);
  const s1 = new Host('s1', timing.slow);
  const s2 = new Host('s2', timing.slow);
  for (const x of [h, f, s1, s2]) s.expectHost(x.name);
  for (const x of [h, f, s1, s2]) s.addHost(x);
  await until(() => copiesOf(events, 1) === 2);
  expect(s.records[0]).toMatchObject({ status: 'running', copies: 3 });
  await vi.advanceTimersByTimeAsync(1_000);
  open();
  return { h, f, s1, s2 };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  folded?.();
  folded = undefined;
});

describe('Scheduler: the task of an attempt that is being stopped for a faster copy', () => {
  it('is settled by its other attempts when they all fail while the replaced one is still being stopped', async () => {
    // Frame 1 hangs on h, whose renders take 30 s to stop; its copies on s1 and s2 fail after 10 s, and
    // f's copy (made once f is free, replacing h's attempt) fails at once. Three failures with
    // --retries 2: the task has failed, whether or not h has returned yet.
    const { s, events } = scheduler(6);
    const { h } = await replacingFarm(s, events, {
      h: { ms: () => Infinity, stopMs: 30_000 },
      f: { ends: (fr) => (fr === 1 ? 'failed' : 'done') },
      slow: SLOW_FAILING,
    });
    await until(() => replacedOf(events, 1) === 1);
    expect(h.aborted).toEqual([1]);
    // s1's and s2's copies fail long before h has stopped: the task is failed then, not left with no attempt that counts.
    await until(
      () =>
        events.filter((e) => e.type === 'attempt-ended' && e.task.frame === 1 && e.outcome === 'failed').length === 3,
    );
    expect(s.records[0]).toMatchObject({ status: 'failed', attempts: 3 });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'failed' }]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.slice(1).every((r) => r.status === 'done')).toBe(true);
    // h's attempt, stopped, ends ignored and changes nothing.
    expect(events.find((e) => e.type === 'attempt-ended' && e.host === 'h')).toMatchObject({
      outcome: 'cancelled',
      ignored: true,
      settled: null,
    });
    expect(s.records[0]).toMatchObject({ status: 'failed', attempts: 3 });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toHaveLength(1);
  });

  it('goes back to the queue when its other attempts fail with retries left while the replaced one is still being stopped', async () => {
    // As above with --retries 5: the task is queued again, and done by h once it is free (every other host has failed it).
    const { s, events, same } = scheduler(6, 5);
    let hFrame1 = 0;
    await replacingFarm(s, events, {
      h: { ms: (fr) => (fr === 1 && hFrame1++ === 0 ? Infinity : 100), stopMs: 30_000 },
      f: { ends: (fr) => (fr === 1 ? 'failed' : 'done') },
      slow: SLOW_FAILING,
    });
    await until(() => replacedOf(events, 1) === 1);
    await until(
      () =>
        events.filter((e) => e.type === 'attempt-ended' && e.task.frame === 1 && e.outcome === 'failed').length === 3,
    );
    // Three failures, five retries: back in the queue while h is still being stopped.
    expect(s.records[0]!.status).toBe('pending');
    same();
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    expect(s.records[0]).toMatchObject({ status: 'done', attempts: 4, won: { host: 'h' } });
  });

  it('does not let the replaced attempt claim the outputs of a task its other attempts have failed', async () => {
    // As the first case, with h's render completing as it is being stopped: the task was reported failed
    // (task-done said so), so h's outputs must not be moved into place behind that report.
    const { s, events } = scheduler(6);
    const { h } = await replacingFarm(s, events, {
      h: { ms: () => Infinity, stopMs: 30_000, completesWhenStopped: 'after' },
      f: { ends: (fr) => (fr === 1 ? 'failed' : 'done') },
      slow: SLOW_FAILING,
    });
    await until(() => replacedOf(events, 1) === 1);
    await until(() => s.records[0]!.status === 'failed');
    await vi.runAllTimersAsync();
    await s.drained();
    expect(h.claims).toEqual([false]);
    expect(events.find((e) => e.type === 'attempt-ended' && e.host === 'h')).toMatchObject({
      outcome: 'cancelled',
      ignored: true,
      settled: null,
    });
    expect(s.records[0]).toMatchObject({ status: 'failed', attempts: 3, won: null });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'failed' }]);
  });

  it("keeps the task going while the replaced attempt holds the outputs' claim, and it wins", async () => {
    // h's render completes as it is stopped: it claims the outputs at once and takes the stop's round trip
    // to move them. f's copy, done meanwhile, is beaten to the claim; s1's and s2's copies fail. The task
    // waits for h, whose result is complete: done by h.
    const { s, events } = scheduler(6);
    const { h } = await replacingFarm(s, events, {
      h: { ms: () => Infinity, stopMs: 30_000, completesWhenStopped: 'before' },
      slow: SLOW_FAILING,
    });
    await until(() => replacedOf(events, 1) === 1);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(h.claims).toEqual([true]);
    expect(
      events
        .filter((e) => e.type === 'attempt-ended' && e.task.frame === 1)
        .map((e) => e.type === 'attempt-ended' && `${e.host} ${e.outcome}`),
    ).toEqual(['f cancelled', 's1 failed', 's2 failed', 'h done']);
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'h', attempt: 1 } });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'done' }]);
  });

  it("queues the task again when the replaced attempt holding the outputs' claim fails to move them and no other attempt is left", async () => {
    const { s, events } = scheduler(6, 5);
    const { h } = await replacingFarm(s, events, {
      h: { ms: () => Infinity, stopMs: 30_000, completesWhenStopped: 'before', moveFails: true },
      slow: SLOW_FAILING,
    });
    await until(() => replacedOf(events, 1) === 1);
    await vi.runAllTimersAsync();
    await s.drained();
    // h claimed for its first attempt (then again, refused, for the one it took when the task came back and lost to f's).
    expect(h.claims).toEqual([true, false]);
    // h's attempt ends ignored (it was replaced), and the task is queued again: f's copy of it (f was beaten to the claim, not failed) wins.
    expect(events.find((e) => e.type === 'attempt-ended' && e.host === 'h')).toMatchObject({
      outcome: 'failed',
      ignored: true,
    });
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'f' } });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'done' }]);
  });

  it('tells the replaced attempt to stop once: when the copy that replaced it wins, it is not told again', async () => {
    const { s, events } = scheduler(6);
    await replacingFarm(s, events, {
      h: { ms: () => Infinity, stopMs: 30_000 },
      slow: { ms: (fr) => (fr === 1 ? Infinity : 400) },
    });
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'f' } });
    const told = events
      .filter((e) => e.type === 'speculation-lost' && e.task.frame === 1)
      .map((e) => e.type === 'speculation-lost' && `${e.host}#${e.attempt}${e.replaced ? ' replaced' : ''}`);
    expect(told.sort()).toEqual(['h#1 replaced', 's1#2', 's2#3']);
  });
});

describe('Scheduler: a copy that replaces the attempt expected to end last', () => {
  it('stops the one expected to end last for a faster copy; the replaced attempt costs the task and its host nothing', async () => {
    // Frame 1 hangs on h, s1 and s2 (400 ms a frame); f (100 ms a frame) is held up on frame 6 while
    // s1 and s2 take copies of frame 1, so the task is at three attempts when f frees up.
    const { s, events } = scheduler(6);
    const { h, s1, s2 } = await replacingFarm(s, events, {
      h: { ms: () => Infinity },
      f: { ms: () => 100 },
      slow: { ms: (fr) => (fr === 1 ? Infinity : 400) },
    });
    await vi.runAllTimersAsync();
    await s.drained();

    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    // h's render started first and hangs: it was expected to end last, and made room for f's copy.
    const replaced = events.filter((e) => e.type === 'speculation-lost' && e.replaced);
    expect(replaced).toHaveLength(1);
    expect(replaced[0]).toMatchObject({
      task: { frame: 1 },
      host: 'h',
      attempt: 1,
      winner: { host: 'f', attempt: 4 },
      replaced: true,
    });
    expect(h.aborted).toEqual([1]);
    // Stopped, not failed: a losing copy (ignored), no attempt used, nothing held against h, none of its time counted, and the task went on.
    const ended = events.find((e) => e.type === 'attempt-ended' && e.host === 'h');
    expect(ended).toMatchObject({ outcome: 'cancelled', ignored: true, settled: null });
    const won = events.find(
      (e) => e.type === 'attempt-ended' && e.host === 'f' && e.task.frame === 1 && e.outcome === 'done',
    );
    expect(won?.type === 'attempt-ended' && s.records[0]!.seconds - won.seconds).toBeCloseTo(0, 2);
    expect(s.records[0]).toMatchObject({
      status: 'done',
      won: { host: 'f', attempt: 4 },
      copies: 4,
      attempts: 1,
      error: undefined,
    });
    expect(s.records[0]!.failedOn.size).toBe(0);
    expect(s.hosts.get('h')).toMatchObject({ failures: 0, tasksDone: 0 });
    // f's copy won; s1's and s2's lost the race and were stopped.
    expect(s1.aborted).toEqual([1]);
    expect(s2.aborted).toEqual([1]);
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toHaveLength(1);
    const { most, stopTold } = watchTask(events, 1);
    expect(most).toBe(3);
    expect(stopTold.sort()).toEqual(['h#1', 's1#2', 's2#3']);
  });

  it('never replaces an attempt already being stopped: two fast slots freeing together keep the task at three attempts', async () => {
    // As above with two fast hosts held up together, and hosts that take a round trip to start a render
    // and to stop one (as real ones do): the attempt replaced for the first fast copy is still being
    // stopped when the second fast slot looks, and must not count as one of the three again.
    const { s, events } = scheduler(7);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const slowHung = (fr: number): number => (fr === 1 ? Infinity : 400);
    const rt = { startMs: 10, stopMs: 50 };
    const h = new Host('h', { ms: () => Infinity, ...rt });
    const f1 = new Host('f1', { ms: () => 100, gated: new Set([6, 7]), ...rt }, gate);
    const f2 = new Host('f2', { ms: () => 100, gated: new Set([6, 7]), ...rt }, gate);
    const s1 = new Host('s1', { ms: slowHung, ...rt });
    const s2 = new Host('s2', { ms: slowHung, ...rt });
    const hosts = [h, f1, f2, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await vi.runAllTimersAsync();
    await s.drained();

    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    const { most, stopTold } = watchTask(events, 1);
    // Each attempt is told to stop once, and no more than three run that are not being stopped.
    expect(new Set(stopTold).size).toBe(stopTold.length);
    expect(most).toBeLessThanOrEqual(3);
    expect(s.records[0]).toMatchObject({ status: 'done', attempts: 1 });
    expect(s.records[0]!.won!.host).toMatch(/^f[12]$/);
  });
});
