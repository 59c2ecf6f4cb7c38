/**
 * The scheduler: one dispatcher for every host slot, Playwright's runner
 * dispatcher the model. Handlers (addHost, removeHost, an attempt's start,
 * its slot freed, its end, a timer) record what happened and note what it
 * may change; one synchronous pass (schedule -> pass) takes every decision:
 * which task runs where, which slot queues, yields or copies, when a host is
 * taken out, when the run ends. Attempts are async; decisions are not, so a
 * fake farm and the simulation (bench/sim.ts) replay exactly.
 *
 * Some things follow from an event with nothing left to choose, and are
 * done in its handler: a host whose connection is gone leaves the run; a
 * stopped run cancels its queued tasks and stops its attempts; a task done
 * stops its other copies. Each says why where it is done.
 *
 * Files: types.ts (the public types), events.ts (the frozen events),
 * hostStates.ts (a host's state machine), farm.ts (hosts, lanes, attempts as
 * the scheduler keeps them), queue.ts (the task queue), slots.ts (the lists
 * slots wait on), pace.ts (pace estimates, take/queue decisions),
 * speculation.ts (copy decisions), chunking.ts (chunk records), attempts.ts
 * (an attempt's life: send, start, free, end, and its end applied to its
 * task), stall.ts (each host's stall timer), and this file (the public API,
 * the handlers and the pass). Tuning constants: src/tuning.ts.
 *
 * Glossary (one word per meaning, here and in every file of scheduler/):
 *
 *   lane       one of a host's `slots` (AttemptSlot.lane is its index)
 *   send       give an attempt to a lane (event attempt-queued): it renders
 *              at once, or queues behind the lane's running attempt
 *   start      its renderer starts on the host (AttemptSlot.started)
 *   free       its renderer has ended and its lane is free, outputs maybe
 *              still coming (AttemptSlot.released; attempt-ended 'released')
 *   end        its outcome is final, outputs in or not (attempt-ended)
 *   return     the host's run() has returned (drained() waits for all)
 *   stop       abort an attempt's signal: it lost, was replaced, or the
 *              run is stopping (RUN_STOPPED)
 *   copy       a speculative attempt of a task running elsewhere
 *   replace    stop an attempt to make room for a copy expected sooner
 *   settle     a task reaches its final status (done, failed, cancelled)
 *   requeue    put a task back at the front of the queue
 *   close      the run stops waiting for a task (settled or requeued)
 *   take out   a host leaves the run (lost, blocked, removed, reconnecting)
 *   yield      a lane leaves the last tasks to faster hosts (yielding), or
 *              does not queue a task behind its render now (queueYielding)
 *   bar        a lane has no queued task it may take (barred)
 *   spare      an idle lane with the queue empty and nothing worth a copy
 *   pace       a host's task time (estimate, or its late render's time so
 *              far) and the farm's rate, the sum of slots / task time
 *   note       what a handler records for the next pass to act on (its
 *              fields end in Due: unbarDue, releaseSpareDue, ...)
 */
import { EventEmitter } from 'node:events';
import type { Task } from '../plan/plan.js';
import { refOf, type SchedulerEvent } from './events.js';
import { newActiveHost, type ActiveHost, type Lane, type QueueYieldEntry, type Timer } from './farm.js';
import { NONE, TaskQueue } from './queue.js';
import { carvePart } from './chunking.js';
import { SlotLists } from './slots.js';
import { FarmPace, queueFactor, queuesBehind, takesFree, type Pace } from './pace.js';
import { Expectations, type CopyDecision } from './speculation.js';
import { Attempts } from './attempts.js';
import { StallWatch } from './stall.js';
import { MIN_RECHECK_MS, RECHECK_GROWTH, SPARE_RECHECK_MS } from '../tuning.js';
import { HostStates, type HostState } from './hostStates.js';
import {
  RUN_STOPPED,
  newTaskRecord,
  NO_HOSTS,
  type AttemptOutcome,
  type Chunks,
  type HostRecord,
  type SchedulerHost,
  type SchedulerOptions,
  type TaskRecord,
  type TaskStatus,
} from './types.js';

