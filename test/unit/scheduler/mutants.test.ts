import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Task } from '../../../src/plan/plan.js';
import {
  Scheduler,
  type AttemptOutcome,
  type SchedulerEvent,
  type SchedulerHost,
  type TaskRecord,
} from '../../../src/scheduler/scheduler.js';
import { refused, tasks } from '../../helpers/scheduler.js';

// Behaviours of the scheduler's public edge (SchedulerHost in, events and records out) that the other tests
// reach only on the way to something else, asserted here for mutation testing (npm run mutate): the hosts'
// bookkeeping, the end of a run and its counts. Driven through the Scheduler class alone, so they hold
// whatever files the scheduler is split into.

/** A one-slot host whose attempts take `ms` of fake time; `outcome` decides each. */
function host(
  name: string,
  ms: number,
  outcome: (task: Task) => AttemptOutcome = () => ({ kind: 'done' }),
): SchedulerHost {
  return {
    name,
    slots: 1,
    run: (task, _attempt, signal, slot) =>
      new Promise((resolve) => {
        slot.started();
        const t = setTimeout(() => resolve(outcome(task)), ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve({ kind: 'cancelled' });
        });
      }),
  };
}

function scheduler(records: TaskRecord[], retries = 0): { s: Scheduler; events: SchedulerEvent[] } {
  const s = new Scheduler(records, {
    retries,
    maxConsecutiveFailures: 10,
    now: () => Date.now(),
    onRefusedMove: refused,
  });
  const events: SchedulerEvent[] = [];
  s.on('event', (e) => events.push(e));
  return { s, events };
}

const hostStates = (events: SchedulerEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'host-state' ? [`${e.host} ${e.state}${e.reason ? `: ${e.reason}` : ''}`] : []));

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Scheduler: its hosts', () => {
  it('counts the hosts it waits for, knows when one was ever ready, and refuses a host it never expected', async () => {
    const { s } = scheduler(tasks(2).map((t) => Scheduler.record(t)));
    expect(s.pendingHosts).toBe(0);
    expect(s.everReady).toBe(false);
    s.expectHost('a');
    s.expectHost('b', 'reconnecting', 'try 2');
    expect(s.pendingHosts).toBe(2);
    expect(s.addHost(host('a', 100))).toBe(true);
    expect(s.pendingHosts).toBe(1);
    expect(s.everReady).toBe(true);
    s.hostUnavailable('b', 'unreachable', 'refused');
    expect(s.pendingHosts).toBe(0);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(s.done).toBe(true);
  });

  it('closes the hosts still ready when the run is over, leaving the others as they ended', async () => {
    const { s, events } = scheduler(tasks(2).map((t) => Scheduler.record(t)));
    s.expectHost('a');
    s.expectHost('b');
    s.expectHost('c');
    s.addHost(host('a', 100));
    s.addHost(host('b', 100));
    s.hostUnavailable('c', 'auth failed', 'no key');
    await vi.advanceTimersByTimeAsync(50);
    s.removeHost('b', 'lost', 'connection reset');
    // Said again of a host already out: nothing changes.
    s.removeHost('b', 'removed', 'gone from the inventory');
    s.removeHost('nobody', 'removed', 'never there');
    await vi.runAllTimersAsync();
    await s.drained();
    s.closeHosts('done');
    expect(events.filter((e) => e.type === 'run-start')).toHaveLength(1);
    expect(hostStates(events)).toEqual([
      'a connecting',
      'b connecting',
      'c connecting',
      'a ok',
      'b ok',
      'c auth failed: no key',
      'b lost: connection reset',
      'a done',
    ]);
    // A lost host's running attempt reports its own end: this fake's went on to finish.
    expect(s.records.map((r) => [r.status, r.host])).toEqual([
      ['done', 'a'],
      ['done', 'b'],
    ]);
  });

  it('closes the ready hosts as cancelled when the run was stopped', async () => {
    const { s, events } = scheduler(tasks(3).map((t) => Scheduler.record(t)));
    s.expectHost('a');
    s.addHost(host('a', 100));
    await vi.advanceTimersByTimeAsync(50);
    s.cancel();
    await vi.runAllTimersAsync();
    await s.drained();
    s.closeHosts('cancelled');
    expect(hostStates(events).at(-1)).toBe('a cancelled');
  });
});

describe('Scheduler: the end of a run', () => {
  it('tells the run its start with the tasks pending, and its end with the counts by final status', async () => {
    const records = tasks(5).map((t) => Scheduler.record(t));
    records[4]!.status = 'skipped';
    const { s, events } = scheduler(records);
    s.expectHost('a');
    s.addHost(host('a', 100, (t) => (t.frame === 2 ? { kind: 'failed', message: 'boom' } : { kind: 'done' })));
    await vi.advanceTimersByTimeAsync(250);
    s.cancel();
    await vi.runAllTimersAsync();
    await s.drained();
    expect(events[0]).toMatchObject({ type: 'run-start', tasks: 5, pending: 4 });
    // Once, however many hosts moved before and after it.
    expect(events.filter((e) => e.type === 'run-start')).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: 'run-end', done: 1, failed: 1, cancelled: 2, skipped: 1 });
    expect(s.records.map((r) => r.status)).toEqual(['done', 'failed', 'cancelled', 'cancelled', 'skipped']);
    const done = events.filter((e) => e.type === 'task-done');
    expect(done.map((e) => [e.task.index, e.status]).sort()).toEqual([
      [0, 'done'],
      [1, 'failed'],
      [2, 'cancelled'],
      [3, 'cancelled'],
    ]);
  });

  it('is stopped once: a second cancel changes nothing', async () => {
    const { s, events } = scheduler(tasks(2).map((t) => Scheduler.record(t)));
    s.expectHost('a');
    s.addHost(host('a', 100));
    expect(s.cancelled).toBe(false);
    s.cancel();
    s.cancel();
    expect(s.cancelled).toBe(true);
    await vi.runAllTimersAsync();
    await s.drained();
    expect(events.filter((e) => e.type === 'task-done')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'run-end')).toHaveLength(1);
  });

  it('says the task, the winner and the copies of a task done, and the error of one that failed', async () => {
    const { s, events } = scheduler(
      tasks(2).map((t) => Scheduler.record(t)),
      1,
    );
    s.expectHost('a');
    s.addHost(host('a', 100, (t) => (t.frame === 2 ? { kind: 'failed', message: 'exit 2' } : { kind: 'done' })));
    await vi.runAllTimersAsync();
    await s.drained();
    const done = events.filter((e) => e.type === 'task-done');
    expect(done[0]).toMatchObject({
      status: 'done',
      host: 'a',
      attempts: 1,
      winner: { host: 'a', attempt: 1 },
      copies: 1,
    });
    expect(done[1]).toMatchObject({ status: 'failed', host: 'a', attempts: 2, winner: null, copies: 2 });
    expect(done[1]!.type === 'task-done' && done[1]!.error).toMatch(/exit 2/);
    expect(s.records[1]).toMatchObject({ status: 'failed', attempts: 2, copies: 2, host: 'a' });
  });
});
