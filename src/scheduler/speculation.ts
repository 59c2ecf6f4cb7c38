/**
 * Speculation: once the queue is empty, which running attempt a spare slot
 * should race with a copy, and which copy (if any) that copy replaces. The
 * functions here decide from what they are given (the attempts, their
 * hosts' task times, the time now) and return the decision; the scheduler
 * starts and stops attempts.
 */
import { COPY_CANDIDATES, COPY_MARGIN, MAX_COPIES, RUNNING_FACTOR } from '../tuning.js';
import type { ActiveHost, Attempt, TaskRun } from './farm.js';
import { Heap } from './heap.js';
import type { TaskRecord } from './types.js';

/** What the estimates below read of an attempt (an Attempt is one). */
export interface RunningAttempt {
  /** When it was sent, then when its renderer started. */
  readonly start: number;
  /** Its renderer has started (it is not waiting behind another in its lane). */
  readonly rendering: boolean;
  /** Its renderer has ended: it is bringing its outputs in. */
  readonly freed: boolean;
  /** `time`: its host's task time now, once known; `takenOut`: its host has left the run. */
  readonly host: { readonly takenOut: boolean; readonly time: number | undefined };
  /** Aborted: it is being stopped (it lost, or was replaced). */
  readonly controller: { readonly signal: { readonly aborted: boolean } };
}

/** A copy to start, of `against`'s task; `replace`, if any, is the attempt of it stopped to make room. */
export interface CopyDecision {
  readonly against: Attempt;
  readonly replace: Attempt | undefined;
}

/** An entry of the expectation heaps: stale once the attempt has ended or restarted (`start` differs). */
export interface Expected {
  readonly att: Attempt;
  readonly start: number;
  /** When it is expected to end by its host's pace at the time (start + task time). */
  readonly end: number;
}

/** When the heap entry's attempt is expected to end: by its host's pace then, and no sooner than half as long again as it has run. */
export function expectedEnd(e: Pick<Expected, 'start' | 'end'>, now: number): number {
  return Math.max(e.end, e.start + RUNNING_FACTOR * (now - e.start));
}

/** Leaves the estimates to attempts that hold a slot and are not being stopped. */
function counts(x: RunningAttempt): boolean {
  return !x.host.takenOut && !x.controller.signal.aborted;
}

/**
 * Whether a copy on a host whose task time is `copyTime` is expected to end
 * before every running attempt in `atts` (a task's). A render that has run
 * for t on a host whose task time is T is a task of about
 * max(1, RUNNING_FACTOR * t / T) such times, on the copy's host too: so a
 * copy on a host no faster never wins, unless the original's host has
 * stalled (its time then grows with its oldest render). See COPY_MARGIN.
 */
export function copyWins(atts: readonly RunningAttempt[], now: number, copyTime: number): boolean {
  for (const x of atts) {
    // Neither a lost host's attempt nor one being stopped (replaced) holds a copy back.
    if (!counts(x)) continue;
    const elapsed = now - x.start;
    const time = x.host.time ?? elapsed;
    if (!x.rendering) {
      // Waiting behind another render: that one ends, then this one takes its time.
      if (COPY_MARGIN * copyTime >= 2 * time) return false;
      continue;
    }
    const size = Math.max(1, (RUNNING_FACTOR * elapsed) / Math.max(time, 1));
    if (COPY_MARGIN * size * copyTime >= x.start + size * time - now) return false;
  }
  return true;
}

/**
 * Of a task's attempts, the one expected to end last (see copyWins for the
 * estimate), among those on usable hosts: an attempt on a lost host holds no
 * slot, and may yet be adopted when its host comes back. None while one has
 * rendered and is bringing its outputs in, or is the task's `claimant`
 * (moving them into place): the task is all but done. Never one already
 * being stopped: it would be replaced again by every fast slot that frees up
 * before it has returned.
 */
export function lastToEnd<T extends RunningAttempt>(
  atts: readonly T[],
  now: number,
  claimant: T | undefined,
): T | undefined {
  let last: T | undefined;
  let lastEnd = -Infinity;
  for (const x of atts) {
    if (!counts(x)) continue;
    // Rendered and bringing its outputs in, or moving them into place (a slot that never frees early: shared paths).
    if (x.freed || claimant === x) return undefined;
    const elapsed = now - x.start;
    const time = x.host.time ?? elapsed;
    const end = x.rendering
      ? x.start + Math.max(1, (RUNNING_FACTOR * elapsed) / Math.max(time, 1)) * time
      : now + 2 * time;
    if (end > lastEnd) {
      last = x;
      lastEnd = end;
    }
  }
  return last;
}

