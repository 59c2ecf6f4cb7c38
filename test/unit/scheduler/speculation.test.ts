import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Task } from '../../../src/plan/plan.js';
import {
  Scheduler,
  isRunStop,
  type AttemptOutcome,
  type AttemptSlot,
  type SchedulerEvent,
  type SchedulerHost,
} from '../../../src/scheduler/scheduler.js';
import { HostFigures } from '../../../src/fold/hostFigures.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import { refused, tasks, startHosts as start } from '../../helpers/scheduler.js';

/**
 * A host whose attempt of a frame takes `ms(frame)` of fake time, or never
 * ends by itself when `ms` says Infinity; an abort ends it `cancelled`.
 */
class Host implements SchedulerHost {
  ran: Array<{ frame: number; attempt: number }> = [];
  aborted: number[] = [];
  /** For each abort: whether it was the whole run stopping (isRunStop), not this attempt alone. */
  runStops: boolean[] = [];
  superseded: Array<() => boolean> = [];
  constructor(
    readonly name: string,
    readonly slots: number,
    private readonly ms: (frame: number) => number,
    private readonly outcome: (frame: number) => AttemptOutcome = () => ({ kind: 'done' }),
  ) {}
  run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    this.ran.push({ frame: task.frame, attempt });
    this.superseded.push(() => slot.superseded?.() ?? false);
    slot.started();
    return new Promise((resolve) => {
      const ms = this.ms(task.frame);
      const t = Number.isFinite(ms) ? setTimeout(() => resolve(this.outcome(task.frame)), ms) : undefined;
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        this.aborted.push(task.frame);
        this.runStops.push(isRunStop(signal));
        resolve({ kind: 'cancelled' });
      });
    });
  }
}

