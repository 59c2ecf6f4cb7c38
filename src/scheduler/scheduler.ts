import { EventEmitter } from 'node:events';
import type { Task } from '../plan/plan.js';
import { Fifo } from './fifo.js';

export type AttemptOutcome =
  | { kind: 'done' }
  /** The renderer or a copy failed: uses up one attempt. */
  | { kind: 'failed'; message: string; log?: string | undefined }
  /** The host went away: the task goes back to the front without using an attempt. */
  | { kind: 'lost'; message: string }
  | { kind: 'cancelled' }
  /**
   * The renderer has ended and the host's slot is free; collecting the
   * outputs goes on, and `outcome` says how the attempt ends. The host takes
   * its next task meanwhile, so downloads overlap the next render.
   */
  | { kind: 'released'; outcome: Promise<Exclude<AttemptOutcome, { kind: 'released' }>> };

export type FinalOutcome = Exclude<AttemptOutcome, { kind: 'released' }>;

/** Where an attempt runs on its host, and how it says it has started. */
export interface AttemptSlot {
  /** The slot (0..slots-1): a host runs one attempt at a time per slot, in the order they were given. */
  lane: number;
  /** Called when the renderer actually starts (a queued attempt waits for the one before it). */
  started(): void;
}

export interface SchedulerHost {
  readonly name: string;
  readonly slots: number;
  /**
   * True if the host can be given a slot's next attempt while the current
   * one runs (it queues it, and starts it the moment the slot is free).
   */
  readonly queues?: boolean;
  /** Whether this task may wait in a queue on the host (a very long command line may not). */
  canQueue?(task: Task): boolean;
  run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome>;
}

export type TaskStatus = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'cancelled';

export interface TaskRecord {
  readonly task: Task;
  status: TaskStatus;
  /** Attempts that ran to an outcome on a host (a lost host's attempt is not counted). */
  attempts: number;
  host: string | null;
  seconds: number;
  /** `now()` when the last attempt started and when it ended (outputs in), or null. */
  startedAt: number | null;
  endedAt: number | null;
  error?: string | undefined;
  log?: string | undefined;
  /** Hosts this task has failed on: a retry goes elsewhere while another host can take it. */
  readonly failedOn: Set<string>;
}

/**
 * 'connecting', 'ok', 'lost', 'blocked', 'done', or why a host never became
 * usable ('unreachable', 'auth failed', 'host key mismatch', ...).
 */
export type HostState = string;

export interface HostRecord {
  name: string;
  state: HostState;
  tasksDone: number;
  failures: number;
  message?: string | undefined;
  /** Its attempts: sent to the host, waiting in a lane or rendering, until the slot is free again. */
  running: Set<TaskRecord>;
  /** Those of them whose renderer has started and not yet ended. */
  rendering: Set<TaskRecord>;
  /** Those of them whose renderer has not started yet (waiting in a lane behind another). */
  waiting: Set<TaskRecord>;
}

export interface SchedulerEvents {
  'task-start': [TaskRecord, HostRecord, number];
  /** The attempt's renderer has started on the host (a queued one starts later than its task-start). */
  'task-render': [TaskRecord, HostRecord];
  'task-end': [TaskRecord, HostRecord, FinalOutcome];
  'host-state': [HostRecord];
}

export interface SchedulerOptions {
  retries: number;
  /** A host whose last attempts failed on this many different tasks is taken out of the run. */
  maxConsecutiveFailures: number;
  now(): number;
}

function newHostRecord(name: string, state: HostState): HostRecord {
  return { name, state, tasksDone: 0, failures: 0, running: new Set(), rendering: new Set(), waiting: new Set() };
}

/** See shouldTake: how much longer than needed the queue must be to queue on a host before every pace is known. */
const QUEUE_MARGIN = 4;

/** A render counts as late at this multiple of its host's estimate, and is looked at again each time it has run this much longer. */
const STALL_LATE = 1.25;
const STALL_STEP = 1.5;

/** Weight of the newest attempt in a host's moving average of task time. */
const ESTIMATE_WEIGHT = 0.3;

/** candidate(): the first fresh task (never tried), or none. */
const FRESH = -1;
const NONE = -2;

/** A timer of the scheduler's own (the clock of a simulated farm may replace setTimeout). */
type Timer = ReturnType<typeof setTimeout>;