/**
 * The running attempts by when they are expected to end (latest first), and
 * by when they started (earliest first: a render that has run long is
 * expected to run longer still): kept only while the queue is empty, when a
 * spare slot may copy one.
 */
export class Expectations {
  private readonly byEnd = new Heap<Expected>((a, b) => a.end > b.end);
  private readonly byStart = new Heap<Expected>((a, b) => a.start < b.start);
  /** Entries are made from here on (see `begin`). */
  active = false;

  /** The queue has emptied: the running attempts (of each task's run) are entered, and each one sent or started from now on. */
  begin(runs: Iterable<TaskRun>): void {
    this.active = true;
    for (const run of runs) for (const att of run.atts) this.enter(att);
  }

  /** Enters a running attempt (again, when its renderer starts). */
  enter(att: Attempt): void {
    if (!this.active) return;
    const time = att.host.time;
    // A queued attempt renders after the one before it in its lane: about one task time later.
    const end = time === undefined ? att.start : att.start + (att.rendering ? time : 2 * time);
    this.byStart.push({ att, start: att.start, end: att.start });
    if (end !== att.start) this.byEnd.push({ att, start: att.start, end });
  }

  /**
   * The copy a lane of `host` should start, if any: of the running attempt
   * expected to end last, if its task (the first of its copies) is expected
   * to end after `copyEnd` and a copy may go to `host` (not where the task
   * runs or failed). A task has no more than MAX_COPIES attempts at once: at
   * that many, a copy expected to end before all of them (as any copy must
   * be) takes the place of the one expected to end last (`replace`): copies
   * made while only slow hosts were free do not keep a fast host that frees
   * up later from the task. `claims`: the attempt moving each task's outputs
   * into place. Entries of ended attempts are dropped as they come up; the
   * entry of the attempt copied is used up.
   */
  copyFor(
    now: number,
    host: ActiveHost,
    copyEnd: number,
    claims: ReadonlyMap<TaskRecord, Attempt>,
  ): CopyDecision | undefined {
    const put: Expected[] = [];
    let found: CopyDecision | undefined;
    for (let tries = 0; tries < COPY_CANDIDATES && !found; tries++) {
      const e1 = fresh(this.byEnd);
      const e2 = fresh(this.byStart);
      const best = !e1 ? e2 : !e2 ? e1 : expectedEnd(e1, now) >= expectedEnd(e2, now) ? e1 : e2;
      if (!best) break;
      if (expectedEnd(best, now) <= copyEnd) break;
      (best === e1 ? this.byEnd : this.byStart).pop();
      const atts = best.att.run.atts;
      // A task one of whose attempts has rendered and is bringing its outputs in, or is moving them into place, is all but done: no copy of it.
      if (claims.has(best.att.rec) || atts.some((x) => x.freed && counts(x))) continue;
      put.push(best);
      if (atts.some((x) => x.host.host.name === host.host.name) || best.att.rec.failedOn.has(host.host.name)) continue;
      // An attempt being stopped (replaced by an earlier copy) is on its way out: it is not one of the task's attempts any more.
      let stopping = 0;
      for (const x of atts) if (x.controller.signal.aborted) stopping++;
      const full = atts.length - stopping >= MAX_COPIES;
      const replace = full ? lastToEnd(atts, now, claims.get(best.att.rec)) : undefined;
      if (full && !replace) continue;
      if (!copyWins(atts, now, copyEnd - now)) continue;
      found = { against: best.att, replace };
    }
    for (const e of put) if (e.att !== found?.against) (e.end === e.start ? this.byStart : this.byEnd).push(e);
    return found;
  }
}

/** The heap's top entry that is still current, dropping stale ones. */
function fresh(h: Heap<Expected>): Expected | undefined {
  let e: Expected | undefined;
  while ((e = h.peek()) && (e.att.ended || e.att.start !== e.start || e.att.rec.status !== 'running')) h.pop();
  return e;
}