function scheduler(n: number, speculate: boolean): { s: Scheduler; events: SchedulerEvent[] } {
  const s = new Scheduler(
    tasks(n).map((t) => Scheduler.record(t)),
    { retries: 2, maxConsecutiveFailures: 3, now: () => Date.now(), speculate, onRefusedMove: refused },
  );
  const events: SchedulerEvent[] = [];
  s.on('event', (e) => events.push(e));
  return { s, events };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Scheduler speculation', () => {
  it('stops a losing copy alone (it keeps nothing), and every attempt of a stopped run as the run (they keep what is finished)', async () => {
    const { s } = scheduler(3, true);
    const a = new Host('a', 1, (f) => (f === 3 ? Infinity : 100));
    const b = new Host('b', 1, () => 100);
    start(s, [a, b]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(a.aborted).toEqual([3]);
    expect(a.runStops).toEqual([false]);
    const stopped = scheduler(2, true);
    const c = new Host('c', 2, () => Infinity);
    start(stopped.s, [c]);
    await vi.advanceTimersByTimeAsync(10);
    stopped.s.cancel();
    await vi.runAllTimersAsync();
    await stopped.s.drained();
    expect(c.runStops).toEqual([true, true]);
  });

  it('copies a hung render to an idle faster slot; the copy wins and the original is stopped', async () => {
    const { s, events } = scheduler(6, true);
    // Frame 3 hangs on host a; every other render takes 100 ms.
    const a = new Host('a', 1, (f) => (f === 3 ? Infinity : 100));
    const b = new Host('b', 1, () => 100);
    start(s, [a, b]);
    await vi.runAllTimersAsync();
    await s.drained();
    const three = s.records[2]!;
    expect(three).toMatchObject({ status: 'done', host: 'b', copies: 2, won: { host: 'b', attempt: 2 } });
    expect(a.aborted).toEqual([3]);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    const kinds = events.filter((e) => 'task' in e && e.task.frame === 3).map((e) => e.type);
    expect(kinds).toEqual([
      'attempt-queued',
      'attempt-started',
      'attempt-queued',
      'speculation-started',
      'attempt-started',
      'attempt-ended',
      'speculation-lost',
      'task-done',
      'attempt-ended',
    ]);
    const lost = events.find((e) => e.type === 'attempt-ended' && e.host === 'a' && e.task.frame === 3);
    expect(lost).toMatchObject({ outcome: 'cancelled', ignored: true });
    // The original's attempt layer is told not to put its outputs in place.
    expect(a.superseded.at(-1)!()).toBe(true);
    expect(b.superseded.at(-1)!()).toBe(false);
  });

  it('makes no copy without --speculate: the run waits for the slow render', async () => {
    const { s, events } = scheduler(6, false);
    const a = new Host('a', 1, (f) => (f === 3 ? 5_000 : 100));
    const b = new Host('b', 1, () => 100);
    start(s, [a, b]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records[2]).toMatchObject({ status: 'done', host: 'a', copies: 1, won: { host: 'a', attempt: 1 } });
    expect(events.some((e) => e.type === 'speculation-started')).toBe(false);
    expect(a.aborted).toEqual([]);
  });

  it('never copies to a host that is no faster', async () => {
    const { s, events } = scheduler(4, true);
    const a = new Host('a', 1, () => 100);
    const b = new Host('b', 1, () => 100);
    start(s, [a, b]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(events.some((e) => e.type === 'speculation-started')).toBe(false);
    expect(s.records.every((r) => r.status === 'done' && r.copies === 1)).toBe(true);
  });

  it("ignores the losing copy's outcome once a winner is recorded", async () => {
    const { s } = scheduler(3, true);
    // Host a renders frame 2 slowly and does not honour the abort: its late result must change nothing.
    const a: SchedulerHost = {
      name: 'a',
      slots: 1,
      run: (task, _n, _signal, slot) => {
        slot.started();
        return new Promise((r) =>
          setTimeout(
            () => r(task.frame === 2 ? { kind: 'failed', message: 'late' } : { kind: 'done' }),
            task.frame === 2 ? 10_000 : 100,
          ),
        );
      },
    };
    const b = new Host('b', 1, () => 100);
    start(s, [a, b]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records[1]).toMatchObject({ status: 'done', won: { host: 'b' }, attempts: 1 });
    expect(s.records[1]!.failedOn.size).toBe(0);
    expect(s.hosts.get('a')!.failures).toBe(0);
  });

  it("copies a lost host's tasks elsewhere at once; the copy wins and the original is stopped", async () => {
    const { s, events } = scheduler(4, true);
    // Host a is lost 50 ms in: its attempts wait for it to come back (never), as the attempt layer does.
    const a = new Host('a', 2, () => Infinity);
    const b = new Host('b', 2, () => 100);
    start(s, [a, b]);
    await vi.advanceTimersByTimeAsync(50);
    s.removeHost('a', 'lost', 'keepalive timed out');
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.every((r) => r.status === 'done' && r.host === 'b')).toBe(true);
    expect(a.aborted.sort()).toEqual([1, 2]);
    const copies = events.filter((e) => e.type === 'speculation-started');
    expect(copies.map((e) => e.type === 'speculation-started' && e.reason)).toEqual(['lost', 'lost']);
    expect(s.hosts.get('a')!.state).toBe('lost');
  });

  it('counts the attempts lost with their host, though copies elsewhere won first (records, the report, the host)', async () => {
    const { s, events } = scheduler(2, true);
    // As the attempt layer does: an attempt whose host was lost waits for it to come back, and ends lost when told to stop.
    class LosingHost extends Host {
      override run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
        return super
          .run(task, attempt, signal, slot)
          .then((o) => (o.kind === 'cancelled' ? { kind: 'lost', message: 'keepalive timed out' } : o));
      }
    }
    const a = new LosingHost('a', 2, () => Infinity);
    const b = new Host('b', 2, () => 100);
    const fold = new TaskFold();
    fold.begin(s.records);
    const figures = new HostFigures();
    s.on('event', (e) => {
      fold.add(e);
      figures.add(e);
    });
    start(s, [a, b]);
    await vi.advanceTimersByTimeAsync(50);
    s.removeHost('a', 'lost', 'keepalive timed out');
    await vi.runAllTimersAsync();
    await s.drained();
    expect(
      events
        .filter((e) => e.type === 'attempt-ended' && e.host === 'a')
        .map((e) => e.type === 'attempt-ended' && [e.outcome, e.ignored]),
    ).toEqual([
      ['lost', true],
      ['lost', true],
    ]);
    expect(s.records.map((r) => [r.status, r.lost])).toEqual([
      ['done', 1],
      ['done', 1],
    ]);
    expect(fold.list().tasks.map((t) => [t.status, t.lost])).toEqual([
      ['done', 1],
      ['done', 1],
    ]);
    expect(figures.figure('a')).toMatchObject({ state: 'lost', lost: 2, tasksDone: 0 });
  });

  it('keeps the original when the lost host comes back with its result first', async () => {
    const { s } = scheduler(1, true);
    // Frame 1's render on a survives the drop and is picked up at 300 ms; a copy on b would take 1 s.
    const a = new Host('a', 1, () => 300);
    const b = new Host('b', 1, () => 1_000);
    start(s, [a, b]);
    await vi.advanceTimersByTimeAsync(50);
    s.removeHost('a', 'lost', 'connection reset');
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records[0]).toMatchObject({ status: 'done', won: { host: 'a', attempt: 1 }, copies: 2 });
    expect(b.aborted).toEqual([1]);
  });
});