export type { SchedulerEvent } from './events.js';
export type { HostState } from './hostStates.js';
export * from './types.js';

export interface SchedulerEvents {
  /** Every change, as a frozen object (see events.ts): what views, the report and the event stream read. */
  event: [SchedulerEvent];
  /** An attempt that settled its task ended, with the task's live record: for the stitcher, which reads the task's outputs. */
  'task-end': [TaskRecord, HostRecord, AttemptOutcome];
}

function newHostRecord(name: string): HostRecord {
  return { name, state: 'connecting', tasksDone: 0, failures: 0 };
}

/**
 * The dispatcher: a queue of tasks, lists of slots that can take one, and
 * one synchronous schedule() that pairs them whenever anything changes. A slot
 * is found without looking at every host, and the farm's pace is kept as a
 * running sum, so a decision costs the same on 10 hosts as on 1,000.
 * Attempts are async; decisions are not.
 */

export class Scheduler extends EventEmitter<SchedulerEvents> {
  readonly records: TaskRecord[];
  readonly hosts = new Map<string, HostRecord>();
  private readonly byName = new Map<string, ActiveHost>();
  private readonly usable = new Set<ActiveHost>();
  /** Every host's state; the count of hosts the run still counts on (connecting or reconnecting). */
  private readonly states: HostStates;
  /** Tasks waiting for a slot. */
  private readonly queue: TaskQueue;
  private readonly abort = new AbortController();
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((resolve) => (this.resolveFinished = resolve));
  private isFinished = false;
  private begun = false;

  /** The lists slots wait on for a task, a place in a queue, or a copy. */
  private readonly slots = new SlotLists();
  /**
   * Noted by the handlers for the next pass (see actOnNotes): slots with no
   * task they may take should look again (a task came back, a host changed),
   * spare slots too (a task came back, a host was lost), hosts whose own pace
   * changed while their slots do not queue, hosts that failed a task.
   */
  private unbarDue = false;
  private releaseSpareDue = false;
  private readonly repaced = new Set<ActiveHost>();
  private readonly failedHosts: Array<{ readonly a: ActiveHost; readonly message: string }> = [];
  /** A timer says time has passed: spare slots look for a render worth a copy again. */
  private respeculateDue = false;
  /** The usable hosts' paces: the farm's rate, the fastest host. */
  private readonly pace = new FarmPace(this.usable);
  private recheck: Timer | undefined;
  private scheduling = false;
  private again = false;
  /** When yielding slots were last looked at: the queue's drain time then, whether every pace was known; or a change that calls for a look. */
  private yieldDrain = 0;
  private yieldComplete = false;
  private yieldLookDue = false;

  /** Running attempts by when they are expected to end: kept only with speculation, while the queue is empty. */
  private readonly expectations = new Expectations();
  /** Tasks of a lost host, to be copied to the next free slots while the host may still come back. */
  private readonly lostHostTasks: TaskRecord[] = [];
  /** With --chunk: see Chunks. */
  private readonly chunks: Chunks | undefined;
  /** Each host's stall timer (see stall.ts). */
  private readonly stall: StallWatch;
  /** The attempts not yet ended, and how their ends are applied to their tasks (see attempts.ts). */
  private readonly attempts: Attempts;

