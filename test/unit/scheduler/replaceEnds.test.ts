import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { tasksOfRecords } from '../../../src/report/summary.js';
import { TaskFold } from '../../../src/report/taskFold.js';
import { Scheduler, type AttemptOutcome, type AttemptSlot, type SchedulerEvent, type SchedulerHost } from '../../../src/scheduler/scheduler.js';

// An attempt replaced by a faster copy (speculation-lost replaced: true) is on its way out: it ends
// ignored, whatever it ends with. So when the task's other attempts all fail (or are lost) while it is
// still being stopped, their outcome must decide the task; the stopping one cannot. Replace.test.ts
// has the replacement itself; these are what happens to the task around it.

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
  /** How a render that was not stopped ends (done unless said). */
  ends?(frame: number): 'done' | 'failed' | 'lost';
  /** Frames whose attempt waits here (before its renderer starts) until `open`. */
  gated?: ReadonlySet<number>;
  /** A round trip before a stopped attempt returns. */
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

/** Fake time passes 100 ms at a time until `done` (a bound keeps a broken scheduler from looping for ever). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await vi.advanceTimersByTimeAsync(100);
  expect(done()).toBe(true);
}

let folded: (() => void) | undefined;

/** The scheduler, its events, and (checked after each test) the report's tasks folded from them, against its records. */
function scheduler(n: number, retries = 2): { s: Scheduler; events: SchedulerEvent[]; same: () => void } {
  const s = new Scheduler(tasks(n).map((t) => Scheduler.record(t)), { retries, maxConsecutiveFailures: 3, now: () => Date.now(), speculate: true, onRefusedMove: refused });
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

const copiesOf = (events: SchedulerEvent[], frame: number): number => events.filter((e) => e.type === 'speculation-started' && e.task.frame === frame).length;
const replacedOf = (events: SchedulerEvent[], frame: number): number => events.filter((e) => e.type === 'speculation-lost' && e.replaced && e.task.frame === frame).length;

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
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const h = new Host('h', { ms: () => Infinity, stopMs: 30_000 });
    const f = new Host('f', { ms: (fr) => (fr === 1 ? 50 : 100), ends: (fr) => (fr === 1 ? 'failed' : 'done'), gated: new Set([6]) }, gate);
    const slow = { ms: (fr: number) => (fr === 1 ? 10_000 : 400), ends: (fr: number) => (fr === 1 ? ('failed' as const) : ('done' as const)) };
    const s1 = new Host('s1', slow);
    const s2 = new Host('s2', slow);
    const hosts = [h, f, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await until(() => replacedOf(events, 1) === 1);
    expect(h.aborted).toEqual([1]);
    // s1's and s2's copies fail long before h has stopped: the task is failed then, not left with no attempt that counts.
    await until(() => events.filter((e) => e.type === 'attempt-ended' && e.task.frame === 1 && e.outcome === 'failed').length === 3);
    expect(s.records[0]).toMatchObject({ status: 'failed', attempts: 3 });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'failed' }]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.slice(1).every((r) => r.status === 'done')).toBe(true);
    // h's attempt, stopped, ends ignored and changes nothing.
    expect(events.find((e) => e.type === 'attempt-ended' && e.host === 'h')).toMatchObject({ outcome: 'cancelled', ignored: true, settled: null });
    expect(s.records[0]).toMatchObject({ status: 'failed', attempts: 3 });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toHaveLength(1);
  });

  it('goes back to the queue when its other attempts fail with retries left while the replaced one is still being stopped', async () => {
    // As above with --retries 5: the task is queued again, and done by h once it is free (every other host has failed it).
    const { s, events, same } = scheduler(6, 5);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let hFrame1 = 0;
    const h = new Host('h', { ms: (fr) => (fr === 1 && hFrame1++ === 0 ? Infinity : 100), stopMs: 30_000 });
    const f = new Host('f', { ms: (fr) => (fr === 1 ? 50 : 100), ends: (fr) => (fr === 1 ? 'failed' : 'done'), gated: new Set([6]) }, gate);
    const slow = { ms: (fr: number) => (fr === 1 ? 10_000 : 400), ends: (fr: number) => (fr === 1 ? ('failed' as const) : ('done' as const)) };
    const s1 = new Host('s1', slow);
    const s2 = new Host('s2', slow);
    const hosts = [h, f, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await until(() => replacedOf(events, 1) === 1);
    await until(() => events.filter((e) => e.type === 'attempt-ended' && e.task.frame === 1 && e.outcome === 'failed').length === 3);
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
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const h = new Host('h', { ms: () => Infinity, stopMs: 30_000, completesWhenStopped: 'after' });
    const f = new Host('f', { ms: (fr) => (fr === 1 ? 50 : 100), ends: (fr) => (fr === 1 ? 'failed' : 'done'), gated: new Set([6]) }, gate);
    const slow = { ms: (fr: number) => (fr === 1 ? 10_000 : 400), ends: (fr: number) => (fr === 1 ? ('failed' as const) : ('done' as const)) };
    const s1 = new Host('s1', slow);
    const s2 = new Host('s2', slow);
    const hosts = [h, f, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await until(() => replacedOf(events, 1) === 1);
    await until(() => s.records[0]!.status === 'failed');
    await vi.runAllTimersAsync();
    await s.drained();
    expect(h.claims).toEqual([false]);
    expect(events.find((e) => e.type === 'attempt-ended' && e.host === 'h')).toMatchObject({ outcome: 'cancelled', ignored: true, settled: null });
    expect(s.records[0]).toMatchObject({ status: 'failed', attempts: 3, won: null });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'failed' }]);
  });

  it('keeps the task going while the replaced attempt holds the outputs\' claim, and it wins', async () => {
    // h's render completes as it is stopped: it claims the outputs at once and takes the stop's round trip
    // to move them. f's copy, done meanwhile, is beaten to the claim; s1's and s2's copies fail. The task
    // waits for h, whose result is complete: done by h.
    const { s, events } = scheduler(6);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const h = new Host('h', { ms: () => Infinity, stopMs: 30_000, completesWhenStopped: 'before' });
    const f = new Host('f', { ms: (fr) => (fr === 1 ? 50 : 100), gated: new Set([6]) }, gate);
    const slow = { ms: (fr: number) => (fr === 1 ? 10_000 : 400), ends: (fr: number) => (fr === 1 ? ('failed' as const) : ('done' as const)) };
    const s1 = new Host('s1', slow);
    const s2 = new Host('s2', slow);
    const hosts = [h, f, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await until(() => replacedOf(events, 1) === 1);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(h.claims).toEqual([true]);
    expect(events.filter((e) => e.type === 'attempt-ended' && e.task.frame === 1).map((e) => e.type === 'attempt-ended' && `${e.host} ${e.outcome}`)).toEqual(['f cancelled', 's1 failed', 's2 failed', 'h done']);
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'h', attempt: 1 } });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'done' }]);
  });

  it('queues the task again when the replaced attempt holding the outputs\' claim fails to move them and no other attempt is left', async () => {
    const { s, events } = scheduler(6, 5);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const h = new Host('h', { ms: () => Infinity, stopMs: 30_000, completesWhenStopped: 'before', moveFails: true });
    const f = new Host('f', { ms: (fr) => (fr === 1 ? 50 : 100), gated: new Set([6]) }, gate);
    const slow = { ms: (fr: number) => (fr === 1 ? 10_000 : 400), ends: (fr: number) => (fr === 1 ? ('failed' as const) : ('done' as const)) };
    const s1 = new Host('s1', slow);
    const s2 = new Host('s2', slow);
    const hosts = [h, f, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await until(() => replacedOf(events, 1) === 1);
    await vi.runAllTimersAsync();
    await s.drained();
    // h claimed for its first attempt (then again, refused, for the one it took when the task came back and lost to f's).
    expect(h.claims).toEqual([true, false]);
    // h's attempt ends ignored (it was replaced), and the task is queued again: f's copy of it (f was beaten to the claim, not failed) wins.
    expect(events.find((e) => e.type === 'attempt-ended' && e.host === 'h')).toMatchObject({ outcome: 'failed', ignored: true });
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'f' } });
    expect(events.filter((e) => e.type === 'task-done' && e.task.frame === 1)).toMatchObject([{ status: 'done' }]);
  });

  it('tells the replaced attempt to stop once: when the copy that replaced it wins, it is not told again', async () => {
    const { s, events } = scheduler(6);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const h = new Host('h', { ms: () => Infinity, stopMs: 30_000 });
    const f = new Host('f', { ms: (fr) => (fr === 1 ? 50 : 100), gated: new Set([6]) }, gate);
    const slow = { ms: (fr: number) => (fr === 1 ? Infinity : 400) };
    const s1 = new Host('s1', slow);
    const s2 = new Host('s2', slow);
    const hosts = [h, f, s1, s2];
    for (const x of hosts) s.expectHost(x.name);
    for (const x of hosts) s.addHost(x);
    await until(() => copiesOf(events, 1) === 2);
    await vi.advanceTimersByTimeAsync(1_000);
    open();
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'f' } });
    const told = events.filter((e) => e.type === 'speculation-lost' && e.task.frame === 1).map((e) => e.type === 'speculation-lost' && `${e.host}#${e.attempt}${e.replaced ? ' replaced' : ''}`);
    expect(told.sort()).toEqual(['h#1 replaced', 's1#2', 's2#3']);
  });
});
