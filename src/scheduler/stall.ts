import type { ActiveHost } from './farm.js';
import type { FarmPace } from './pace.js';
import type { SlotLists } from './slots.js';
import type { SchedulerOptions } from './types.js';

/**
 * The stall watch: one timer per host, due when its oldest render would
 * become overdue (see FarmPace.watch). When it fires it records that time
 * has passed (the host's pace is brought up to date) and calls `due`, which
 * marks the state dirty for the pass: it takes no decision of its own.
 */
export class StallWatch {
  constructor(
    private readonly clock: Pick<SchedulerOptions, 'now'>,
    private readonly pace: FarmPace,
    private readonly slots: SlotLists,
    /** Time has changed a host's pace: the pass looks at yielding slots again. */
    private readonly due: () => void,
  ) {}

  /** Brings `a`'s task time and the farm's pace up to date (see FarmPace.watch), and times the next look at it. */
  watch(a: ActiveHost): void {
    const wasOverdue = a.overdue;
    this.arm(a, this.pace.watch(a, this.clock.now()));
    // No longer overdue, it may queue again: it goes back among the queue-yielding hosts by its estimate.
    if (wasOverdue && !a.overdue && this.slots.queueYieldingHosts.has(a) && !a.queueYieldEntry)
      this.slots.enterQueueYielding(a);
  }

  /** No more looks at `a` (it left the run, or the run has ended). */
  stop(a: ActiveHost): void {
    this.arm(a, undefined);
  }

  /** `a`'s timer has fired (ActiveHost.onStall). */
  check(a: ActiveHost): void {
    a.stallTimer = undefined;
    const due = a.stallDue;
    if (due === undefined) return;
    // Armed for a check that has since moved later: wait for that.
    if (this.clock.now() < due) return this.arm(a, due);
    this.watch(a);
    this.due();
  }

  /** Has watch() look at `a` again at `due` (or never). */
  private arm(a: ActiveHost, due: number | undefined): void {
    a.stallDue = due;
    if (a.stallTimer !== undefined && due !== undefined && a.stallArmed <= due) return;
    clearTimeout(a.stallTimer);
    a.stallTimer = undefined;
    if (due === undefined) return;
    a.stallArmed = due;
    a.stallTimer = setTimeout(a.onStall, due - this.clock.now());
  }
}
