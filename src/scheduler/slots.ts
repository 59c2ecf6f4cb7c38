/**
 * The lists a host's slots wait on, so that the pass finds a slot for a
 * task without looking at every host:
 *
 *   free           idle, listed to take a task
 *   queueing       rendering one, listed to queue the next behind it
 *   yielding       idle, leaving the last tasks to faster hosts
 *   queueYielding  rendering one, not queueing another now (the queue is too
 *                  short for its pace)
 *   barred         idle, and no queued task it may take (every one failed here)
 *   queueBarred    rendering one, and no queued task it may take or queue
 *   spare          idle with the queue empty, no running attempt worth a copy
 *                  on it now
 *   null           on no list (sending it an attempt, or taken out)
 *
 * Entries go stale (a slot moves on while still on a list): each list is
 * read with the slot's `listed` checked, rather than searched on every move.
 * Barred slots look again when a task is put back or a host changes, a
 * queue-barred one also when its render ends; yielding and queue-yielding
 * ones when the farm's pace changes (see Scheduler.recheckYielding).
 */
import { shortestFirst, type ActiveHost, type Lane, type QueueYieldEntry } from './farm.js';
import { Fifo } from './fifo.js';
import { Heap } from './heap.js';

export class SlotLists {
  readonly free = new Fifo<Lane>();
  readonly queueable = new Fifo<Lane>();
  private readonly barred: Lane[] = [];
  readonly yieldingHosts = new Set<ActiveHost>();
  readonly queueYieldingHosts = new Set<ActiveHost>();
  /**
   * The same hosts by estimate, shortest first: a host queues once its
   * estimate is short enough for the queue's drain time (see queuesBehind),
   * so a look at them stops at the first that cannot, instead of going
   * through them all (they can be most of a farm, looked at on every change
   * of its pace).
   */
  byEstimate = new Heap<QueueYieldEntry>(shortestFirst);
  private queueYieldSeq = 0;
  readonly spareHosts = new Set<ActiveHost>();
  /** No more than the least estimate of the yielding hosts (see Scheduler.noneTakesFree). */
  yieldLeast = Infinity;

  /** Puts a slot on the list its state calls for (a taken-out host's slots go nowhere). */
  list(lane: Lane): void {
    const a = lane.host;
    if (a.takenOut || lane.listed === 'yielding' || lane.listed === 'barred' || lane.listed === 'spare') return;
    if (lane.listed === 'queueBarred') {
      if (lane.sent === 1) return;
      // Its render ended: it may take a task now, the way a free slot does.
      lane.listed = null;
    }
    if (lane.sent === 0 && lane.listed !== 'free') {
      lane.listed = 'free';
      this.free.push(lane);
    } else if (lane.sent === 1 && a.host.queues && lane.listed !== 'queueing' && lane.listed !== 'queueYielding') {
      lane.listed = 'queueing';
      this.queueable.push(lane);
    }
  }

  /** The next free slot that is still free, taken off its list; or none. */
  nextFree(): Lane | undefined {
    let lane: Lane | undefined;
    while ((lane = this.free.shift())) {
      if (lane.listed !== 'free') continue;
      lane.listed = null;
      if (!lane.host.takenOut && lane.sent === 0) return lane;
    }
    return undefined;
  }

  /** Nothing it may take (or queue): it waits for a task put back or a change of hosts, not for the farm's pace. */
  bar(lane: Lane, queued: boolean): void {
    lane.listed = queued ? 'queueBarred' : 'barred';
    if (!lane.inBarred) {
      lane.inBarred = true;
      this.barred.push(lane);
    }
  }

  /** Barred slots look again (a task was put back, a host changed). */
  unbar(): void {
    for (const lane of this.barred.splice(0)) {
      lane.inBarred = false;
      if (lane.listed !== 'barred' && lane.listed !== 'queueBarred') continue;
      lane.listed = null;
      this.list(lane);
    }
  }

  /** `lane` leaves the last tasks to faster hosts (`yielding`), or does not queue one now (`queueYielding`). */
  yieldLane(lane: Lane, how: 'yielding' | 'queueYielding'): void {
    lane.listed = how;
    const a = lane.host;
    if (how === 'yielding') {
      a.yielding.push(lane);
      this.yieldingHosts.add(a);
      this.yieldLeast = Math.min(this.yieldLeast, a.estimate ?? -Infinity);
    } else {
      a.queueYielding.push(lane);
      if (!this.queueYieldingHosts.has(a)) {
        this.queueYieldingHosts.add(a);
        // Those that may queue again do in the order they began to yield.
        a.queueYieldSeq = ++this.queueYieldSeq;
        this.enterQueueYielding(a);
      }
    }
  }

  /** The queue is empty and no running attempt is worth a copy on `lane` now. */
  spare(lane: Lane): void {
    lane.listed = 'spare';
    lane.host.spare.push(lane);
    this.spareHosts.add(lane.host);
  }

  /** Puts `a`, whose slots do not queue, in the queue-yielding heap by its estimate now. */
  enterQueueYielding(a: ActiveHost): void {
    a.queueYieldEntry = { a, estimate: a.estimate ?? Infinity };
    this.byEstimate.push(a.queueYieldEntry);
    // Stale entries (a host's estimate changed, or it queues again) leave only when they come to the top: made anew once they are most of it.
    if (this.byEstimate.size > 2 * this.queueYieldingHosts.size + 64) {
      this.byEstimate = new Heap<QueueYieldEntry>(shortestFirst);
      for (const h of this.queueYieldingHosts) if (h.queueYieldEntry) this.byEstimate.push(h.queueYieldEntry);
    }
  }

  /** `a`'s slots on list `how` leave it, for the list their state calls for now. */
  release(a: ActiveHost, how: 'yielding' | 'queueYielding' | 'spare'): void {
    (how === 'yielding'
      ? this.yieldingHosts
      : how === 'queueYielding'
        ? this.queueYieldingHosts
        : this.spareHosts
    ).delete(a);
    if (how === 'queueYielding') a.queueYieldEntry = undefined;
    for (const lane of a[how].splice(0)) {
      if (lane.listed !== how) continue;
      lane.listed = null;
      this.list(lane);
    }
  }

  /** `a` was taken out of the run: its slots wait on no list. */
  hostLeft(a: ActiveHost): void {
    this.yieldingHosts.delete(a);
    this.queueYieldingHosts.delete(a);
    a.queueYieldEntry = undefined;
  }
}
