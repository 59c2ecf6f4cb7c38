import { describe, expect, it } from 'vitest';
import { copyWins, expectedEnd, lastToEnd, type RunningAttempt } from '../../../src/scheduler/speculation.js';
import { COPY_MARGIN, RUNNING_FACTOR } from '../../../src/tuning.js';

interface Options {
  rendering?: boolean;
  freed?: boolean;
  takenOut?: boolean;
  stopping?: boolean;
}

/** An attempt started (or sent) at `start` on a host whose task time is `time`. */
function att(start: number, time: number | undefined, o: Options = {}): RunningAttempt {
  return {
    start,
    rendering: o.rendering ?? true,
    freed: o.freed ?? false,
    host: { takenOut: o.takenOut ?? false, time },
    controller: { signal: { aborted: o.stopping ?? false } },
  };
}

describe('expectedEnd', () => {
  it("is the end its host's pace gave it, and no sooner than RUNNING_FACTOR times what it has run so far", () => {
    expect(expectedEnd({ start: 0, end: 100 }, 50)).toBe(100);
    expect(expectedEnd({ start: 0, end: 100 }, 100)).toBe(RUNNING_FACTOR * 100);
  });
});

describe('copyWins', () => {
  it('wins against a render that has just started only on a host more than COPY_MARGIN times faster', () => {
    // Started at 0 on a host of 900 ms a task; now 0: 900 ms left.
    expect(copyWins([att(0, 900)], 0, 900 / COPY_MARGIN - 1)).toBe(true);
    expect(copyWins([att(0, 900)], 0, 900 / COPY_MARGIN)).toBe(false);
  });

  it('never wins on a host no faster, however long the render has run, unless its host is overdue', () => {
    expect(copyWins([att(0, 100)], 500, 100)).toBe(false);
    // Its host's time has grown with the render (stalled): the copy is expected to take its own time.
    expect(copyWins([att(0, 500)], 500, 100)).toBe(true);
  });

  it('counts an attempt waiting behind another render as two of its task times away', () => {
    expect(copyWins([att(0, 300, { rendering: false })], 0, (2 * 300) / COPY_MARGIN - 1)).toBe(true);
    expect(copyWins([att(0, 300, { rendering: false })], 0, (2 * 300) / COPY_MARGIN)).toBe(false);
  });

  it('takes the time so far for a host not timed yet', () => {
    expect(copyWins([att(0, undefined)], 0, 1)).toBe(false);
    expect(copyWins([att(0, undefined)], 1000, 1)).toBe(true);
  });

  it('is held back by no attempt of a lost host nor one being stopped, and must beat every other', () => {
    expect(copyWins([att(0, 900, { takenOut: true }), att(0, 900, { stopping: true })], 0, 10_000)).toBe(true);
    expect(copyWins([att(0, 900), att(0, 90)], 0, 100)).toBe(false);
  });
});

describe('lastToEnd', () => {
  it('is the attempt expected to end last, by its pace and by how long it has run', () => {
    const a = att(0, 100);
    const b = att(0, 300);
    const c = att(50, 100, { rendering: false });
    expect(lastToEnd([a, b], 0, undefined)).toBe(b);
    // Queued: two task times from now (250 + 200), later than b's 300.
    expect(lastToEnd([a, b, c], 250, undefined)).toBe(c);
  });

  it('is none while one has rendered and brings its outputs in, or holds the claim to move them into place', () => {
    const a = att(0, 100);
    const b = att(0, 300);
    expect(lastToEnd([a, att(0, 100, { freed: true }), b], 0, undefined)).toBeUndefined();
    expect(lastToEnd([a, b], 0, a)).toBeUndefined();
  });

  it('passes over attempts on lost hosts and those being stopped', () => {
    const a = att(0, 100);
    expect(lastToEnd([att(0, 900, { takenOut: true }), att(0, 900, { stopping: true }), a], 0, undefined)).toBe(a);
    expect(lastToEnd([att(0, 900, { takenOut: true })], 0, undefined)).toBeUndefined();
  });
});