/**
 * Where a slot of a host stands in the dispatcher's lists: `free` (idle,
 * listed to take a task), `queue` (rendering one, listed to queue the next
 * behind it), `held` (idle, leaving the last tasks to faster hosts), `qheld`
 * (rendering one, not queueing another now), `idle` (no task it may take:
 * every queued one failed here), or nowhere (busy).
 */
type Listing = 'free' | 'queue' | 'held' | 'qheld' | 'idle' | null;

interface Lane {
  readonly host: ActiveHost;
  readonly index: number;
  /** Attempts given to this slot and not yet freed: 0, 1, or 2 (one rendering, one queued behind it). */
  inflight: number;
  listed: Listing;
  /** The attempt rendering in this lane: the next one starting there means it has ended. */
  rendering: TaskRecord | undefined;
}

interface ActiveHost {
  readonly host: SchedulerHost;
  readonly record: HostRecord;
  readonly lanes: Lane[];
  removed: boolean;
  /** Tasks it failed in a row (different ones): at maxConsecutiveFailures it is taken out. */
  readonly streak: Set<number>;
  /** Milliseconds a task takes on this host (a moving average of its successful attempts), once known. */
  estimate: number | undefined;
  /** What it adds to the dispatcher's rateSum now: slots / time, or 0 (untimed or removed). */
  contribution: number;
  /** Its task time now (see watchStall), once known. */
  time: number | undefined;
  /** Its oldest render has run well past its estimate: its pace counts as that render's time so far. */
  overdue: boolean;
  stallTimer: Timer | undefined;
  /** Free slots held back (leaving the last tasks to faster hosts), and slots not queueing now. */
  readonly held: Lane[];
  readonly qheld: Lane[];
}