describe('Scheduler with a host that reconnects', () => {
  it('never gives the reconnected host a copy of a task its previous connection still renders', async () => {
    const { s } = scheduler(2, true);
    // Frame 1 renders on a for 5 s (it survives the drop, to be adopted); frame 2 on b.
    const a = new Host('a', 1, (f) => (f === 1 ? 5_000 : 100));
    const b = new Host('b', 1, () => 100);
    start(s, [a, b]);
    await vi.advanceTimersByTimeAsync(50);
    s.removeHost('a', 'lost', 'connection reset');
    // a is back at once, on a new connection (its renderer still runs there).
    const again = new Host('a', 1, () => 100);
    s.expectHost('a', 'reconnecting');
    s.addHost(again);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(again.ran.map((r) => r.frame)).not.toContain(1);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
  });
});

describe('Scheduler events', () => {
  it('are frozen, start with run-start, end with run-end, and report every task once', async () => {
    const { s, events } = scheduler(5, true);
    start(s, [new Host('a', 2, () => 10), new Host('b', 1, () => 30)]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(events[0]).toMatchObject({ type: 'run-start', tasks: 5, pending: 5 });
    expect(events.at(-1)).toMatchObject({ type: 'run-end', done: 5, failed: 0 });
    expect(events.every((e) => Object.isFrozen(e))).toBe(true);
    const done = events.filter((e) => e.type === 'task-done').map((e) => e.task.frame);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5]);
    expect(events.filter((e) => e.type === 'host-state').map((e) => `${e.host}:${e.state}`)).toEqual([
      'a:connecting',
      'b:connecting',
      'a:ok',
      'b:ok',
    ]);
  });
});

describe('Scheduler with hosts joining and leaving', () => {
  it('gives a host that joins mid-run its share, and one that is taken out no more', async () => {
    const { s } = scheduler(40, false);
    const a = new Host('a', 1, () => 100);
    const b = new Host('b', 1, () => 100);
    s.expectHost('a');
    s.expectHost('b');
    s.addHost(a);
    await vi.advanceTimersByTimeAsync(1_050);
    s.addHost(b);
    await vi.advanceTimersByTimeAsync(1_000);
    s.removeHost('a', 'removed', 'removed from the inventory');
    const before = a.ran.length;
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    // a's last render (running when it was taken out) was its last one; b took the rest.
    expect(a.ran.length).toBe(before);
    expect(b.ran.length).toBe(40 - before);
    expect(b.ran.length).toBeGreaterThan(10);
  });
  it("changes a host's slots at its next task: the old entry finishes its running task, the new one takes the rest (as an inventory edit does it)", async () => {
    const { s, events } = scheduler(30, true);
    let running = 0;
    let most = 0;
    const counting = (name: string, slots: number): SchedulerHost => {
      const inner = new Host(name, slots, () => 100);
      return {
        name,
        slots,
        run: async (task, attempt, signal, slot) => {
          most = Math.max(most, ++running);
          try {
            return await inner.run(task, attempt, signal, slot);
          } finally {
            running--;
          }
        },
      };
    };
    s.expectHost('a');
    s.addHost(counting('a', 1));
    await vi.advanceTimersByTimeAsync(550);
    expect(most).toBe(1);
    // What HostLifecycle.update does for a changed entry: counted on again first, so the run never has no host.
    s.expectHost('a', 'reconnecting');
    s.removeHost('a', 'reconnecting', 'its inventory entry changed');
    s.addHost(counting('a', 3));
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    // The old entry's running task and the new entry's three slots, together for a moment, then three.
    expect(most).toBe(4);
    expect(s.hosts.get('a')).toMatchObject({ state: 'ok', tasksDone: 30 });
    expect(events.filter((e) => e.type === 'host-state').map((e) => e.state)).toEqual([
      'connecting',
      'ok',
      'reconnecting',
      'reconnecting',
      'ok',
    ]);
  });
});

