import { describe, expect, it } from 'vitest';
import { Pace, nextEstimate, queueFactor, queuesBehind, stallWatch, takesFree } from '../../../src/scheduler/pace.js';
import { ESTIMATE_WEIGHT, QUEUE_FACTOR, QUEUE_MARGIN, STALL_LATE, STALL_STEP } from '../../../src/tuning.js';

/** A pass's pace: `rate` tasks a millisecond over the farm, `complete` when every host is timed, the fastest host's task time. */
const pace = (rate: number, complete: boolean, fastest = 10): Pace =>
  new Pace({ fastestTime: () => fastest }, rate, complete);

describe('nextEstimate', () => {
  it("is the first render's time, then a moving average weighted ESTIMATE_WEIGHT to the newest", () => {
    expect(nextEstimate(undefined, 1000)).toBe(1000);
    expect(nextEstimate(1000, 2000)).toBe(1000 + ESTIMATE_WEIGHT * 1000);
    expect(nextEstimate(1000, 500)).toBe(1000 - ESTIMATE_WEIGHT * 500);
  });
});

describe('stallWatch', () => {
  it('keeps the estimate while the oldest render is not late, and looks again when it would be', () => {
    expect(stallWatch(1000, 0)).toEqual({ time: 1000, dueIn: 1000 * STALL_LATE + 1 });
    expect(stallWatch(1000, 1000 * STALL_LATE)).toEqual({ time: 1000, dueIn: 1 });
  });

  it("counts a late render's time so far as the host's task time, and looks again once it has run STALL_STEP times as long", () => {
    const elapsed = 1000 * STALL_LATE + 100;
    expect(stallWatch(1000, elapsed)).toEqual({ time: elapsed, dueIn: elapsed * STALL_STEP - elapsed + 1 });
  });
});

describe('takesFree', () => {
  it('takes a task while anything about the pace is unknown', () => {
    expect(takesFree(undefined, pace(1, true), 100)).toBe(true);
    expect(takesFree(5000, pace(0, true), 100)).toBe(true);
    expect(takesFree(5000, pace(1, false), 0)).toBe(true);
  });

  it('takes a task while the queue drains no sooner than the host would end it, or than the fastest host could end it after the queue drains', () => {
    // 100 tasks at 1 a millisecond: 100 ms to drain; the fastest host takes 10 ms a task.
    expect(takesFree(100, pace(1, true), 100)).toBe(true);
    expect(takesFree(110, pace(1, true), 100)).toBe(true);
    expect(takesFree(111, pace(1, true), 100)).toBe(false);
    expect(takesFree(131, pace(1, true, 31), 100)).toBe(true);
  });
});

describe('queuesBehind', () => {
  const host = (estimate: number | undefined, queues = true, overdue = false) => ({
    estimate,
    overdue,
    host: { queues },
  });

  it('queues only on a host that queues, is timed, not overdue, with the farm timed', () => {
    expect(queuesBehind(host(1, false), pace(1, true), 1000)).toBe(false);
    expect(queuesBehind(host(undefined), pace(1, true), 1000)).toBe(false);
    expect(queuesBehind(host(1, true, true), pace(1, true), 1000)).toBe(false);
    expect(queuesBehind(host(1), pace(0, true), 1000)).toBe(false);
    expect(queuesBehind(host(1), pace(1, true), 1000)).toBe(true);
  });

  it('queues while the queue takes more than QUEUE_FACTOR task times to drain, QUEUE_MARGIN times more while some pace is unknown', () => {
    expect(queueFactor(pace(1, true))).toBe(QUEUE_FACTOR);
    expect(queueFactor(pace(1, false))).toBe(QUEUE_FACTOR * QUEUE_MARGIN);
    // 100 ms to drain.
    expect(queuesBehind(host(100 / QUEUE_FACTOR - 1), pace(1, true), 100)).toBe(true);
    expect(queuesBehind(host(100 / QUEUE_FACTOR), pace(1, true), 100)).toBe(false);
    expect(queuesBehind(host(100 / QUEUE_FACTOR - 1), pace(1, false), 100)).toBe(false);
    expect(queuesBehind(host(100 / (QUEUE_FACTOR * QUEUE_MARGIN) - 1), pace(1, false), 100)).toBe(true);
  });
});
