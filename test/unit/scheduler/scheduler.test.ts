import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Task } from '../../../src/plan/plan.js';
import { foldHostView, hostLine, type HostView } from '../../../src/views/progress.js';
import {
  Scheduler,
  type AttemptOutcome,
  type AttemptSlot,
  type SchedulerHost,
} from '../../../src/scheduler/scheduler.js';
import { refused, tasks, startHosts as start } from '../../helpers/scheduler.js';

type Behaviour = (task: Task, attempt: number, signal: AbortSignal) => AttemptOutcome | Promise<AttemptOutcome>;

/** A host whose attempts take `ms` of (fake) time each and whose outcome `behaviour` decides. */
class FakeHost implements SchedulerHost {
  running = 0;
  maxRunning = 0;
  ran: number[] = [];
  constructor(
    readonly name: string,
    readonly slots: number,
    private readonly ms: number,
    private readonly behaviour: Behaviour = () => ({ kind: 'done' }),
  ) {}
  async run(task: Task, attempt: number, signal: AbortSignal): Promise<AttemptOutcome> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.ran.push(task.frame);
    try {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (signal.aborted) return { kind: 'cancelled' };
      return await this.behaviour(task, attempt, signal);
    } finally {
      this.running--;
    }
  }
}

/**
 * A host like the real one: each slot is a lane that runs its attempts one
 * after another, so an attempt given to a busy lane waits there (queued).
 */
class LaneHost implements SchedulerHost {
  readonly queues = true;
  ran: number[] = [];
  queued = 0;
  lastEnd = 0;
  private readonly lanes: Array<Promise<void>> = [];
  private readonly busy: boolean[] = [];
  private laneOverlap = false;
  constructor(
    readonly name: string,
    readonly slots: number,
    private readonly ms: number,
    /** Frames that fail here. */
    private readonly fails: ReadonlySet<number> = new Set(),
  ) {}
  get overlapped(): boolean {
    return this.laneOverlap;
  }
  run(task: Task, _attempt: number, _signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    if (this.busy[slot.lane]) this.queued++;
    const before = this.lanes[slot.lane] ?? Promise.resolve();
    const mine = before.then(async () => {
      if (this.busy[slot.lane]) this.laneOverlap = true;
      this.busy[slot.lane] = true;
      slot.started();
      await new Promise((resolve) => setTimeout(resolve, this.ms));
      this.ran.push(task.frame);
      this.busy[slot.lane] = false;
      this.lastEnd = Date.now();
    });
    this.lanes[slot.lane] = mine;
    return mine.then(() => (this.fails.has(task.frame) ? { kind: 'failed', message: 'bad frame' } : { kind: 'done' }));
  }
}

function scheduler(n: number, retries = 2): Scheduler {
  return new Scheduler(
    tasks(n).map((t) => Scheduler.record(t)),
    { retries, maxConsecutiveFailures: 3, now: () => Date.now(), onRefusedMove: refused },
  );
}

