/**
 * The farm as the scheduler sees it: each host it uses (ActiveHost), the
 * host's lanes (one per slot), and the attempts sent to them. Records with
 * no behaviour of their own, but the lists they are on: the dispatcher in
 * scheduler.ts moves them.
 */
import type { AttemptSlot, HostRecord, SchedulerHost, TaskRecord } from './types.js';

/** A timer of the scheduler's own (the clock of a simulated farm may replace setTimeout). */
export type Timer = ReturnType<typeof setTimeout>;

/**
 * Where a slot of a host stands in the dispatcher's lists: `free` (idle,
 * listed to take a task), `queueing` (rendering one, listed to queue the next
 * behind it), `yielding` (idle, leaving the last tasks to faster hosts), `queueYielding`
 * (rendering one, not queueing another now), `barred` (no task it may take:
 * every queued one failed here), `queueBarred` (rendering one, and no queued task
 * it may take or queue), `spare` (idle with the queue empty, no running
 * attempt worth a copy on it now), or nowhere (busy). `barred` and `queueBarred`
 * slots are looked at again when a task is put back or a host changes, a
 * `queueBarred` one also when its render ends.
 */
export type Listing = 'free' | 'queueing' | 'yielding' | 'queueYielding' | 'barred' | 'queueBarred' | 'spare' | null;

export interface Lane {
  readonly host: ActiveHost;
  readonly index: number;
  /** Attempts given to this slot and not yet freed: 0, 1, or 2 (one rendering, one queued behind it). */
  sent: number;
  listed: Listing;
  /** The attempt rendering in this lane: the next one starting there means it has ended. */
  rendering: Attempt | undefined;
  /**
   * It has an entry in the dispatcher's barred list (maybe a stale one: it
   * left `barred` or `queueBarred` since): a slot that waits there again needs no
   * second one, or the list would grow by one for every task such a slot renders.
   */
  inBarred: boolean;
}

/** A task's attempts that have not ended, and whether the run waits for the task (not settled, not back in the queue). */
export interface TaskRun {
  readonly atts: Attempt[];
  open: boolean;
  /** Its place in the order of the live map's entries. */
  readonly seq: number;
}

/** What an attempt's AttemptSlot calls reach (Attempts, in attempts.ts): one per scheduler, not a closure per attempt. */
export interface AttemptOwner {
  started(att: Attempt): void;
  released(att: Attempt): void;
  claim(att: Attempt): boolean;
  unclaim(att: Attempt): void;
}

/**
 * One attempt of a task on a host's slot, from when it is sent until it
 * ends. It is also the AttemptSlot its host is given: methods on a class
 * rather than closures per attempt, since a farm of a thousand hosts has
 * thousands of attempts in flight and their garbage is most of what a
 * decision costs there.
 */
export class Attempt implements AttemptSlot {
  readonly controller = new AbortController();
  /** AttemptSlot.lane: the slot's index on its host. */
  readonly lane: number;
  rendering = false;
  /** The order its renderer started in, among all attempts (see oldestOf). */
  renderSeq = 0;
  /** Its index in its host's live attempts. */
  onHost = -1;
  /** Its slot is free again (renderer ended), and it has ended (outputs in, or not). */
  freed = false;
  ended = false;
  constructor(
    private readonly owner: AttemptOwner,
    /** Its task's entry in the scheduler's live attempts. */
    readonly run: TaskRun,
    readonly rec: TaskRecord,
    readonly host: ActiveHost,
    readonly place: Lane,
    readonly number: number,
    readonly speculative: boolean,
    /** When it was sent, then when its renderer started. */
    public start: number,
  ) {
    this.lane = place.index;
  }

  started(): void {
    this.owner.started(this);
  }

  released(): void {
    this.owner.released(this);
  }

  superseded(): boolean {
    const won = this.rec.won;
    return won !== null && (won.host !== this.host.host.name || won.attempt !== this.number);
  }

  claim(): boolean {
    return this.owner.claim(this);
  }

  unclaim(): void {
    this.owner.unclaim(this);
  }
}

export interface ActiveHost {
  readonly host: SchedulerHost;
  readonly record: HostRecord;
  readonly lanes: Lane[];
  takenOut: boolean;
  /** Its attempts that have not ended, in no order (each knows its index: see Attempt.onHost). */
  readonly live: Attempt[];
  /** Tasks it failed in a row (different ones): at maxConsecutiveFailures it is taken out. */
  readonly streak: Set<number>;
  /** Milliseconds a task takes on this host (a moving average of its successful attempts), once known. */
  estimate: number | undefined;
  /** What it adds to the dispatcher's rateSum now: slots / time, or 0 (untimed or taken out). */
  contribution: number;
  /** Its task time now (see StallWatch.watch), once known. */
  time: number | undefined;
  /** Its oldest render has run well past its estimate: its pace counts as that render's time so far. */
  overdue: boolean;
  /**
   * When StallWatch.watch is next due for it, and the timer for that: armed no
   * later than it is due, and kept when the check moves later (which most
   * changes do) to be re-armed when it fires, rather than made anew on
   * every change; `onStall` is its callback, one per host.
   */
  stallDue: number | undefined;
  stallTimer: Timer | undefined;
  stallArmed: number;
  onStall: () => void;
  /** Its yielding slots (leaving the last tasks to faster hosts), queue-yielding ones (not queueing now), and spare ones. */
  readonly yielding: Lane[];
  readonly queueYielding: Lane[];
  readonly spare: Lane[];
  /**
   * Its entry in the dispatcher's queue-yielding heap while its slots do not queue
   * (older entries of it are stale; none while it is overdue: it is put back
   * when it no longer is), and when it began to yield, among the hosts that have so far.
   */
  queueYieldEntry: QueueYieldEntry | undefined;
  queueYieldSeq: number;
}

/** A host that has just joined the run: untimed, its lanes on no list yet. `onStall`: its stall timer's callback. */
export function newActiveHost(host: SchedulerHost, record: HostRecord, onStall: () => void): ActiveHost {
  const a: ActiveHost = {
    host,
    record,
    lanes: [],
    takenOut: false,
    live: [],
    streak: new Set(),
    estimate: undefined,
    time: undefined,
    contribution: 0,
    overdue: false,
    stallDue: undefined,
    stallTimer: undefined,
    stallArmed: 0,
    onStall,
    yielding: [],
    queueYielding: [],
    spare: [],
    queueYieldEntry: undefined,
    queueYieldSeq: 0,
  };
  for (let i = 0; i < host.slots; i++)
    a.lanes.push({ host: a, index: i, sent: 0, listed: null, rendering: undefined, inBarred: false });
  return a;
}

export const shortestFirst = (x: QueueYieldEntry, y: QueueYieldEntry): boolean => x.estimate < y.estimate;

/** A host whose slots do not queue, by its estimate when they began to yield (or when that changed since). */
export interface QueueYieldEntry {
  readonly a: ActiveHost;
  readonly estimate: number;
}

/** The first of a host's attempts rendering now to have started (its lanes' renders: a host has a handful of slots). */
export function oldestOf(a: ActiveHost): Attempt | undefined {
  let oldest: Attempt | undefined;
  for (const lane of a.lanes) {
    const r = lane.rendering;
    if (r && (oldest === undefined || r.renderSeq < oldest.renderSeq)) oldest = r;
  }
  return oldest;
}

/** Set#clear makes a new table even for an empty set: done on every task a host finishes. */
export function clearStreak(a: ActiveHost): void {
  if (a.streak.size > 0) a.streak.clear();
}
