import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import {
  Scheduler,
  type AttemptOutcome,
  type SchedulerEvent,
  type SchedulerHost,
} from '../../../src/scheduler/scheduler.js';

function records(n: number): ReturnType<typeof Scheduler.record>[] {
  return new Plan({
    frames: parseFrameSpec(`1,${n}`),
    exec: 'r',
    args: [],
    ins: [],
    outs: [],
    hostNames: ['x'],
  }).tasks.map((t) => Scheduler.record(t));
}

/** A one-slot host whose attempts take `ms` of fake time; `outcome` decides each. */
function host(name: string, ms: number, outcome: (task: Task, attempt: number) => AttemptOutcome): SchedulerHost {
  return {
    name,
    slots: 1,
    run: (task, attempt, signal) =>
      new Promise((resolve) => {
        const t = setTimeout(() => resolve(outcome(task, attempt)), ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve({ kind: 'cancelled' });
        });
      }),
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Scheduler.retry', () => {
  it('puts a task that gave up back in the queue while the run is live, with its attempts counted afresh', async () => {
    const s = new Scheduler(records(4), { retries: 1, maxConsecutiveFailures: 10, now: () => Date.now() });
    const events: SchedulerEvent[] = [];
    s.on('event', (e) => events.push(e));
    const retried: number[] = [];
    s.on('event', (e) => {
      if (e.type === 'task-retried') retried.push(e.task.index);
    });
    // Frame 1 fails until it is retried by hand; the others take long enough for the run to be live then.
    let fixed = false;
    s.expectHost('a');
    s.addHost(
      host('a', 100, (t) => (t.frame === 1 && !fixed ? { kind: 'failed', message: 'boom' } : { kind: 'done' })),
    );
    await vi.advanceTimersByTimeAsync(250);
    const one = s.records[0]!;
    expect(one).toMatchObject({ status: 'failed', attempts: 2 });
    expect(s.done).toBe(false);
    fixed = true;
    expect(s.retry(0)).toBeUndefined();
    expect(one.status).toBe('pending');
    expect(events.at(-1)).toMatchObject({ type: 'task-retried', task: { index: 0 }, attempts: 2 });
    expect(retried).toEqual([0]);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(one).toMatchObject({ status: 'done', attempts: 3 });
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
  });

  it('gives a retried task --retries more attempts, then gives up again', async () => {
    const s = new Scheduler(records(3), { retries: 1, maxConsecutiveFailures: 10, now: () => Date.now() });
    s.expectHost('a');
    s.addHost(host('a', 100, (t) => (t.frame === 1 ? { kind: 'failed', message: 'boom' } : { kind: 'done' })));
    await vi.advanceTimersByTimeAsync(250);
    expect(s.records[0]!.status).toBe('failed');
    expect(s.retry(0)).toBeUndefined();
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records[0]).toMatchObject({ status: 'failed', attempts: 4 });
  });

  it('says why it cannot: not failed, unknown, stopping, or the run has ended', async () => {
    const s = new Scheduler(records(2), { retries: 0, maxConsecutiveFailures: 10, now: () => Date.now() });
    s.expectHost('a');
    s.addHost(host('a', 100, (t) => (t.frame === 1 ? { kind: 'failed', message: 'boom' } : { kind: 'done' })));
    expect(s.retry(1)).toMatch(/frame 2 is waiting to run, not failed/);
    expect(s.retry(7)).toMatch(/no task 7/);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records[0]!.status).toBe('failed');
    expect(s.retry(0)).toMatch(/the run has ended; run the same command again/);

    const t = new Scheduler(records(3), { retries: 0, maxConsecutiveFailures: 10, now: () => Date.now() });
    t.expectHost('a');
    t.addHost(host('a', 100, (task) => (task.frame === 1 ? { kind: 'failed', message: 'boom' } : { kind: 'done' })));
    await vi.advanceTimersByTimeAsync(150);
    expect(t.records[0]!.status).toBe('failed');
    t.cancel();
    expect(t.retry(0)).toMatch(/being stopped/);
    await vi.runAllTimersAsync();
    await t.drained();
  });
});
