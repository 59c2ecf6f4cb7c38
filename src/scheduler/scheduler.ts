/**
 * The scheduler: one dispatcher for every host slot, Playwright's runner
 * dispatcher the model. Handlers (addHost, removeHost, an attempt's start,
 * its slot freed, its end, a timer) record what happened and note what it
 * may change; one synchronous pass (schedule -> pass) takes every decision:
 * which task runs where, which slot queues, yields or copies, when a host is
 * taken out, when the run ends. Attempts are async; decisions are not, so a
 * fake farm and the simulation (bench/sim.ts) replay exactly.
 *
 * Files: types.ts (the public types), events.ts (the frozen events),
 * hostStates.ts (a host's state machine), farm.ts (hosts, lanes, attempts as
 * the scheduler keeps them), queue.ts (the task queue), slots.ts (the lists
 * slots wait on), pace.ts (pace estimates, take/queue decisions),
 * speculation.ts (copy decisions), chunking.ts (chunk records), and this
 * file (handlers and the pass). Tuning constants: src/tuning.ts.
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
import { attemptFacts, refOf, type SchedulerEvent } from './events.js';
import {
  Attempt,
  clearStreak,
  newActiveHost,
  type ActiveHost,
  type AttemptOwner,
  type Lane,
  type QueueYieldEntry,
  type TaskRun,
  type Timer,
} from './farm.js';
import { NONE, TaskQueue } from './queue.js';
import { carvePart, splitRecords } from './chunking.js';
import { SlotLists } from './slots.js';
import { FarmPace, queueFactor, queuesBehind, takesFree, type Pace } from './pace.js';
import { Expectations, type CopyDecision } from './speculation.js';
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

function internalError(err: unknown): AttemptOutcome {
  return { kind: 'failed', message: `internal error: ${err instanceof Error ? err.message : String(err)}` };
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
  /** The attempt moving a task's outputs into place, while it does (see AttemptSlot.claim). */
  private readonly claims = new Map<TaskRecord, Attempt>();
  /** Attempts not yet ended, and tasks with at least one of them (not yet settled: see TaskRun.open). */
  private running = 0;
  private openTasks = 0;
  private readonly abort = new AbortController();
  /** Each task with attempts that have not ended: more than one while a speculative copy races the original. */
  private readonly live = new Map<TaskRecord, TaskRun>();
  /** Entries made in `live` so far. */
  private runs = 0;
  /** Attempts whose run has not returned (outputs in, or not), and who waits for there to be none. */
  private unreturned = 0;
  private readonly whenReturned: Array<() => void> = [];
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
  /** Renders started so far (see oldestOf). */
  private renders = 0;

  /** Running attempts by when they are expected to end: kept only with speculation, while the queue is empty. */
  private readonly expectations = new Expectations();
  /** Tasks of a lost host, to be copied to the next free slots while the host may still come back. */
  private readonly lostHostTasks: TaskRecord[] = [];
  /** With --chunk: see Chunks. */
  private readonly chunks: Chunks | undefined;
  /** Failed tasks put back by retry(): the attempts they had used by then, which no longer count against --retries. */
  private readonly retried = new Map<TaskRecord, number>();

  /** What an attempt's AttemptSlot calls reach. */
  private readonly owner: AttemptOwner = {
    started: (att) => this.onStarted(att),
    released: (att) => this.onReleased(att),
    claim: (att) => this.claim(att),
    unclaim: (att) => this.unclaim(att),
  };

  constructor(
    records: TaskRecord[],
    private readonly options: SchedulerOptions,
  ) {
    super();
    this.records = records;
    this.states = new HostStates(options.onRefusedMove);
    this.chunks = options.chunks;
    this.queue = new TaskQueue(this.chunks, this.usable, this.states);
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
    const a = newActiveHost(host, record, () => this.stallCheck(a));
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
    const atts = [...this.live.values()].flatMap((run) => run.atts);
    for (const att of atts) if (!att.rendering) att.controller.abort(RUN_STOPPED);
    for (const att of atts) if (att.rendering) att.controller.abort(RUN_STOPPED);
    for (const r of this.queue.drain()) this.settle(r, 'cancelled');
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
    this.retried.set(rec, rec.attempts);
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
    while (this.unreturned > 0) await new Promise<void>((resolve) => this.whenReturned.push(resolve));
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
    this.armStall(a, undefined);
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
      if (this.speculating && this.openTasks > 0) {
        // The heaps are filled from here on: until the queue is empty no copy is made, and they would only grow.
        if (!this.expectations.active) this.expectations.begin(this.live.values());
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
        // It does not queue whatever its estimate until its render is no longer overdue (watchStall puts it back).
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
    this.send(lane, this.chunks ? this.takeChunk(found, a) : this.queue.take(found));
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
   * A chunk that produced some of its frames (see splitRecords): its parts
   * done are settled done, won by this attempt; its parts not done go back
   * to the front of the queue as chunks of their own (or are cancelled with
   * a stopped run).
   */
  private splitChunk(att: Attempt, outcome: Extract<AttemptOutcome, { kind: 'failed' | 'cancelled' }>): void {
    const { rec, host: a } = att;
    const host = a.host.name;
    const now = this.options.now();
    const from = rec.task;
    let next = this.records.length;
    const parts = this.chunks!.split(from, new Set(outcome.done), () => next++);
    const records = splitRecords(rec, parts, { host, attempt: att.number, start: att.start, now }, outcome);
    for (const r of records) if (r !== rec) this.records.push(r);
    // A chunk stopped with the run did not fail: its host is not blamed.
    if (outcome.kind === 'failed') a.record.failures++;
    if (this.observed) {
      this.event({
        type: 'chunk-split',
        at: now,
        task: refOf(from),
        attempt: att.number,
        host,
        parts: parts.map((p) => ({ ...refOf(p.task), done: p.done })),
      });
    }
    const again: TaskRecord[] = [];
    let told = false;
    records.forEach((r, i) => {
      const run = r === rec ? att.run : undefined;
      if (parts[i]!.done) {
        a.record.tasksDone++;
        this.settle(r, 'done', run);
        this.emit('task-end', r, a.record, { kind: 'done' });
        return;
      }
      if (this.abort.signal.aborted) this.settle(r, 'cancelled', run);
      else {
        r.status = 'pending';
        this.close(r, run);
        again.push(r);
      }
      // Said once, of the first part left: the message names every frame done and left.
      if (!told) this.emit('task-end', r, a.record, outcome);
      told = true;
    });
    // The front of the queue is taken last-in first: the chunk's first run goes first.
    for (const r of again.reverse()) this.requeue(r);
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
      const atts = this.live.get(rec)?.atts;
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
      this.send(lane, rec, atts[0]);
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
        time === undefined ? undefined : this.expectations.copyFor(now, lane.host, now + time, this.claims);
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
    if (this.slots.spareHosts.size > 0 && this.openTasks > 0 && this.recheck === undefined) {
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
        const target = this.expectations.copyFor(now, a, now + a.time!, this.claims);
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
    const att = this.send(lane, target.against.rec, target.against);
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

  /** Brings `a`'s task time and the farm's pace up to date (see FarmPace.watch), and times the next look at it. */
  private watchStall(a: ActiveHost): void {
    const wasOverdue = a.overdue;
    this.armStall(a, this.pace.watch(a, this.options.now()));
    // No longer overdue, it may queue again: it goes back among the queue-yielding hosts by its estimate.
    if (wasOverdue && !a.overdue && this.slots.queueYieldingHosts.has(a) && !a.queueYieldEntry)
      this.slots.enterQueueYielding(a);
  }

  /** Has watchStall look at `a` again at `due` (or never). */
  private armStall(a: ActiveHost, due: number | undefined): void {
    a.stallDue = due;
    if (a.stallTimer !== undefined && due !== undefined && a.stallArmed <= due) return;
    clearTimeout(a.stallTimer);
    a.stallTimer = undefined;
    if (due === undefined) return;
    a.stallArmed = due;
    a.stallTimer = setTimeout(a.onStall, due - this.options.now());
  }

  private stallCheck(a: ActiveHost): void {
    a.stallTimer = undefined;
    const due = a.stallDue;
    if (due === undefined) return;
    // Armed for a check that has since moved later: wait for that.
    if (this.options.now() < due) return this.armStall(a, due);
    this.watchStall(a);
    this.yieldLookDue = true;
    this.schedule();
  }

  private checkFinished(): void {
    if (this.isFinished) return;
    if (this.queue.length > 0 && this.usable.size === 0 && this.pendingHosts <= 0 && this.running === 0) {
      const why = this.states.everReady
        ? 'no host is left to run it (every host was lost or taken out)'
        : 'no host was usable';
      for (const r of this.queue.drain()) {
        r.error = r.error ? `${r.error}; then ${why}` : why;
        this.settle(r, 'failed');
      }
    }
    // Losing copies still being stopped do not hold the run up: drained() waits for them.
    if (this.queue.length === 0 && this.openTasks === 0) {
      this.isFinished = true;
      clearTimeout(this.recheck);
      for (const a of this.byName.values()) this.armStall(a, undefined);
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

  /** Sends `rec` to `lane` (behind its running attempt when the lane is busy); `against` makes it a speculative copy. */
  private send(lane: Lane, rec: TaskRecord, against?: Attempt): Attempt {
    const a = lane.host;
    const behind = lane.sent > 0;
    lane.sent++;
    this.running++;
    let run = this.live.get(rec);
    if (!run) {
      run = { atts: [], open: false, seq: this.runs++ };
      this.live.set(rec, run);
    }
    if (!run.open) {
      run.open = true;
      this.openTasks++;
    }
    const att = new Attempt(this.owner, run, rec, a, lane, ++rec.copies, against !== undefined, this.options.now());
    run.atts.push(att);
    att.onHost = a.live.push(att) - 1;
    rec.status = 'running';
    rec.host = a.host.name;
    rec.startedAt = att.start;
    rec.endedAt = null;
    if (this.observed) {
      const task = refOf(rec.task);
      this.event({
        type: 'attempt-queued',
        at: att.start,
        task,
        attempt: att.number,
        host: a.host.name,
        lane: lane.index,
        behind,
        speculative: att.speculative,
      });
      if (against) {
        const reason = against.host.takenOut ? 'lost' : 'slow';
        this.event({
          type: 'speculation-started',
          at: att.start,
          task,
          attempt: att.number,
          host: a.host.name,
          against: { host: against.host.host.name, attempt: against.number },
          reason,
        });
      }
    }
    this.expectations.enter(att);
    this.unreturned++;
    this.run(att);
    this.slots.list(lane);
    return att;
  }

  /** AttemptSlot.started: the attempt's renderer has started on its host. */
  private onStarted(att: Attempt): void {
    if (att.rendering || att.ended) return;
    const { rec, place: lane, host: a } = att;
    // A queued attempt's time counts from when its renderer started.
    att.start = this.options.now();
    att.rendering = true;
    rec.startedAt = att.start;
    // A lane renders one task at a time: its previous one has ended, though its attempt may not have returned yet.
    att.renderSeq = ++this.renders;
    lane.rendering = att;
    this.watchStall(a);
    this.expectations.enter(att);
    if (this.observed)
      this.event({
        type: 'attempt-started',
        at: att.start,
        task: refOf(rec.task),
        attempt: att.number,
        host: a.host.name,
        lane: lane.index,
      });
  }

  /** AttemptSlot.claim. */
  private claim(att: Attempt): boolean {
    const { rec } = att;
    const claimant = this.claims.get(rec);
    // A task settled failed or cancelled while a replaced attempt was still being stopped keeps what it was reported.
    if (
      rec.won !== null ||
      rec.status === 'failed' ||
      rec.status === 'cancelled' ||
      (claimant !== undefined && claimant !== att)
    )
      return false;
    this.claims.set(rec, att);
    return true;
  }

  /** AttemptSlot.unclaim. */
  private unclaim(att: Attempt): void {
    if (this.claims.get(att.rec) === att) this.claims.delete(att.rec);
  }

  /**
   * Runs the attempt on its host. Callbacks rather than an async function:
   * with thousands of attempts in flight, an async frame and its await
   * closures per attempt were much of what each scavenge copied. The steps
   * take the same turns as the awaits did (a host that throws at once is
   * answered at once).
   */
  private run(att: Attempt): void {
    if (this.abort.signal.aborted) att.controller.abort(RUN_STOPPED);
    let running: Promise<AttemptOutcome>;
    try {
      running = att.host.host.run(att.rec.task, att.number, att.controller.signal, att);
    } catch (err) {
      this.onReturn(att, internalError(err));
      return;
    }
    void Promise.resolve(running).then(
      (outcome) => this.onReturn(att, outcome),
      (err: unknown) => this.onReturn(att, internalError(err)),
    );
  }

  /** AttemptSlot.released: the renderer ended well; the slot is free, and the attempt ends once its outputs are in. */
  private onReleased(att: Attempt): void {
    if (att.freed || att.ended) return;
    this.freeSlot(att, true);
    // The slot is free now; the attempt still counts as running until its outputs are in.
    const { rec, host: a } = att;
    if (this.observed) {
      const at = this.options.now();
      this.event({
        type: 'attempt-ended',
        at,
        task: refOf(rec.task),
        attempt: att.number,
        host: a.host.name,
        outcome: 'released',
        ignored: rec.won !== null,
        attempts: rec.attempts,
        settled: null,
        ...attemptFacts({ kind: 'done' }, (at - att.start) / 1000),
      });
    }
    this.schedule();
  }

  /** The host's run() has settled: the slot is free (if released() did not free it already), and the attempt ends. */
  private onReturn(att: Attempt, outcome: AttemptOutcome): void {
    try {
      if (!att.freed) this.freeSlot(att, outcome.kind === 'done');
      this.end(att, outcome);
    } finally {
      this.returned();
    }
  }

  private returned(): void {
    if (--this.unreturned === 0) for (const resolve of this.whenReturned.splice(0)) resolve();
  }

  private freeSlot(att: Attempt, succeeded: boolean): void {
    const { place: lane, host: a } = att;
    att.freed = true;
    if (lane.rendering === att) lane.rendering = undefined;
    lane.sent--;
    if (att.rendering && succeeded) {
      const ms = this.options.now() - att.start;
      const estimate = this.pace.timed(a, ms);
      this.chunks?.timed(att.rec.task, a.host.name, ms);
      if (estimate < this.slots.yieldLeast && this.slots.yieldingHosts.has(a)) this.slots.yieldLeast = estimate;
    }
    this.watchStall(a);
    this.slots.list(lane);
    if (this.slots.queueYieldingHosts.has(a)) this.repaced.add(a);
  }

  private end(att: Attempt, outcome: AttemptOutcome): void {
    const { rec, host: a } = att;
    att.ended = true;
    const last = a.live.pop()!;
    if (last !== att) {
      a.live[att.onHost] = last;
      last.onHost = att.onHost;
    }
    if (this.claims.get(rec) === att) this.claims.delete(rec);
    this.running--;
    const atts = att.run.atts;
    atts.splice(atts.indexOf(att), 1);
    if (atts.length === 0) this.live.delete(rec);
    // Attempts being stopped to make room for a faster copy end ignored: the task goes on only with the others (all of them
    // once the run is stopped), and with the one moving its outputs into place (it may yet be done).
    let others = atts.length;
    if (!this.abort.signal.aborted)
      for (const x of atts) if (x.controller.signal.aborted && this.claims.get(rec) !== x) others--;
    // Once a copy has won, the others' outcomes change nothing (a losing copy is being stopped).
    // A copy stopped to make room for a faster one (see Expectations.copyFor) is a losing copy too, unless its result came in complete first.
    const replaced = outcome.kind !== 'done' && att.controller.signal.aborted && !this.abort.signal.aborted;
    const ignored = rec.won !== null || (rec.status !== 'running' && rec.status !== 'pending') || replaced;
    const at = this.options.now();
    // The task as this attempt ran it: a chunk split by its outcome is its first part afterwards.
    const task = rec.task;
    let partial = false;
    const ended = (): SchedulerEvent => {
      const message = outcome.kind === 'failed' || outcome.kind === 'lost' ? outcome.message : undefined;
      const settled =
        !ignored && !partial && (rec.status === 'done' || rec.status === 'failed' || rec.status === 'cancelled')
          ? rec.status
          : null;
      return {
        type: 'attempt-ended',
        at,
        task: refOf(task),
        attempt: att.number,
        host: a.host.name,
        outcome: outcome.kind,
        message,
        ignored,
        attempts: rec.attempts,
        settled,
        ...attemptFacts(outcome, (at - att.start) / 1000),
      };
    };
    if (ignored) {
      // Lost with its host all the same (a copy elsewhere won meanwhile): the report counts it on the task and the host.
      if (outcome.kind === 'lost') rec.lost++;
      if (this.observed) this.event(ended());
      if (outcome.kind === 'done') clearStreak(a);
      // A replaced attempt that had claimed the outputs, and failed to move them, was the task's last: it goes back to the queue.
      if (replaced && others === 0 && rec.status === 'running' && rec.won === null) {
        rec.status = 'pending';
        this.close(rec, att.run);
        this.requeue(rec);
      }
      this.schedule();
      return;
    }
    rec.endedAt = at;
    rec.seconds += (rec.endedAt - att.start) / 1000;
    // A chunk that failed with frames done is split (see splitChunk): it goes on as its parts, none of them final by this attempt.
    // So is one stopped with the run after some of its frames were complete: those are kept, the rest cancelled.
    partial =
      (outcome.kind === 'failed' || outcome.kind === 'cancelled') &&
      outcome.done !== undefined &&
      outcome.done.length > 0 &&
      this.chunks !== undefined &&
      others === 0;
    const outer = this.buffered;
    const buffer = (this.buffered ??= []);
    const mark = buffer.length;
    try {
      if (partial && (outcome.kind === 'failed' || outcome.kind === 'cancelled')) this.splitChunk(att, outcome);
      else this.applyOutcome(att, outcome, others);
    } finally {
      if (!outer) this.buffered = null;
      try {
        if (this.observed) buffer.splice(mark, 0, Object.freeze(ended()));
      } finally {
        if (!outer) for (const e of buffer) this.emit('event', e);
      }
    }
    if (!partial) this.emit('task-end', rec, a.record, outcome);
    this.schedule();
  }

  private applyOutcome(att: Attempt, outcome: AttemptOutcome, others: number): void {
    const { rec, host: a } = att;
    switch (outcome.kind) {
      case 'done':
        rec.host = a.host.name;
        rec.startedAt = att.start;
        rec.attempts++;
        rec.error = undefined;
        rec.failure = undefined;
        rec.won = Object.freeze({ host: a.host.name, attempt: att.number });
        a.record.tasksDone++;
        clearStreak(a);
        for (const loser of att.run.atts) {
          // One replaced by a faster copy was told so (speculation-lost replaced) and is being stopped already.
          if (loser.controller.signal.aborted && !this.abort.signal.aborted) continue;
          if (this.observed)
            this.event({
              type: 'speculation-lost',
              at: this.options.now(),
              task: refOf(rec.task),
              attempt: loser.number,
              host: loser.host.host.name,
              winner: rec.won,
            });
          loser.controller.abort();
        }
        this.settle(rec, 'done', att.run);
        return;
      case 'cancelled':
        if (others === 0) this.settle(rec, 'cancelled', att.run);
        return;
      case 'lost':
        rec.error = outcome.message;
        rec.lost++;
        if (others === 0) {
          if (this.abort.signal.aborted) this.settle(rec, 'cancelled', att.run);
          else {
            rec.status = 'pending';
            this.close(rec, att.run);
            this.requeue(rec);
          }
        }
        if (!a.takenOut) this.takeOut(a, 'lost', outcome.message);
        return;
      case 'failed':
        rec.attempts++;
        rec.error = outcome.message;
        rec.log = outcome.log;
        rec.failure = outcome.failure;
        rec.failedOn = new Set([...rec.failedOn, a.host.name]);
        a.record.failures++;
        a.streak.add(rec.task.index);
        if (others > 0) {
          // Another copy still runs: the task goes on there.
        } else if (this.abort.signal.aborted) {
          this.settle(rec, 'cancelled', att.run);
        } else if (rec.attempts - Math.max(rec.partial ?? 0, this.retried.get(rec) ?? 0) > this.options.retries) {
          this.settle(rec, 'failed', att.run);
        } else {
          rec.status = 'pending';
          this.close(rec, att.run);
          this.requeue(rec);
        }
        this.failedHosts.push({ a, message: outcome.message });
        return;
    }
  }

  /** The task is settled or back in the queue: the run no longer waits for it. */
  private close(rec: TaskRecord, run = this.live.get(rec)): void {
    if (run?.open) {
      run.open = false;
      this.openTasks--;
    }
  }

  /** `run`: the task's live attempts, when settled by one of them (its entry may have left `live` already). */
  private settle(rec: TaskRecord, status: 'done' | 'failed' | 'cancelled', run?: TaskRun): void {
    rec.status = status;
    this.close(rec, run);
    if (this.observed) {
      this.event({
        type: 'task-done',
        at: this.options.now(),
        task: refOf(rec.task),
        status,
        host: rec.host,
        attempts: rec.attempts,
        winner: rec.won,
        copies: rec.copies,
        error: status === 'done' ? undefined : rec.error,
      });
    }
  }

  /** A task back at the front of the queue; slots that had nothing they could take look again. */
  private requeue(rec: TaskRecord): void {
    this.queue.putBack(rec);
    this.unbarDue = true;
    this.releaseSpareDue = true;
  }
}