async function finish(s: Scheduler): Promise<void> {
  await vi.runAllTimersAsync();
  await s.drained();
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Scheduler', () => {
  it('lets a fast host take more tasks than a slow one, and ends when all are done', async () => {
    const s = scheduler(40);
    const fast = new FakeHost('fast', 1, 10);
    const slow = new FakeHost('slow', 1, 40);
    start(s, [fast, slow]);
    await finish(s);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    expect(fast.ran.length).toBe(32);
    expect(slow.ran.length).toBe(8);
  });

  it('never runs more than slots at once, and fills them', async () => {
    const s = scheduler(30);
    const a = new FakeHost('a', 4, 10);
    const b = new FakeHost('b', 2, 10);
    start(s, [a, b]);
    await finish(s);
    expect(a.maxRunning).toBe(4);
    expect(b.maxRunning).toBe(2);
  });

  it('retries a failed task on a host where it has not failed, then gives up', async () => {
    const s = scheduler(3, 2);
    const failing: Behaviour = (t) => (t.frame === 2 ? { kind: 'failed', message: 'boom' } : { kind: 'done' });
    const hosts = [
      new FakeHost('a', 1, 10, failing),
      new FakeHost('b', 1, 10, failing),
      new FakeHost('c', 1, 10, failing),
    ];
    start(s, hosts);
    await finish(s);
    const two = s.records[1]!;
    expect(two).toMatchObject({ status: 'failed', attempts: 3, error: 'boom' });
    expect([...two.failedOn].sort()).toEqual(['a', 'b', 'c']);
    expect(s.records.filter((r) => r.status === 'done')).toHaveLength(2);
  });

  it('retries on the same host when it is the only one', async () => {
    const s = scheduler(1, 2);
    let calls = 0;
    const host = new FakeHost('a', 1, 10, () =>
      ++calls < 3 ? { kind: 'failed', message: 'flaky' } : { kind: 'done' },
    );
    start(s, [host]);
    await finish(s);
    expect(s.records[0]).toMatchObject({ status: 'done', attempts: 3 });
  });

  it("puts a lost host's task back at the front without using a retry", async () => {
    const s = scheduler(5, 0);
    const dying = new FakeHost('dying', 1, 10, (t) => ({ kind: 'lost', message: `lost during frame ${t.frame}` }));
    const healthy = new FakeHost('healthy', 1, 25);
    start(s, [dying, healthy]);
    await finish(s);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    expect(s.hosts.get('dying')!.state).toBe('lost');
    expect(dying.ran).toEqual([1]);
    // Frame 1 was held by the lost host; it ran right after on the healthy one, as its first attempt.
    expect(healthy.ran.slice(0, 2)).toEqual([2, 1]);
    expect(s.records[0]!.attempts).toBe(1);
  });

  it('takes a host out after it fails three different tasks in a row', async () => {
    const s = scheduler(12);
    const broken = new FakeHost('broken', 1, 5, () => ({ kind: 'failed', message: 'renderer missing' }));
    const good = new FakeHost('good', 1, 20);
    start(s, [broken, good]);
    await finish(s);
    expect(s.hosts.get('broken')).toMatchObject({ state: 'blocked', failures: 3 });
    expect(s.hosts.get('broken')!.message).toMatch(/3 different tasks in a row/);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
  });

  it('fails the remaining tasks clearly when no host is left', async () => {
    const s = scheduler(6);
    const broken = new FakeHost('broken', 2, 5, () => ({ kind: 'failed', message: 'exit 127' }));
    start(s, [broken]);
    await finish(s);
    expect(s.records.every((r) => r.status === 'failed')).toBe(true);
    expect(s.records.at(-1)!.error).toMatch(/no host is left/);
  });

  it('fails every task when no host ever connects', async () => {
    const s = scheduler(3);
    s.expectHost('a');
    s.hostUnavailable('a', 'unreachable', 'refused');
    await s.finished;
    expect(s.records.map((r) => r.status)).toEqual(['failed', 'failed', 'failed']);
    expect(s.records[0]!.error).toBe('no host was usable');
  });

  it('waits for hosts still connecting instead of giving up', async () => {
    const s = scheduler(2);
    s.expectHost('a');
    s.expectHost('late');
    s.hostUnavailable('a', 'unreachable', 'refused');
    const late = new FakeHost('late', 1, 10);
    setTimeout(() => s.addHost(late), 100);
    await finish(s);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
  });

  it('cancels queued tasks and aborts running ones', async () => {
    const s = scheduler(10);
    const a = new FakeHost('a', 2, 1000);
    start(s, [a]);
    await vi.advanceTimersByTimeAsync(100);
    s.cancel();
    await finish(s);
    expect(s.records.filter((r) => r.status === 'cancelled')).toHaveLength(10);
    expect(a.ran).toEqual([1, 2]);
  });
});

describe('Scheduler retries and connecting hosts', () => {
  it('keeps a failed task for a host still connecting rather than retrying where it failed', async () => {
    const s = new Scheduler(
      tasks(1).map((t) => Scheduler.record(t)),
      { retries: 2, maxConsecutiveFailures: 3, now: () => Date.now() },
    );
    let first = true;
    const a = new FakeHost('a', 1, 10, () => {
      const outcome: AttemptOutcome = first ? { kind: 'failed', message: 'boom' } : { kind: 'done' };
      first = false;
      return outcome;
    });
    const late = new FakeHost('late', 1, 10);
    s.expectHost('a');
    s.expectHost('late');
    s.addHost(a);
    setTimeout(() => s.addHost(late), 500);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(a.ran).toEqual([1]);
    expect(late.ran).toEqual([1]);
    expect(s.records[0]).toMatchObject({ status: 'done', attempts: 2, host: 'late' });
  });
});

