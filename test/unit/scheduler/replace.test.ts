import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { Scheduler, type AttemptOutcome, type AttemptSlot, type SchedulerEvent, type SchedulerHost } from '../../../src/scheduler/scheduler.js';

// A task at its three live attempts can still get a copy on a faster slot: the copy takes the place of the
// attempt expected to end last, which is stopped (speculation-lost with replaced: true). The sim test in
// farm.test.ts shows it pays off on a big farm; these show the mechanics on four or five fake hosts.

const refused = (host: string, from: string, to: string): never => {
  throw new Error(`host ${host}: ${from} -> ${to} is not a move a host can make`);
};

function tasks(n: number): Task[] {
  return [...new Plan({ frames: parseFrameSpec(`1,${n}`), exec: 'r', args: [], ins: [], outs: [], hostNames: ['x'] }).tasks];
}

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
  /** Frames whose attempt waits here (before its renderer starts) until `open`. */
  gated?: ReadonlySet<number>;
  /** A round trip before the renderer is said to have started, and before a stopped attempt returns. */
  startMs?: number;
  stopMs?: number;
}

/** A fake host: an attempt waits at the gate, starts after startMs, renders, and returns `cancelled` stopMs after an abort. */
class Host implements SchedulerHost {
  aborted: number[] = [];
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
    if (!signal.aborted) return { kind: 'done' };
    this.aborted.push(task.frame);
    await wait(t.stopMs ?? 0);
    return { kind: 'cancelled' };
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
    if (e.type !== 'attempt-queued' && e.type !== 'speculation-started') most = Math.max(most, [...live].filter((k) => !stopping.has(k)).length);
  }
  return { most, stopTold };
}

/** Fake time passes 100 ms at a time until `done` (a bound keeps a broken scheduler from looping for ever). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await vi.advanceTimersByTimeAsync(100);
  expect(done()).toBe(true);
}

function scheduler(n: number): { s: Scheduler; events: SchedulerEvent[] } {
  const s = new Scheduler(tasks(n).map((t) => Scheduler.record(t)), { retries: 2, maxConsecutiveFailures: 3, now: () => Date.now(), speculate: true, onRefusedMove: refused });
  const events: SchedulerEvent[] = [];
  s.on('event', (e) => events.push(e));
  return { s, events };
}

const copiesOf = (events: SchedulerEvent[], frame: number): number => events.filter((e) => e.type === 'speculation-started' && e.task.frame === frame).length;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Scheduler: a copy that replaces the attempt expected to end last', () => {
  it('stops the one expected to end last for a faster copy; the replaced attempt costs the task and its host nothing', async () => {
    // Frame 1 hangs on h, s1 and s2 (400 ms a frame); f (100 ms a frame) is held up on frame 6 while
    // s1 and s2 take copies of frame 1, so the task is at three attempts when f frees up.
    const { s, events } = scheduler(6);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const slowHung = (f: number): number => (f === 1 ? Infinity : 400);
    const h = new Host('h', { ms: () => Infinity });
    const f = new Host('f', { ms: () => 100, gated: new Set([6]) }, gate);
    const s1 = new Host('s1', { ms: slowHung });
    const s2 = new Host('s2', { ms: slowHung });
    const hosts = [h, f, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    expect(s.records[0]).toMatchObject({ status: 'running', copies: 3 });
    // Long enough for s2's copy to count as late too: a copy on f is then expected to end before all three.
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await vi.runAllTimersAsync();
    await s.drained();

    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    // h's render started first and hangs: it was expected to end last, and made room for f's copy.
    const replaced = events.filter((e) => e.type === 'speculation-lost' && e.replaced);
    expect(replaced).toHaveLength(1);
    expect(replaced[0]).toMatchObject({ task: { frame: 1 }, host: 'h', attempt: 1, winner: { host: 'f', attempt: 4 }, replaced: true });
    expect(h.aborted).toEqual([1]);
    // Stopped, not failed: a losing copy (ignored), no attempt used, nothing held against h, none of its time counted, and the task went on.
    const ended = events.find((e) => e.type === 'attempt-ended' && e.host === 'h');
    expect(ended).toMatchObject({ outcome: 'cancelled', ignored: true, settled: null });
    const won = events.find((e) => e.type === 'attempt-ended' && e.host === 'f' && e.task.frame === 1 && e.outcome === 'done');
    expect(won?.type === 'attempt-ended' && s.records[0]!.seconds - won.seconds).toBeCloseTo(0, 2);
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'f', attempt: 4 }, copies: 4, attempts: 1, error: undefined });
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