  constructor(
    records: TaskRecord[],
    private readonly options: SchedulerOptions,
  ) {
    super();
    this.records = records;
    this.states = new HostStates(options.onRefusedMove);
    this.chunks = options.chunks;
    this.queue = new TaskQueue(this.chunks, this.usable, this.states);
    this.stall = new StallWatch(options, this.pace, this.slots, () => {
      this.yieldLookDue = true;
      this.schedule();
    });
    this.attempts = new Attempts({
      options,
      records,
      chunks: this.chunks,
      stop: this.abort.signal,
      pace: this.pace,
      slots: this.slots,
      expectations: this.expectations,
      stall: this.stall,
      observed: () => this.observed,
      event: (e) => this.event(e),
      taskEnd: (rec, host, outcome) => this.emit('task-end', rec, host, outcome),
      tellFirst: (work, first) => this.tellFirst(work, first),
      requeue: (rec) => this.requeue(rec),
      lost: (a, message) => this.takeOut(a, 'lost', message),
      failed: (a, message) => this.failedHosts.push({ a, message }),
      repaced: (a) => this.repaced.add(a),
      schedule: () => this.schedule(),
    });
    for (const i of options.order ?? records.keys()) {
      const r = records[i];
      if (r?.status === 'pending') this.queue.push(r);
    }
  }

  static record(task: Task): TaskRecord {
    return newTaskRecord(task);
  }

  /**
   * Moves a host to `state` (see hostStates.ts for the moves that can
   * happen); false, with nothing changed, for one that cannot (a late word
   * from a connection that is no longer the host's).
   */
  private moveHost(name: string, state: HostState, message: string | undefined): HostRecord | undefined {
    this.begin();
    const known = this.hosts.get(name);
    const rec = known ?? newHostRecord(name);
    if (!this.states.move(rec, state, message, known === undefined)) return undefined;
    this.hosts.set(name, rec);
    this.hostEvent(rec);
    return rec;
  }

  /**
   * A host that is connecting ('connecting') or connecting again
   * ('reconnecting'): the run does not give up on tasks while one might
   * come. Saying it again (each try) only updates `message`.
   */
  expectHost(name: string, state: 'connecting' | 'reconnecting' = 'connecting', message?: string): void {
    this.moveHost(name, state, message);
  }

  /** Hosts connecting or reconnecting: the run counts on them. */
  get pendingHosts(): number {
    return this.states.pending;
  }

  /** True once any host has been ready. */
  get everReady(): boolean {
    return this.states.everReady;
  }

  /** True once every task has ended. */
  get done(): boolean {
    return this.isFinished;
  }

  /** A host that did not become usable (again): why, as the state and in words. */
  hostUnavailable(name: string, state: HostState, message: string): void {
    if (!this.moveHost(name, state, message)) return;
    // A task kept for a host that will not come may now go back where it failed.
    this.unbarDue = true;
    this.schedule();
  }

  /**
   * A host that is ready: its slots start taking tasks. False if its state
   * cannot move to ready (it has ended, or was never expected): the caller
   * closes its connection.
   */
  addHost(host: SchedulerHost): boolean {
    const known = this.hosts.get(host.name);
    const record = known ?? newHostRecord(host.name);
    if (!this.states.move(record, 'ok', undefined, known === undefined)) return false;
    this.begin();
    this.hosts.set(host.name, record);
    const a = newActiveHost(host, record, () => this.stall.check(a));
    this.byName.set(host.name, a);
    this.usable.add(a);
    this.pace.joined();
    this.hostEvent(record);
    for (const lane of a.lanes) this.slots.list(lane);
    this.unbarDue = true;
    this.schedule();
    return true;
  }

  /**
   * The host leaves the run: 'lost' (its connection; its running attempts
   * report `lost` themselves), 'removed' (its inventory entry) or
   * 'reconnecting' (its entry changed: the attempts it runs go on).
   */
  removeHost(name: string, state: 'lost' | 'removed' | 'reconnecting', message: string): void {
    const a = this.byName.get(name);
    if (!a || a.takenOut) return;
    this.takeOut(a, state, message);
    this.schedule();
  }

  /** The run is over: the hosts still ready are closed, `done`, or `cancelled` with a stopped run. */
  closeHosts(state: 'done' | 'cancelled'): void {
    for (const rec of this.hosts.values()) if (rec.state === 'ok') this.moveHost(rec.name, state, undefined);
  }