describe('Scheduler with released slots', () => {
  it('lets a host start its next task while the previous one collects its outputs', async () => {
    const s = new Scheduler(
      tasks(4).map((t) => Scheduler.record(t)),
      { retries: 0, maxConsecutiveFailures: 3, now: () => Date.now() },
    );
    let running = 0;
    let collecting = 0;
    let overlap = 0;
    const host: SchedulerHost = {
      name: 'a',
      slots: 1,
      async run(_task, _attempt, _signal, slot): Promise<AttemptOutcome> {
        running++;
        overlap = Math.max(overlap, collecting);
        await new Promise((r) => setTimeout(r, 10));
        running--;
        collecting++;
        slot.released?.();
        await new Promise((r) => setTimeout(r, 25));
        collecting--;
        return { kind: 'done' };
      },
    };
    s.expectHost('a');
    s.addHost(host);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    // The next render started while an earlier task was still collecting; never two renders at once.
    expect(overlap).toBeGreaterThan(0);
    expect(running).toBe(0);
  });

  it("queues a slot's next task on a host that can, one at a time, while the queue is long", async () => {
    const s = scheduler(60);
    const h = new LaneHost('h', 2, 20);
    const t0 = Date.now();
    start(s, [h]);
    await finish(s);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    expect(h.overlapped).toBe(false);
    // After the first task showed the pace, most tasks were sent ahead; none of the time was lost.
    expect(h.queued).toBeGreaterThan(20);
    expect(h.lastEnd - t0).toBe(30 * 20);
  });

  it('queues while another host is still connecting or untimed, if the queue is long, and still ends on time', async () => {
    const s = scheduler(200);
    const fast = new LaneHost('fast', 2, 10);
    const slow = new LaneHost('slow', 2, 400);
    const t0 = Date.now();
    s.expectHost('fast');
    s.expectHost('slow');
    s.expectHost('never');
    s.addHost(fast);
    await vi.advanceTimersByTimeAsync(50);
    s.hostUnavailable('never', 'unreachable', 'timed out');
    // The slow host is still connecting: the fast host does not wait for it to queue.
    await vi.advanceTimersByTimeAsync(50);
    expect(fast.queued).toBeGreaterThan(5);
    s.addHost(slow);
    await finish(s);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    expect(fast.overlapped || slow.overlapped).toBe(false);
    // About the best pull scheduling can do: the slow host joins at 100 ms and takes 4 tasks (done by 900 ms), the fast one the rest.
    expect(slow.ran.length).toBeLessThanOrEqual(4);
    expect(Math.max(fast.lastEnd, slow.lastEnd) - t0).toBeLessThanOrEqual(1_050);
  });

  it('tells a queued task from a rendering one, and the live view shows which is which', async () => {
    const s = scheduler(6);
    const views = new Map<string, HostView>();
    s.on('event', (e) => foldHostView(views, e));
    const h = new LaneHost('h', 1, 100);
    start(s, [h]);
    // The first task shows the pace; from the second on, the next one waits in the lane.
    await vi.advanceTimersByTimeAsync(150);
    const view = views.get('h')!;
    expect(view.rendering.size).toBe(1);
    expect(view.waiting.size).toBe(1);
    const [rendering] = [...view.rendering.values()];
    const [next] = [...view.waiting.values()];
    expect(hostLine(view)).toBe(`h: rendering ${rendering!.task.frame}; next ${next!.task.frame}, 1 done`);
    await finish(s);
    expect(view.rendering.size + view.waiting.size).toBe(0);
    expect(hostLine(view)).toBe('h: idle, 6 done');
  });

  it('leaves the last tasks to a faster host when a slow one would finish them later', async () => {
    const s = scheduler(25);
    const fast = new LaneHost('fast', 1, 10);
    const slow = new LaneHost('slow', 1, 100);
    const t0 = Date.now();
    start(s, [fast, slow]);
    await finish(s);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    // Plain pull scheduling would let the slow host take the 25th task at 200 ms and end at 300 ms.
    expect(slow.ran).toHaveLength(2);
    expect(Math.max(fast.lastEnd, slow.lastEnd) - t0).toBeLessThanOrEqual(230);
  });

  it('does not leave the last tasks to a faster host whose renders have stalled', async () => {
    const s = scheduler(12);
    const fast = new LaneHost('fast', 1, 10);
    const slow = new LaneHost('slow', 1, 100);
    // The fast host's 8th task hangs for 10 s (no --timeout): the slow host must not wait for it.
    const run = fast.run.bind(fast);
    let n = 0;
    fast.run = (task, attempt, signal, slot) => {
      if (++n !== 8) return run(task, attempt, signal, slot);
      slot.started();
      return new Promise((r) => setTimeout(() => r({ kind: 'done' }), 10_000));
    };
    const t0 = Date.now();
    start(s, [fast, slow]);
    await vi.advanceTimersByTimeAsync(2_000);
    // All but the stalled task are done within 2 s: the slow host took what was left.
    expect(s.records.filter((r) => r.status === 'done')).toHaveLength(11);
    await finish(s);
    expect(Date.now() - t0).toBeLessThanOrEqual(10_100);
  });

  it('gives a task that failed on the fast host to the slow one, even at the end', async () => {
    const s = scheduler(20);
    const fast = new LaneHost('fast', 1, 10, new Set([20]));
    const slow = new LaneHost('slow', 1, 50);
    start(s, [fast, slow]);
    await finish(s);
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    expect(slow.ran).toContain(20);
  });
});
