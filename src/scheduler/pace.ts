/**
 * Pace estimates: how long a task takes on each host (a moving average of its
 * renders, or its oldest render's time so far once that is late), the farm's
 * rate (the sum of slots / task time over the usable hosts, kept as a running
 * sum), and the decisions that read them: whether a free slot takes the next
 * task or leaves it to faster hosts (takesFree), whether a busy slot queues
 * one behind its render (queuesBehind).
 */
import { ESTIMATE_WEIGHT, QUEUE_FACTOR, QUEUE_MARGIN, STALL_LATE, STALL_STEP } from '../tuning.js';
import { oldestOf, type ActiveHost } from './farm.js';

/** A host's moving average of task time, after a render of `ms` ended well. */
export function nextEstimate(estimate: number | undefined, ms: number): number {
  return estimate === undefined ? ms : estimate + ESTIMATE_WEIGHT * (ms - estimate);
}

/**
 * A host's task time as far as we can tell, given its estimate and how long
 * its oldest render has run so far (`elapsed`): the estimate, or the render's
 * time so far once that is late (a host whose renders hang is not counted on
 * to finish the queue); and how long from now the render is next looked at
 * (when it becomes late, then each time it has run STALL_STEP times as long).
 */
export function stallWatch(estimate: number, elapsed: number): { time: number; dueIn: number } {
  const late = elapsed > estimate * STALL_LATE;
  const next = late ? elapsed * STALL_STEP : estimate * STALL_LATE;
  return { time: late ? elapsed : estimate, dueIn: next - elapsed + 1 };
}

/** The farm's pace for one pass of the dispatcher: computed once, the fastest host only if asked. */
export class Pace {
  private fast: number | undefined;
  constructor(
    private readonly farm: { fastestTime(): number },
    /** Σ slots / time over the usable hosts that are timed. */
    readonly rate: number,
    /** Every host's pace is known: none is connecting, and every usable one is through a task. */
    readonly complete: boolean,
  ) {}

  fastest(): number {
    return (this.fast ??= this.farm.fastestTime());
  }

  /** How long the queue takes to drain at this pace, for `queued` tasks. */
  drain(queued: number): number {
    return queued / this.rate;
  }
}

/**
 * Whether an idle slot of a host whose estimate is `estimate` takes the next
 * task now. Pull scheduling with a look ahead: near the end a slow host
 * leaves a task to faster ones that would finish it sooner (the rest of the
 * queue drains before it could).
 */
export function takesFree(estimate: number | undefined, pace: Pace, queued: number): boolean {
  if (estimate === undefined || pace.rate === 0 || !pace.complete) return true;
  const drain = pace.drain(queued);
  return estimate <= drain || estimate <= drain + pace.fastest();
}

/** How many of a host's task times the queue must take to drain before a slot of it queues (see queuesBehind). */
export function queueFactor(pace: Pace): number {
  return pace.complete ? QUEUE_FACTOR : QUEUE_FACTOR * QUEUE_MARGIN;
}

/**
 * Whether a busy slot of `a` queues a second task behind its running one:
 * only while the queue is long enough that the wait cannot delay the end of
 * the run. Until every host's pace is known (hosts still connecting, or not
 * yet through a task), the queue counts as long only at QUEUE_MARGIN times
 * what is needed by the hosts timed so far: the others only make it drain
 * sooner. Never behind a render that has stalled.
 */
export function queuesBehind(
  a: Pick<ActiveHost, 'estimate' | 'overdue'> & { readonly host: { readonly queues?: boolean | undefined } },
  pace: Pace,
  queued: number,
): boolean {
  if (!a.host.queues || a.overdue || a.estimate === undefined || pace.rate === 0) return false;
  return queueFactor(pace) * a.estimate < pace.drain(queued);
}

/**
 * The usable hosts' paces, kept as they change so that a decision costs the
 * same on 10 hosts as on 1,000: the farm's rate as a running sum, the count
 * of hosts not yet timed, and the fastest host's task time (looked for again
 * only once the fastest host slowed or left).
 */
export class FarmPace {
  /** Σ slots / time over the usable hosts that are timed. */
  private rateSum = 0;
  private untimed = 0;
  private fastest = Infinity;
  private fastestHost: ActiveHost | undefined;
  private fastestKnown = true;

  constructor(private readonly usable: ReadonlySet<ActiveHost>) {}

  /** The pace now, for a pass; `pendingHosts`: hosts still connecting, whose pace is not known. */
  now(pendingHosts: number): Pace {
    return new Pace(this, this.rateSum, pendingHosts <= 0 && this.untimed === 0);
  }

  /** A host joined the run, untimed. */
  joined(): void {
    this.untimed++;
  }

  /** `a` was taken out of the run: it adds nothing to the farm's pace any more. */
  left(a: ActiveHost): void {
    if (a.estimate === undefined) this.untimed--;
    this.rateSum -= a.contribution;
    a.contribution = 0;
    a.time = undefined;
    if (a === this.fastestHost) this.fastestKnown = false;
  }

  /** A render of `ms` on `a` ended well: its estimate takes it in. Returns the new estimate. */
  timed(a: ActiveHost, ms: number): number {
    if (a.estimate === undefined && !a.takenOut) this.untimed--;
    return (a.estimate = nextEstimate(a.estimate, ms));
  }

  /** The fastest usable host's task time: looked at only near the end of a run, when a slow host might leave a task. */
  fastestTime(): number {
    if (!this.fastestKnown) {
      this.fastest = Infinity;
      this.fastestHost = undefined;
      for (const a of this.usable) {
        if (a.time !== undefined && a.time < this.fastest) {
          this.fastest = a.time;
          this.fastestHost = a;
        }
      }
      this.fastestKnown = true;
    }
    return this.fastest;
  }

  /**
   * Brings `a.time` (see stallWatch), `a.overdue` and the farm's rate up to
   * date at `now`. Returns when its oldest render is next due a look (or
   * undefined: none is rendering, or the host is not timed): a render's time
   * so far grows by itself, and a timer at that moment updates it, so the
   * farm's pace stays a sum kept up to date in O(1).
   */
  watch(a: ActiveHost, now: number): number | undefined {
    const est = a.estimate;
    let time = est;
    let due: number | undefined;
    const oldest = oldestOf(a);
    if (!a.takenOut && est !== undefined && oldest) {
      const w = stallWatch(est, now - oldest.start);
      time = w.time;
      due = now + w.dueIn;
    }
    const was = a.time;
    a.time = a.takenOut ? undefined : time;
    if (this.fastestKnown && a.time !== was) {
      if (a.time !== undefined && a.time < this.fastest) {
        this.fastest = a.time;
        this.fastestHost = a;
      } else if (a === this.fastestHost) this.fastestKnown = false;
    }
    a.overdue = time !== est;
    const c = a.takenOut || time === undefined ? 0 : a.host.slots / time;
    this.rateSum += c - a.contribution;
    a.contribution = c;
    return due;
  }
}