describe('Scheduler queue order', () => {
  it('queues tasks in the order given (preview: first, last, middle, ...)', async () => {
    const s = new Scheduler(
      tasks(5).map((t) => Scheduler.record(t)),
      { retries: 0, maxConsecutiveFailures: 3, now: () => Date.now(), order: [0, 4, 2, 1, 3] },
    );
    const a = new Host('a', 1, () => 10);
    start(s, [a]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(a.ran.map((r) => r.frame)).toEqual([1, 5, 3, 2, 4]);
  });
});

describe('Scheduler claims', () => {
  it('lets only the first copy of a task claim its outputs, and frees the claim of a copy that failed after claiming', async () => {
    const { s } = scheduler(3, true);
    const third: AttemptSlot[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Frames 1 and 2 take 100 ms (the hosts' pace is known); frame 3 waits at the gate wherever it runs,
    // so a copy of it starts on the idle host and both copies reach their outputs together.
    const host = (name: string): SchedulerHost => ({
      name,
      slots: 1,
      run: async (task, _attempt, signal, slot) => {
        slot.started();
        if (task.frame !== 3) return new Promise((resolve) => setTimeout(() => resolve({ kind: 'done' }), 100));
        third.push(slot);
        await Promise.race([gate, new Promise((r) => signal.addEventListener('abort', r))]);
        return { kind: 'cancelled' };
      },
    });
    start(s, [host('a'), host('b')]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(third).toHaveLength(2);
    const [first, second] = third as [AttemptSlot, AttemptSlot];
    expect(first.claim!()).toBe(true);
    expect(first.claim!()).toBe(true);
    expect(second.claim!()).toBe(false);
    first.unclaim!();
    expect(second.claim!()).toBe(true);
    release();
    s.cancel();
    await vi.runAllTimersAsync();
  });
});

describe('Scheduler.cancel', () => {
  it('stops an attempt waiting behind a running one on its slot before the running one, so the host never starts it in between', async () => {
    const order: number[] = [];
    // One slot that queues (with ten frames to go, the host's next one is sent ahead): frame 3 waits behind frame 2 on the host when the run is stopped.
    const host: SchedulerHost & { queues: boolean } = {
      name: 'q',
      slots: 1,
      queues: true,
      run(task: Task, _attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
        // Frame 1 renders in 100 ms (the host's pace is known), frame 2 then renders, frame 3 is sent to wait behind it.
        if (task.frame === 1) {
          slot.started();
          return new Promise((resolve) => setTimeout(() => resolve({ kind: 'done' }), 100));
        }
        if (task.frame === 2) slot.started();
        return new Promise((resolve) => {
          signal.addEventListener('abort', () => {
            order.push(task.frame);
            resolve({ kind: 'cancelled' });
          });
        });
      },
    };
    const { s, events } = scheduler(10, false);
    start(s, [host]);
    await vi.advanceTimersByTimeAsync(150);
    expect(events.some((e) => e.type === 'attempt-queued' && e.task.frame === 3 && e.behind)).toBe(true);
    s.cancel();
    await vi.runAllTimersAsync();
    await s.drained();
    expect(order).toEqual([3, 2]);
  });
});
