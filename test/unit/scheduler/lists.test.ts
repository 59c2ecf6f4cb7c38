import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Task } from '../../../src/plan/plan.js';
import {
  Scheduler,
  type AttemptOutcome,
  type AttemptSlot,
  type SchedulerHost,
} from '../../../src/scheduler/scheduler.js';
import { tasks } from '../../helpers/scheduler.js';

// The dispatcher's lists of waiting slots stay as long as the farm has slots, not as the run has tasks:
// a run can hold a million tasks. Read from the scheduler's private fields (no event tells them).

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the idle list', () => {
  it('holds each slot once, however often a slot with nothing it may queue waits there (hosts whose command lines are too long to queue)', async () => {
    const s = new Scheduler(
      tasks(2_000).map((t) => Scheduler.record(t)),
      { retries: 2, maxConsecutiveFailures: 3, now: () => Date.now() },
    );
    const idle = (): number => (s as unknown as { slots: { barred: unknown[] } }).slots.barred.length;
    let most = 0;
    // Hosts that queue, but no task's command line fits the lane's pipe (see HostRunner.canQueue): every
    // slot that renders looks for a task to queue, finds none it may, and waits with the idle ones.
    const host = (name: string): SchedulerHost => ({
      name,
      slots: 2,
      queues: true,
      canQueue: () => false,
      run: (_task: Task, _attempt: number, _signal: AbortSignal, slot: AttemptSlot) => {
        slot.started();
        most = Math.max(most, idle());
        return new Promise<AttemptOutcome>((resolve) => setTimeout(() => resolve({ kind: 'done' }), 100));
      },
    });
    s.expectHost('a');
    s.expectHost('b');
    s.addHost(host('a'));
    s.addHost(host('b'));
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.records.every((r) => r.status === 'done')).toBe(true);
    // Four slots: at most four entries (one per task, 2,000, before).
    expect(most).toBeLessThanOrEqual(4);
  });
});