  /**
   * Stops the run: queued tasks are cancelled, running attempts are aborted
   * with RUN_STOPPED as the reason (they keep what they have finished: see
   * isRunStop).
   */
  cancel(): void {
    if (this.abort.signal.aborted) return;
    this.begin();
    this.abort.abort(RUN_STOPPED);
    // Attempts waiting behind a running one on their slot are stopped first: a host is told to drop the
    // one queued in a lane before it is told to stop the renderer ahead of it, so the lane never starts
    // the queued one in between (to be stopped at once, and drawn as a render that ran).
    const atts = [...this.attempts.live.values()].flatMap((run) => run.atts);
    for (const att of atts) if (!att.rendering) att.controller.abort(RUN_STOPPED);
    for (const att of atts) if (att.rendering) att.controller.abort(RUN_STOPPED);
    // Not left to the pass: a stopped run has nothing to choose for a queued task (none will start), and its
    // task-done events come before any a stopped attempt's end makes.
    for (const r of this.queue.drain()) this.attempts.settle(r, 'cancelled');
    this.lostHostTasks.length = 0;
    this.schedule();
  }

  get cancelled(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * Puts a task that failed after its retries back at the front of the
   * queue, with its attempts counted afresh (--retries more after this one)
   * and free to go to any host again, while the run is live. Returns why it
   * cannot, or undefined: once every task has ended the run is over and a
   * rerun of the same command renders what failed.
   */
  retry(index: number): string | undefined {
    const rec = this.records[index];
    if (!rec) return `there is no task ${index}`;
    if (this.isFinished)
      return 'the run has ended; run the same command again to render the failed tasks (complete ones are skipped)';
    if (this.abort.signal.aborted) return 'the run is being stopped';
    if (rec.status !== 'failed')
      return `${rec.task.label} is ${rec.status === 'pending' ? 'waiting to run' : rec.status}, not failed`;
    this.attempts.countAfresh(rec);
    rec.status = 'pending';
    rec.failedOn = NO_HOSTS;
    if (this.observed)
      this.event({ type: 'task-retried', at: this.options.now(), task: refOf(rec.task), attempts: rec.attempts });
    this.requeue(rec);
    this.schedule();
    return undefined;
  }

  /** Resolves when every attempt has returned (after finished, renderers and losing copies included). */
  async drained(): Promise<void> {
    await this.finished;
    await this.attempts.returned();
  }

  private get speculating(): boolean {
    return this.options.speculate === true && !this.abort.signal.aborted;
  }

  private event(e: SchedulerEvent): void {
    if (this.buffered) this.buffered.push(Object.freeze(e));
    else this.emit('event', Object.freeze(e));
  }

  /**
   * Events made while an attempt's end is settled (its task's task-done, a
   * retry queued elsewhere) are buffered, so the attempt-ended that says how the
   * task goes on comes first.
   */
  private buffered: SchedulerEvent[] | null = null;

  /** Runs `work` with the events it makes buffered, then tells `first()` ahead of them (nested calls tell theirs in place). */
  private tellFirst(work: () => void, first: () => SchedulerEvent): void {
    const outer = this.buffered;
    const buffer = (this.buffered ??= []);
    const mark = buffer.length;
    try {
      work();
    } finally {
      if (!outer) this.buffered = null;
      try {
        if (this.observed) buffer.splice(mark, 0, Object.freeze(first()));
      } finally {
        if (!outer) for (const e of buffer) this.emit('event', e);
      }
    }
  }

  private get observed(): boolean {
    return this.listenerCount('event') > 0;
  }

  private begin(): void {
    if (this.begun) return;
    this.begun = true;
    if (this.observed) {
      const pending = this.records.filter((r) => r.status === 'pending').length;
      this.event({ type: 'run-start', at: this.options.now(), tasks: this.records.length, pending });
    }
  }

  private hostEvent(rec: HostRecord): void {
    if (this.observed)
      this.event({ type: 'host-state', at: this.options.now(), host: rec.name, state: rec.state, reason: rec.message });
  }

  private takeOut(a: ActiveHost, state: HostState, message: string): void {
    a.takenOut = true;
    this.usable.delete(a);
    this.pace.left(a);
    this.slots.hostLeft(a);
    this.stall.stop(a);
    if (this.byName.get(a.host.name) === a) this.byName.delete(a.host.name);
    this.moveHost(a.host.name, state, message);
    if (state === 'lost' && this.speculating) {
      // Its renders may live on and be picked up if it comes back within the grace period; meanwhile
      // a copy runs elsewhere, and whichever is complete first wins.
      // In the order of the live map, as every other look at the running tasks goes (one attempt of a task per host).
      for (const att of [...a.live].sort((x, y) => x.run.seq - y.run.seq)) this.lostHostTasks.push(att.rec);
      // Spare slots (idle, nothing worth a copy until now) are the first to take them.
      this.releaseSpareDue = true;
    }
    // A task that failed everywhere else may now go back to a host where it failed.
    this.unbarDue = true;
  }

  /** Barred slots look again; so do yielding ones, at the next pass. */
  private unbar(): void {
    this.yieldLookDue = true;
    this.slots.unbar();
  }

  /** Pairs tasks with slots until no pair is left: called whenever anything changes. */
  private schedule(): void {
    if (this.scheduling) {
      this.again = true;
      return;
    }
    this.scheduling = true;
    try {
      do {
        this.again = false;
        this.pass();
      } while (this.again);
    } finally {
      this.scheduling = false;
    }
    this.checkFinished();
  }

  /**
   * One look at everything: what the handlers noted since the last pass is
   * acted on, then tasks are paired with slots (or copies with spare slots
   * once the queue is empty).
   */
  private pass(): void {
    this.actOnNotes();
    if (this.isFinished || this.abort.signal.aborted) return;
    if (this.lostHostTasks.length > 0) this.copyLostHostTasks();
    if (this.queue.length === 0) {
      if (this.speculating && this.attempts.openTasks > 0) {
        // The heaps are filled from here on: until the queue is empty no copy is made, and they would only grow.
        if (!this.expectations.active) this.expectations.begin(this.attempts.live.values());
        this.speculate();
      }
      return;
    }
    this.expectations.active = false;
    const pace = this.pace.now(this.pendingHosts);
    // Hosts that left the last tasks to faster ones, and slots that did not queue: looked at again when
    // the queue would now take longer to drain (a host lost or stalled, a task back), not on every change.
    const drain = pace.rate > 0 ? pace.drain(this.queue.tasks) : Infinity;
    const recheck =
      this.yieldLookDue || drain > this.yieldDrain * RECHECK_GROWTH || pace.complete !== this.yieldComplete;
    this.yieldLookDue = false;
    if (recheck) {
      this.yieldDrain = drain;
      this.yieldComplete = pace.complete;
      this.recheckYielding(pace);
    }
    // A handler that runs during the pass (a host whose run() failed at once) ends it: the pass starts over and acts on its notes.
    let lane: Lane | undefined;
    while (!this.again && this.queue.length > 0 && (lane = this.slots.nextFree())) this.offer(lane, false, pace);
    for (let n = this.slots.queueable.length; n > 0 && !this.again && this.queue.length > 0; n--) {
      lane = this.slots.queueable.shift();
      if (!lane || lane.listed !== 'queueing') continue;
      lane.listed = null;
      if (lane.host.takenOut || lane.sent !== 1) continue;
      this.offer(lane, true, pace);
    }
    if (this.again) return;
    if (this.queue.length === 0) {
      // The last task is out: yielding slots are free for copies now.
      for (const a of [...this.slots.yieldingHosts]) this.slots.release(a, 'yielding');
      this.unbar();
      if (this.speculating) this.again = true;
    } else if (this.slots.yieldingHosts.size > 0 && this.recheck === undefined) {
      // A render that stalls makes its host's pace worse by the minute, with nothing else changing: look again.
      // (Only when no look is due yet: the yielding hosts can be most of a farm, and this runs on every change.)
      let wait = Infinity;
      for (const a of this.slots.yieldingHosts) wait = Math.min(wait, a.estimate ?? 0);
      this.lookAgainIn(Math.max(MIN_RECHECK_MS, wait));
    }
  }

  /**
   * The decisions that follow from what the handlers noted: a host that
   * failed different tasks in a row is taken out; slots that had nothing
   * they could take, or nothing worth a copy, look again; a host whose own
   * pace changed may queue again.
   */
  private actOnNotes(): void {
    // Looked at on every pass: no array is made unless a host failed.
    if (this.failedHosts.length > 0)
      for (const { a, message } of this.failedHosts.splice(0)) {
        if (a.streak.size >= this.options.maxConsecutiveFailures && !a.takenOut)
          this.takeOut(
            a,
            'blocked',
            `taken out of the run after failing ${a.streak.size} different tasks in a row (last: ${message})`,
          );
      }
    if (this.unbarDue) {
      this.unbarDue = false;
      this.unbar();
    }
    if (this.releaseSpareDue) {
      this.releaseSpareDue = false;
      for (const a of [...this.slots.spareHosts]) this.slots.release(a, 'spare');
    }
    if (this.repaced.size > 0) {
      const pace = this.pace.now(this.pendingHosts);
      for (const a of this.repaced) {
        // Its own pace changed: whether its other slots queue may too (the other hosts wait for a change of the farm's pace).
        if (!this.slots.queueYieldingHosts.has(a)) continue;
        if (queuesBehind(a, pace, this.queue.tasks)) this.slots.release(a, 'queueYielding');
        // Its place among the queue-yielding hosts follows its estimate.
        else if (a.queueYieldEntry && a.queueYieldEntry.estimate !== (a.estimate ?? Infinity))
          this.slots.enterQueueYielding(a);
      }
      this.repaced.clear();
    }
  }

  private lookAgainIn(ms: number): void {
    if (this.recheck !== undefined) return;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      this.yieldLookDue = true;
      this.respeculateDue = true;
      this.schedule();
    }, ms);
  }

  private recheckYielding(pace: Pace): void {
    if (this.queue.length > 0 && !this.noneTakesFree(pace)) {
      let least = Infinity;
      for (const a of this.slots.yieldingHosts) {
        const next = this.queue.candidate(a, false);
        if (
          next === NONE ||
          (this.queue.at(next).failedOn.size === 0 && !takesFree(a.estimate, pace, this.queue.tasks))
        ) {
          least = Math.min(least, a.estimate ?? -Infinity);
          continue;
        }
        this.slots.release(a, 'yielding');
      }
      this.slots.yieldLeast = least;
    }
    // A host queues only if not overdue, when its estimate is its time, no shorter than the fastest:
    // when the fastest could not queue, none of them can, and they can be most of a farm.
    if (
      this.slots.queueYieldingHosts.size === 0 ||
      pace.rate === 0 ||
      queueFactor(pace) * this.pace.fastestTime() >= pace.drain(this.queue.tasks)
    )
      return;
    const heap = this.slots.byEstimate;
    const queueing: QueueYieldEntry[] = [];
    for (let e = heap.peek(); e; e = heap.peek()) {
      if (e !== e.a.queueYieldEntry) heap.pop();
      else if (queuesBehind(e.a, pace, this.queue.tasks)) queueing.push(heap.pop()!);
      else if (e.a.overdue) {
        // It does not queue whatever its estimate until its render is no longer overdue (StallWatch.watch puts it back).
        heap.pop();
        e.a.queueYieldEntry = undefined;
      }
      // Its estimate is too long for the queue, and so is every one behind it.
      else break;
    }
    // The longest yielding first: the order their slots are offered tasks in.
    for (const e of queueing.sort((x, y) => x.a.queueYieldSeq - y.a.queueYieldSeq))
      this.slots.release(e.a, 'queueYielding');
  }

  /** Gives `lane` the next task it may take, or lists it where it waits. */
  private offer(lane: Lane, queued: boolean, pace: Pace): void {
    const a = lane.host;
    const found = this.queue.candidate(a, queued);
    if (found === NONE) {
      this.slots.bar(lane, queued);
      return;
    }
    // A task that failed somewhere is not left to faster hosts: they may be where it failed.
    if (
      queued
        ? !queuesBehind(a, pace, this.queue.tasks)
        : this.queue.at(found).failedOn.size === 0 && !takesFree(a.estimate, pace, this.queue.tasks)
    ) {
      this.slots.yieldLane(lane, queued ? 'queueYielding' : 'yielding');
      return;
    }
    this.attempts.send(lane, this.chunks ? this.takeChunk(found, a) : this.queue.take(found));
  }

  /** A slot of `a` takes the first part of the queued chunk at `i` (it stays queued with the rest), or all of it. */
  private takeChunk(i: number, a: ActiveHost): TaskRecord {
    const rec = this.queue.at(i);
    const carved = this.chunks!.carve(rec.task, a.host.name, this.records.length);
    if (!carved) {
      return this.queue.take(i);
    }
    const from = rec.task;
    const part = carvePart(rec, carved.taken, carved.rest);
    this.records.push(part);
    this.queue.tookPart(part.task);
    if (this.observed)
      this.event({
        type: 'chunk-formed',
        at: this.options.now(),
        from: refOf(from),
        task: refOf(part.task),
        rest: refOf(rec.task),
      });
    return part;
  }

  /**
   * True when no yielding slot would take a task now: only fresh tasks are
   * queued, and every yielding host's estimate (yieldLeast is no more than the
   * least) is longer than the queue's drain time plus the fastest host's
   * task time (see takesFree). Yielding hosts can be most of a farm near
   * the end of a run, and are looked at again on every stall check.
   */
  private noneTakesFree(pace: Pace): boolean {
    return (
      this.queue.allFresh &&
      pace.complete &&
      pace.rate > 0 &&
      this.slots.yieldLeast > pace.drain(this.queue.tasks) + pace.fastest()
    );
  }

  /** A lost host's tasks, copied to free slots elsewhere at once. */
  private copyLostHostTasks(): void {
    const waiting: TaskRecord[] = [];
    const skipped: Lane[] = [];
    for (const rec of this.lostHostTasks.splice(0)) {
      const atts = this.attempts.live.get(rec)?.atts;
      // Done meanwhile, or already copied to a host that is still there.
      if (!atts || atts.some((x) => !x.host.takenOut)) continue;
      let lane: Lane | undefined;
      // By name: a host that reconnected is a new entry here, but its renderers (and workdir) are the same.
      while (
        (lane = this.slots.nextFree()) &&
        (atts.some((x) => x.host.host.name === lane!.host.host.name) || rec.failedOn.has(lane.host.host.name))
      )
        skipped.push(lane);
      if (!lane) {
        waiting.push(rec);
        continue;
      }
      this.attempts.send(lane, rec, atts[0]);
    }
    for (const lane of skipped) this.slots.list(lane);
    this.lostHostTasks.push(...waiting);
  }

  /**
   * With the queue empty: gives each free slot a copy of the running attempt
   * expected to end last, while the copy is expected to end sooner.
   */
  private speculate(): void {
    const now = this.options.now();
    let lane: Lane | undefined;
    while (!this.again && (lane = this.slots.nextFree())) {
      const time = lane.host.time;
      const target =
        time === undefined ? undefined : this.expectations.copyFor(now, lane.host, now + time, this.attempts.claims);
      if (target) this.copy(lane, target);
      else {
        this.slots.spare(lane);
      }
    }
    if (this.respeculateDue) {
      this.respeculateDue = false;
      this.respeculate(now);
    }
    // Renders that run on and on become worth a copy with nothing else changing: look again.
    if (this.slots.spareHosts.size > 0 && this.attempts.openTasks > 0 && this.recheck === undefined) {
      let fastest = Infinity;
      for (const a of this.slots.spareHosts) fastest = Math.min(fastest, a.time ?? Infinity);
      this.lookAgainIn(Math.max(MIN_RECHECK_MS, Number.isFinite(fastest) ? fastest / 2 : SPARE_RECHECK_MS));
    }
  }

  /**
   * Spare slots, fastest hosts first, each given a copy while one is worth
   * it: once the fastest spare host has nothing worth copying, the slower
   * ones have nothing either.
   */
  private respeculate(now: number): void {
    const hosts = [...this.slots.spareHosts]
      .filter((a) => !a.takenOut && a.time !== undefined)
      .sort((x, y) => x.time! - y.time!);
    for (const a of this.slots.spareHosts) if (a.takenOut) this.slots.spareHosts.delete(a);
    for (const a of hosts) {
      let lane: Lane | undefined;
      while ((lane = a.spare.at(-1))) {
        if (lane.listed !== 'spare' || lane.sent !== 0) {
          a.spare.pop();
          continue;
        }
        const target = this.expectations.copyFor(now, a, now + a.time!, this.attempts.claims);
        if (!target) return;
        a.spare.pop();
        lane.listed = null;
        this.copy(lane, target);
      }
      this.slots.spareHosts.delete(a);
    }
  }

  /** A copy of `target.against`'s task on `lane`; the attempt it replaces (see Expectations.copyFor) is stopped. */
  private copy(lane: Lane, target: CopyDecision): void {
    const att = this.attempts.send(lane, target.against.rec, target.against);
    const old = target.replace;
    if (!old) return;
    if (this.observed) {
      this.event({
        type: 'speculation-lost',
        at: this.options.now(),
        task: refOf(old.rec.task),
        attempt: old.number,
        host: old.host.host.name,
        winner: { host: att.host.host.name, attempt: att.number },
        replaced: true,
      });
    }
    old.controller.abort();
  }

  private checkFinished(): void {
    if (this.isFinished) return;
    if (this.queue.length > 0 && this.usable.size === 0 && this.pendingHosts <= 0 && this.attempts.running === 0) {
      const why = this.states.everReady
        ? 'no host is left to run it (every host was lost or taken out)'
        : 'no host was usable';
      for (const r of this.queue.drain()) {
        r.error = r.error ? `${r.error}; then ${why}` : why;
        this.attempts.settle(r, 'failed');
      }
    }
    // Losing copies still being stopped do not hold the run up: drained() waits for them.
    if (this.queue.length === 0 && this.attempts.openTasks === 0) {
      this.isFinished = true;
      clearTimeout(this.recheck);
      for (const a of this.byName.values()) this.stall.stop(a);
      if (this.observed) {
        const count = (st: TaskStatus): number => this.records.filter((r) => r.status === st).length;
        this.event({
          type: 'run-end',
          at: this.options.now(),
          done: count('done'),
          failed: count('failed'),
          cancelled: count('cancelled'),
          skipped: count('skipped'),
        });
      }
      this.resolveFinished();
    }
  }

  /** A task back at the front of the queue; slots that had nothing they could take look again. */
  private requeue(rec: TaskRecord): void {
    this.queue.putBack(rec);
    this.unbarDue = true;
    this.releaseSpareDue = true;
  }
}