/**
 * One dispatcher for every host slot (Playwright's runner dispatcher is the
 * model): a queue of tasks, lists of slots that can take one, and one
 * synchronous schedule() that pairs them whenever anything changes. A slot
 * is found without looking at every host, and the farm's pace is kept as a
 * running sum, so a decision costs the same on 10 hosts as on 1,000.
 * Attempts are async; decisions are not.
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  readonly records: TaskRecord[];
  readonly hosts = new Map<string, HostRecord>();
  /** Tasks waiting for a slot: fresh ones in plan order, those put back (retries, lost) at the front. */
  private readonly queue = new Fifo<TaskRecord>();
  private readonly byName = new Map<string, ActiveHost>();
  private readonly usable = new Set<ActiveHost>();
  private everActive = false;
  private pendingHosts = 0;
  private running = 0;
  private readonly abort = new AbortController();
  /** Each running attempt's own controller: cancel aborts them one by one (no listener per attempt on one signal). */
  private readonly live = new Set<AbortController>();
  private readonly attempts = new Set<Promise<void>>();
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((resolve) => (this.resolveFinished = resolve));
  private isFinished = false;

  private readonly free = new Fifo<Lane>();
  private readonly queueable = new Fifo<Lane>();
  private readonly idle: Lane[] = [];
  private readonly heldHosts = new Set<ActiveHost>();
  private readonly qheldHosts = new Set<ActiveHost>();
  /** Σ slots / time over the usable hosts that are timed. */
  private rateSum = 0;
  private untimed = 0;
  private recheck: Timer | undefined;
  private scheduling = false;
  private again = false;
  /** When held slots were last looked at: the queue's drain time then, whether every pace was known; or a change that calls for a look. */
  private heldDrain = 0;
  private heldComplete = false;
  private heldDirty = false;

  constructor(
    records: TaskRecord[],
    private readonly options: SchedulerOptions,
  ) {
    super();
    this.records = records;
    for (const r of records) if (r.status === 'pending') this.queue.push(r);
  }

  static record(task: Task): TaskRecord {
    return { task, status: 'pending', attempts: 0, host: null, seconds: 0, startedAt: null, endedAt: null, failedOn: new Set() };
  }

  /** A host that is still connecting: the run does not give up on tasks while one might come. */
  expectHost(name: string, state: HostState = 'connecting'): void {
    this.pendingHosts++;
    const rec = this.hosts.get(name) ?? newHostRecord(name, state);
    rec.state = state;
    this.hosts.set(name, rec);
    if (state !== 'connecting') this.emit('host-state', rec);
  }

  /** A host being reconnected failed one more try: say why, keep counting on it. */
  hostStillPending(name: string, message: string): void {
    const rec = this.hosts.get(name);
    if (rec) rec.message = message;
  }

  /** True once every task has ended. */
  get done(): boolean {
    return this.isFinished;
  }

  /** A host that never became usable. */
  hostUnavailable(name: string, state: HostState, message: string): void {
    this.pendingHosts--;
    const rec = this.hosts.get(name) ?? newHostRecord(name, state);
    rec.state = state;
    rec.message = message;
    this.hosts.set(name, rec);
    this.emit('host-state', rec);
    // A task kept for a host that will not come may now go back where it failed.
    this.wakeIdle();
    this.schedule();
  }

  /** A host that is ready: its slots start taking tasks. */
  addHost(host: SchedulerHost): void {
    this.pendingHosts--;
    const record = this.hosts.get(host.name) ?? newHostRecord(host.name, 'ok');
    record.state = 'ok';
    record.message = undefined;
    this.hosts.set(host.name, record);
    const a: ActiveHost = {
      host,
      record,
      lanes: [],
      removed: false,
      streak: new Set(),
      estimate: undefined,
      time: undefined,
      contribution: 0,
      overdue: false,
      stallTimer: undefined,
      held: [],
      qheld: [],
    };
    for (let i = 0; i < host.slots; i++) a.lanes.push({ host: a, index: i, inflight: 0, listed: null, rendering: undefined });
    this.byName.set(host.name, a);
    this.usable.add(a);
    this.untimed++;
    this.everActive = true;
    this.emit('host-state', record);
    for (const lane of a.lanes) this.list(lane);
    this.wakeIdle();
    this.schedule();
  }

  /** The host is gone (connection lost): its running attempts report `lost` themselves. */
  removeHost(name: string, state: HostState, message: string): void {
    const a = this.byName.get(name);
    if (a && !a.removed) this.takeOut(a, state, message);
  }

  /** Stops the run: queued tasks are cancelled, running attempts are aborted. */
  cancel(): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    for (const c of [...this.live]) c.abort();
    for (const r of this.queue.drain()) r.status = 'cancelled';
    this.schedule();
  }

  get cancelled(): boolean {
    return this.abort.signal.aborted;
  }

  /** Resolves when every attempt has returned (after finished, renderers included). */
  async drained(): Promise<void> {
    await this.finished;
    while (this.attempts.size > 0) await Promise.all([...this.attempts]);
  }

  private takeOut(a: ActiveHost, state: HostState, message: string): void {
    a.removed = true;
    this.usable.delete(a);
    if (a.estimate === undefined) this.untimed--;
    this.rateSum -= a.contribution;
    a.contribution = 0;
    a.time = undefined;
    this.heldHosts.delete(a);
    this.qheldHosts.delete(a);
    clearTimeout(a.stallTimer);
    if (this.byName.get(a.host.name) === a) this.byName.delete(a.host.name);
    a.record.state = state;
    a.record.message = message;
    this.emit('host-state', a.record);
    // A task that failed everywhere else may now go back to a host where it failed.
    this.wakeIdle();
    this.schedule();
  }

  /** Puts a slot on the list its state calls for (a removed host's slots go nowhere). */
  private list(lane: Lane): void {
    const a = lane.host;
    if (a.removed || lane.listed === 'held' || lane.listed === 'idle') return;
    if (lane.inflight === 0 && lane.listed !== 'free') {
      lane.listed = 'free';
      this.free.push(lane);
    } else if (lane.inflight === 1 && a.host.queues && lane.listed !== 'queue' && lane.listed !== 'qheld') {
      lane.listed = 'queue';
      this.queueable.push(lane);
    }
  }

  private wakeIdle(): void {
    this.heldDirty = true;
    for (const lane of this.idle.splice(0)) {
      lane.listed = null;
      this.list(lane);
    }
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

  private pass(): void {
    if (this.isFinished || this.abort.signal.aborted || this.queue.length === 0) return;
    const pace = new Pace(this);
    // Hosts that left the last tasks to faster ones, and slots that did not queue: looked at again when
    // the queue would now take longer to drain (a host lost or stalled, a task back), not on every change.
    const drain = pace.rate > 0 ? this.queue.length / pace.rate : Infinity;
    const recheck = this.heldDirty || drain > this.heldDrain * 1.05 || pace.complete !== this.heldComplete;
    this.heldDirty = false;
    if (recheck) {
      this.heldDrain = drain;
      this.heldComplete = pace.complete;
    }
    if (recheck) this.recheckHeld(pace);
    let lane: Lane | undefined;
    while (this.queue.length > 0 && (lane = this.free.shift())) {
      if (lane.listed !== 'free') continue;
      lane.listed = null;
      if (lane.host.removed || lane.inflight !== 0) continue;
      this.offer(lane, false, pace);
    }
    for (let n = this.queueable.length; n > 0 && this.queue.length > 0; n--) {
      lane = this.queueable.shift();
      if (!lane || lane.listed !== 'queue') continue;
      lane.listed = null;
      if (lane.host.removed || lane.inflight !== 1) continue;
      this.offer(lane, true, pace);
    }
    if (this.heldHosts.size > 0 && this.queue.length > 0 && this.recheck === undefined) {
      // A render that stalls makes its host's pace worse by the minute, with nothing else changing: look again.
      let wait = Infinity;
      for (const a of this.heldHosts) wait = Math.min(wait, a.estimate ?? 0);
      this.recheck = setTimeout(() => {
        this.recheck = undefined;
        this.heldDirty = true;
        this.schedule();
      }, Math.max(100, wait));
    }
  }

  private recheckHeld(pace: Pace): void {
    for (const a of this.heldHosts) {
      if (this.queue.length === 0) break;
      const next = this.candidate(a, false);
      if (next === NONE || (this.at(next).failedOn.size === 0 && !this.shouldTakeFree(a, pace))) continue;
      this.release(a, 'held');
    }
    for (const a of this.qheldHosts) if (this.shouldQueue(a, pace)) this.release(a, 'qheld');
  }

  private release(a: ActiveHost, how: 'held' | 'qheld'): void {
    (how === 'held' ? this.heldHosts : this.qheldHosts).delete(a);
    for (const lane of a[how].splice(0)) {
      if (lane.listed !== how) continue;
      lane.listed = null;
      this.list(lane);
    }
  }

  /** Gives `lane` the next task it may take, or lists it where it waits. */
  private offer(lane: Lane, queued: boolean, pace: Pace): void {
    const a = lane.host;
    const found = this.candidate(a, queued);
    if (found === NONE) {
      if (queued) this.hold(lane, 'qheld');
      else {
        lane.listed = 'idle';
        this.idle.push(lane);
      }
      return;
    }
    // A task that failed somewhere is not left to faster hosts: they may be where it failed.
    if (queued ? !this.shouldQueue(a, pace) : this.at(found).failedOn.size === 0 && !this.shouldTakeFree(a, pace)) {
      this.hold(lane, queued ? 'qheld' : 'held');
      return;
    }
    this.start(lane, this.takeAt(found));
  }

  private hold(lane: Lane, how: 'held' | 'qheld'): void {
    lane.listed = how;
    const a = lane.host;
    if (how === 'held') {
      a.held.push(lane);
      this.heldHosts.add(a);
    } else {
      a.qheld.push(lane);
      this.qheldHosts.add(a);
    }
  }

  /**
   * The first queued task `a` may take. A task goes back to a host it failed
   * on only when no other host can take it, now or once the hosts still
   * connecting are up. Tasks never tried are all alike here: only the first
   * of them is looked at.
   */
  private candidate(a: ActiveHost, queued: boolean): number {
    const front = this.queue.front;
    for (let i = front.length - 1; i >= 0; i--) if (this.may(front[i]!, a, queued)) return i;
    const rec = this.queue.peekPushed();
    return rec && this.may(rec, a, queued) ? FRESH : NONE;
  }

  private at(i: number): TaskRecord {
    return i === FRESH ? this.queue.peekPushed()! : this.queue.front[i]!;
  }

  private takeAt(i: number): TaskRecord {
    return i === FRESH ? this.queue.shiftPushed()! : this.queue.front.splice(i, 1)[0]!;
  }

  private may(r: TaskRecord, a: ActiveHost, queued: boolean): boolean {
    return this.mayRunOn(r, a) && (!queued || (a.host.canQueue?.(r.task) ?? true));
  }

  private mayRunOn(r: TaskRecord, a: ActiveHost): boolean {
    if (!r.failedOn.has(a.host.name)) return true;
    if (this.pendingHosts > 0 || r.failedOn.size < this.usable.size) return false;
    for (const u of this.usable) if (!r.failedOn.has(u.host.name)) return false;
    return true;
  }

  /**
   * Whether an idle slot of `a` takes the next task now. Pull scheduling with
   * a look ahead: near the end a slow host leaves a task to faster ones that
   * would finish it sooner (the rest of the queue drains before it could).
   */
  private shouldTakeFree(a: ActiveHost, pace: Pace): boolean {
    if (a.estimate === undefined || pace.rate === 0 || !pace.complete) return true;
    const drain = this.queue.length / pace.rate;
    return a.estimate <= drain || a.estimate <= drain + pace.fastest();
  }

  /**
   * Whether a busy slot of `a` queues a second task behind its running one:
   * only while the queue is long enough that the wait cannot delay the end
   * of the run. Until every host's pace is known (hosts still connecting, or
   * not yet through a task), the queue counts as long only at QUEUE_MARGIN
   * times what is needed by the hosts timed so far: the others only make it
   * drain sooner. Never behind a render that has stalled.
   */
  private shouldQueue(a: ActiveHost, pace: Pace): boolean {
    if (!a.host.queues || a.overdue || a.estimate === undefined || pace.rate === 0) return false;
    const drain = this.queue.length / pace.rate;
    return (pace.complete ? 2 : 2 * QUEUE_MARGIN) * a.estimate < drain;
  }

  /** For Pace: the farm's rate (kept as a running sum) and whether every host's pace is known. */
  paceOf(): { rate: number; complete: boolean } {
    return { rate: this.rateSum, complete: this.pendingHosts <= 0 && this.untimed === 0 };
  }

  /** The fastest usable host's task time: looked at only near the end of a run, when a slow host might leave a task. */
  fastestTime(): number {
    let t = Infinity;
    for (const a of this.usable) if (a.time !== undefined && a.time < t) t = a.time;
    return t;
  }

  /**
   * Keeps `a.time`, the host's task time as far as we can tell: its moving
   * average, or how long its oldest rendering attempt has taken so far if
   * that is longer (a host whose renders hang is not counted on to finish
   * the queue). A render's time so far grows by itself: a timer updates it
   * when the render is a quarter late, then each time it has run half as
   * long again, so the farm's pace stays a sum kept up to date in O(1).
   */
  private watchStall(a: ActiveHost): void {
    clearTimeout(a.stallTimer);
    a.stallTimer = undefined;
    const est = a.estimate;
    let time = est;
    const oldest = oldestOf(a.record.rendering);
    if (!a.removed && est !== undefined && oldest?.startedAt != null) {
      const elapsed = this.options.now() - oldest.startedAt;
      const late = elapsed > est * STALL_LATE;
      if (late) time = elapsed;
      const next = late ? elapsed * STALL_STEP : est * STALL_LATE;
      a.stallTimer = setTimeout(
        () => {
          a.stallTimer = undefined;
          this.watchStall(a);
          this.heldDirty = true;
          this.schedule();
        },
        next - elapsed + 1,
      );
    }
    a.time = time;
    a.overdue = time !== est;
    const c = a.removed || time === undefined ? 0 : a.host.slots / time;
    this.rateSum += c - a.contribution;
    a.contribution = c;
  }

  private checkFinished(): void {
    if (this.isFinished) return;
    if (this.queue.length > 0 && this.usable.size === 0 && this.pendingHosts <= 0 && this.running === 0) {
      const why = this.everActive ? 'no host is left to run it (every host was lost or taken out)' : 'no host was usable';
      for (const r of this.queue.drain()) {
        r.status = 'failed';
        r.error = r.error ? `${r.error}; then ${why}` : why;
      }
    }
    if (this.queue.length === 0 && this.running === 0) {
      this.isFinished = true;
      clearTimeout(this.recheck);
      for (const a of this.byName.values()) clearTimeout(a.stallTimer);
      this.resolveFinished();
    }
  }

  /** Sends `rec` to `lane` (behind its running attempt when the lane is busy). */
  private start(lane: Lane, rec: TaskRecord): void {
    const a = lane.host;
    lane.inflight++;
    this.running++;
    rec.status = 'running';
    rec.host = a.host.name;
    a.record.running.add(rec);
    a.record.waiting.add(rec);
    rec.startedAt = this.options.now();
    rec.endedAt = null;
    this.emit('task-start', rec, a.record, rec.attempts + 1);
    const p: Promise<void> = this.attempt(lane, rec).finally(() => this.attempts.delete(p));
    this.attempts.add(p);
    this.list(lane);
  }

  private async attempt(lane: Lane, rec: TaskRecord): Promise<void> {
    const a = lane.host;
    const attempt = rec.attempts + 1;
    let started = rec.startedAt ?? this.options.now();
    const internal = (err: unknown): FinalOutcome => ({ kind: 'failed', message: `internal error: ${err instanceof Error ? err.message : String(err)}` });
    let rendered = false;
    const slot: AttemptSlot = {
      lane: lane.index,
      started: () => {
        // A queued attempt's time counts from when its renderer started.
        started = this.options.now();
        rec.startedAt = started;
        rendered = true;
        // A lane renders one task at a time: its previous one has ended, though its attempt may not have returned yet.
        if (lane.rendering) a.record.rendering.delete(lane.rendering);
        lane.rendering = rec;
        a.record.waiting.delete(rec);
        a.record.rendering.add(rec);
        this.watchStall(a);
        this.emit('task-render', rec, a.record);
      },
    };
    const controller = new AbortController();
    this.live.add(controller);
    if (this.abort.signal.aborted) controller.abort();
    let outcome: AttemptOutcome;
    try {
      outcome = await a.host.run(rec.task, attempt, controller.signal, slot);
    } catch (err) {
      outcome = internal(err);
    }
    a.record.running.delete(rec);
    a.record.waiting.delete(rec);
    a.record.rendering.delete(rec);
    if (lane.rendering === rec) lane.rendering = undefined;
    lane.inflight--;
    if (rendered && (outcome.kind === 'released' || outcome.kind === 'done')) {
      const ms = this.options.now() - started;
      if (a.estimate === undefined && !a.removed) this.untimed--;
      a.estimate = a.estimate === undefined ? ms : a.estimate + ESTIMATE_WEIGHT * (ms - a.estimate);
    }
    this.watchStall(a);
    this.list(lane);
    // Its own pace changed: whether its other slots queue may too (the other hosts wait for a change of the farm's pace).
    if (this.qheldHosts.has(a) && this.shouldQueue(a, new Pace(this))) this.release(a, 'qheld');
    const end = (final: FinalOutcome): void => {
      this.live.delete(controller);
      rec.endedAt = this.options.now();
      rec.seconds += (rec.endedAt - started) / 1000;
      this.running--;
      this.settle(a, rec, final);
      this.emit('task-end', rec, a.record, final);
      this.schedule();
    };
    if (outcome.kind === 'released') {
      // The slot is free now; the attempt still counts as running until its outputs are in.
      const final = outcome.outcome;
      this.schedule();
      end(await final.catch(internal));
      return;
    }
    end(outcome);
  }

  private settle(a: ActiveHost, rec: TaskRecord, outcome: FinalOutcome): void {
    switch (outcome.kind) {
      case 'done':
        rec.status = 'done';
        rec.attempts++;
        rec.error = undefined;
        a.record.tasksDone++;
        a.streak.clear();
        return;
      case 'cancelled':
        rec.status = 'cancelled';
        return;
      case 'lost':
        rec.status = this.abort.signal.aborted ? 'cancelled' : 'pending';
        rec.error = outcome.message;
        if (!this.abort.signal.aborted) this.requeue(rec);
        if (!a.removed) this.takeOut(a, 'lost', outcome.message);
        return;
      case 'failed':
        rec.attempts++;
        rec.error = outcome.message;
        rec.log = outcome.log;
        rec.failedOn.add(a.host.name);
        a.record.failures++;
        a.streak.add(rec.task.index);
        if (this.abort.signal.aborted) {
          rec.status = 'cancelled';
        } else if (rec.attempts > this.options.retries) {
          rec.status = 'failed';
        } else {
          rec.status = 'pending';
          this.requeue(rec);
        }
        if (a.streak.size >= this.options.maxConsecutiveFailures && !a.removed) {
          this.takeOut(a, 'blocked', `taken out of the run after failing ${a.streak.size} different tasks in a row (last: ${outcome.message})`);
        }
        return;
    }
  }

  /** A task back at the front of the queue; slots that had nothing they could take look again. */
  private requeue(rec: TaskRecord): void {
    this.queue.unshift(rec);
    this.wakeIdle();
  }
}

/** The farm's pace for one pass of the dispatcher: computed once, the fastest host only if asked. */
class Pace {
  readonly rate: number;
  readonly complete: boolean;
  private fast: number | undefined;
  constructor(private readonly s: Scheduler) {
    ({ rate: this.rate, complete: this.complete } = s.paceOf());
  }
  fastest(): number {
    return (this.fast ??= this.s.fastestTime());
  }
}

/** The first of a host's rendering attempts: sets keep insertion order, and a render is added when it starts. */
function oldestOf(rendering: Set<TaskRecord>): TaskRecord | undefined {
  for (const r of rendering) return r;
  return undefined;
}
