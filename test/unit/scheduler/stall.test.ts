import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { newActiveHost, type ActiveHost, type Attempt } from '../../../src/scheduler/farm.js';
import { FarmPace } from '../../../src/scheduler/pace.js';
import { SlotLists } from '../../../src/scheduler/slots.js';
import { StallWatch } from '../../../src/scheduler/stall.js';
import type { HostRecord, SchedulerHost } from '../../../src/scheduler/types.js';
import { STALL_LATE, STALL_STEP } from '../../../src/tuning.js';

/**
 * The stall watch on its own: one timer per host, due when its oldest render
 * would be late; when it fires the host's pace is brought up to date and the
 * pass is told (`due`), never before the look it was last moved to.
 */
describe('StallWatch', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  function farm(): { a: ActiveHost; watch: StallWatch; due: () => number; render: (start: number) => void } {
    const host: SchedulerHost = { name: 'h1', slots: 1, run: () => new Promise(() => {}) };
    const record: HostRecord = { name: 'h1', state: 'ok', tasksDone: 0, failures: 0 };
    let calls = 0;
    const usable = new Set<ActiveHost>();
    const watch = new StallWatch({ now: () => Date.now() }, new FarmPace(usable), new SlotLists(), () => calls++);
    const a: ActiveHost = newActiveHost(host, record, () => watch.check(a));
    usable.add(a);
    a.estimate = 1000;
    const render = (start: number): void => {
      a.lanes[0]!.rendering = { start, renderSeq: 1 } as Attempt;
    };
    return { a, watch, due: () => calls, render };
  }

  it('tells the pass when the oldest render becomes late, and counts the host at that render time from then on', () => {
    const { a, watch, due, render } = farm();
    render(0);
    watch.watch(a);
    expect(a.stallDue).toBe(1000 * STALL_LATE + 1);
    expect(a.overdue).toBe(false);
    vi.advanceTimersByTime(1000 * STALL_LATE);
    expect(due()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(due()).toBe(1);
    expect(a.overdue).toBe(true);
    expect(a.time).toBe(1000 * STALL_LATE + 1);
    // And again, later by STALL_STEP each time, while the render runs on.
    expect(a.stallDue).toBe((1000 * STALL_LATE + 1) * STALL_STEP + 1);
  });

  it('keeps a timer armed earlier than a look moved later, and waits for the later look when it fires', () => {
    const { a, watch, due, render } = farm();
    render(0);
    watch.watch(a);
    const timer = a.stallTimer;
    // The render restarts later (a new one on the lane): the look moves later, the timer is kept.
    vi.advanceTimersByTime(500);
    render(500);
    watch.watch(a);
    expect(a.stallTimer).toBe(timer);
    expect(a.stallDue).toBe(500 + 1000 * STALL_LATE + 1);
    vi.advanceTimersByTime(1000 * STALL_LATE + 1 - 500);
    expect(due()).toBe(0);
    expect(a.stallTimer).not.toBe(timer);
    vi.advanceTimersByTime(500);
    expect(due()).toBe(1);
  });

  it('never fires for a host it stopped watching', () => {
    const { a, watch, due, render } = farm();
    render(0);
    watch.watch(a);
    watch.stop(a);
    expect(a.stallTimer).toBeUndefined();
    vi.advanceTimersByTime(10_000);
    expect(due()).toBe(0);
  });
});
