import { EventEmitter, setMaxListeners } from 'node:events';
import type { Task } from '../plan/plan.js';
import { TaskQueue } from './taskQueue.js';

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
  /**
   * Hosts this task has failed on: a retry goes elsewhere while another host can take it.
   * One shared empty set until its first failure: a run can hold a million records.
   */
  failedOn: ReadonlySet<string>;
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

const NO_HOSTS: ReadonlySet<string> = new Set();

function newHostRecord(name: string, state: HostState): HostRecord {
  return { name, state, tasksDone: 0, failures: 0, running: new Set(), rendering: new Set(), waiting: new Set() };
}

/** See shouldTake: how much longer than needed the queue must be to queue on a host before every pace is known. */
const QUEUE_MARGIN = 4;

interface ActiveHost {
  host: SchedulerHost;
  record: HostRecord;
  removed: boolean;
  streak: Set<number>;
  /** Milliseconds a task takes on this host (a moving average of its successful attempts), once known. */
  estimate?: number | undefined;
  /** The attempt rendering in each lane: the next one starting there means it has ended. */
  laneRendering: Map<number, TaskRecord>;
}

/** Weight of the newest attempt in a host's moving average of task time. */
const ESTIMATE_WEIGHT = 0.3;

/**
 * One queue of tasks pulled by free host slots: a fast host simply comes back
 * for more. Scheduling decisions are synchronous; only attempts are async.
 */
export class Scheduler extends EventEmitter<SchedulerEvents> {
  readonly records: TaskRecord[];
  readonly hosts = new Map<string, HostRecord>();
  private readonly queue: TaskQueue<TaskRecord>;
  private readonly active: ActiveHost[] = [];
  private pendingHosts = 0;
  private running = 0;
  private readonly abort = (() => {
    const c = new AbortController();
    // Every running attempt listens to it: a large farm has hundreds at once.
    setMaxListeners(0, c.signal);
    return c;
  })();
  private waiters: Array<() => void> = [];
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((resolve) => (this.resolveFinished = resolve));
  private isFinished = false;
  private workers: Promise<void>[] = [];

  constructor(
    records: TaskRecord[],
    private readonly options: SchedulerOptions,
  ) {
    super();
    this.records = records;
    this.queue = new TaskQueue(records.filter((r) => r.status === 'pending'));
  }

  static record(task: Task): TaskRecord {
    return { task, status: 'pending', attempts: 0, host: null, seconds: 0, startedAt: null, endedAt: null, failedOn: NO_HOSTS };
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
    this.changed();
  }

  /** A host that is ready: its slots start pulling tasks. */
  addHost(host: SchedulerHost): void {
    this.pendingHosts--;
    const record = this.hosts.get(host.name) ?? newHostRecord(host.name, 'ok');
    record.state = 'ok';
    record.message = undefined;
    this.hosts.set(host.name, record);
    const active: ActiveHost = { host, record, removed: false, streak: new Set(), laneRendering: new Map() };
    this.active.push(active);
    this.emit('host-state', record);
    for (let i = 0; i < host.slots; i++) this.workers.push(this.worker(active, i));
    this.changed();
  }

  /** The host is gone (connection lost): its running attempts report `lost` themselves. */
  removeHost(name: string, state: HostState, message: string): void {
    const a = this.active.find((x) => x.host.name === name && !x.removed);
    if (!a) return;
    a.removed = true;
    a.record.state = state;
    a.record.message = message;
    this.emit('host-state', a.record);
    this.changed();
  }

  /** Stops the run: queued tasks are cancelled, running attempts are aborted. */
  cancel(): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    for (const r of this.queue.drain()) r.status = 'cancelled';
    this.changed();
  }

  get cancelled(): boolean {
    return this.abort.signal.aborted;
  }

  /** Resolves when every worker has returned (after finished, renderers included). */
  async drained(): Promise<void> {
    await this.finished;
    await Promise.all(this.workers);
  }

  private usableHosts(): ActiveHost[] {
    return this.active.filter((a) => !a.removed);
  }

  private changed(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    this.checkFinished();
  }

  private checkFinished(): void {
    if (this.isFinished) return;
    if (this.queue.length > 0 && this.usableHosts().length === 0 && this.pendingHosts <= 0 && this.running === 0) {
      const why = this.active.length === 0 ? 'no host was usable' : 'no host is left to run it (every host was lost or taken out)';
      for (const r of this.queue.drain()) {
        r.status = 'failed';
        r.error = r.error ? `${r.error}; then ${why}` : why;
      }
    }
    if (this.queue.length === 0 && this.running === 0) {
      this.isFinished = true;
      this.resolveFinished();
    }
  }

  /**
   * A host's task time as far as we can tell now: its moving average, or how
   * long its oldest running attempt has taken so far if that is longer (a
   * host whose renders hang is not counted on to finish the queue).
   */
  private taskTime(u: ActiveHost, now: number): number | undefined {
    if (u.estimate === undefined) return undefined;
    let t = u.estimate;
    // Attempts whose renderer started and that have not returned (rendering ends earlier, at the lane's next start).
    for (const r of u.record.running) if (!u.record.waiting.has(r)) t = Math.max(t, now - r.startedAt!);
    return t;
  }

  /**
   * Tasks per millisecond the usable hosts whose pace is known get through,
   * and whether that is every host (none still connecting, every usable one
   * timed).
   */
  private pace(now: number): { rate: number; complete: boolean } {
    let rate = 0;
    let complete = this.pendingHosts <= 0;
    for (const u of this.usableHosts()) {
      const t = this.taskTime(u, now);
      if (t === undefined) complete = false;
      else rate += u.host.slots / t;
    }
    return { rate, complete };
  }

  /**
   * Whether a slot of `a` should take the next task now. Pull scheduling, with
   * two looks ahead: near the end a slow host leaves a task to faster ones
   * that would finish it sooner (the rest of the queue drains before it
   * could), and a slot queues a second task behind its running one only
   * while the queue is long enough that the wait cannot delay the end of the
   * run. Until every host's pace is known (hosts still connecting, or not
   * yet through a task), the queue counts as long only at QUEUE_MARGIN times
   * what is needed by the hosts timed so far: the others only make it drain
   * sooner.
   */
  private shouldTake(a: ActiveHost, queued: boolean): boolean {
    if (queued && !a.host.queues) return false;
    const now = this.options.now();
    const pace = this.pace(now);
    if (a.estimate === undefined || pace.rate === 0) return !queued;
    const drain = this.queue.length / pace.rate;
    if (queued) return (pace.complete ? 2 : 2 * QUEUE_MARGIN) * a.estimate < drain;
    if (!pace.complete) return true;
    const fastest = Math.min(...this.usableHosts().map((u) => this.taskTime(u, now)!));
    return a.estimate <= drain + fastest;
  }

  private take(a: ActiveHost, queued: boolean): TaskRecord | undefined {
    if (this.queue.length === 0) return undefined;
    const usable = this.usableHosts();
    // A task goes back to a host it failed on only when no other host can take it,
    // now or once the hosts still connecting are up.
    const i = this.queue.findIndex(
      (r) =>
        (!r.failedOn.has(a.host.name) || (this.pendingHosts <= 0 && usable.every((u) => r.failedOn.has(u.host.name)))) &&
        (!queued || (a.host.canQueue?.(r.task) ?? true)),
    );
    if (i < 0) return undefined;
    // A task that failed somewhere is not left to faster hosts: they may be where it failed.
    if (queued || this.queue.at(i)!.failedOn.size === 0) {
      if (!this.shouldTake(a, queued)) return undefined;
    }
    return this.queue.takeAt(i);
  }

  private nextChange(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /**
   * One slot of a host: takes a task, and may queue one more behind it on
   * the host (see shouldTake), so the host starts it without waiting for us.
   */
  private async worker(a: ActiveHost, lane: number): Promise<void> {
    const inflight = new Set<Promise<void>>();
    while (!a.removed && !this.abort.signal.aborted && !this.isFinished) {
      const rec = inflight.size < 2 ? this.take(a, inflight.size > 0) : undefined;
      if (!rec) {
        // Wait for this slot's running attempt to end, or for anything else to change; a slot
        // that left tasks to faster hosts looks again after a while, in case they stall.
        const declined = inflight.size === 0 && this.queue.length > 0;
        let timer: NodeJS.Timeout | undefined;
        const recheck = declined ? new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(100, a.estimate ?? 0)))) : undefined;
        await Promise.race([this.nextChange(), ...inflight, ...(recheck ? [recheck] : [])]);
        clearTimeout(timer);
        continue;
      }
      const p: Promise<void> = this.attempt(a, rec, lane).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
  }

  private async attempt(a: ActiveHost, rec: TaskRecord, lane: number): Promise<void> {
    this.running++;
    rec.status = 'running';
    rec.host = a.host.name;
    a.record.running.add(rec);
    a.record.waiting.add(rec);
    const attempt = rec.attempts + 1;
    let started = this.options.now();
    rec.startedAt = started;
    rec.endedAt = null;
    this.emit('task-start', rec, a.record, attempt);
    const internal = (err: unknown): FinalOutcome => ({ kind: 'failed', message: `internal error: ${err instanceof Error ? err.message : String(err)}` });
    let rendered = false;
    const slot: AttemptSlot = {
      lane,
      started: () => {
        // A queued attempt's time counts from when its renderer started.
        started = this.options.now();
        rec.startedAt = started;
        rendered = true;
        // A lane renders one task at a time: its previous one has ended, though its attempt may not have returned yet.
        const before = a.laneRendering.get(lane);
        if (before) a.record.rendering.delete(before);
        a.laneRendering.set(lane, rec);
        a.record.waiting.delete(rec);
        a.record.rendering.add(rec);
        this.emit('task-render', rec, a.record);
      },
    };
    let outcome: AttemptOutcome;
    try {
      outcome = await a.host.run(rec.task, attempt, this.abort.signal, slot);
    } catch (err) {
      outcome = internal(err);
    }
    a.record.running.delete(rec);
    a.record.waiting.delete(rec);
    a.record.rendering.delete(rec);
    if (a.laneRendering.get(lane) === rec) a.laneRendering.delete(lane);
    if (rendered && (outcome.kind === 'released' || outcome.kind === 'done')) {
      const ms = this.options.now() - started;
      a.estimate = a.estimate === undefined ? ms : a.estimate + ESTIMATE_WEIGHT * (ms - a.estimate);
    }
    const end = (final: FinalOutcome): void => {
      rec.endedAt = this.options.now();
      rec.seconds += (rec.endedAt - started) / 1000;
      this.running--;
      this.settle(a, rec, final);
      this.emit('task-end', rec, a.record, final);
      this.changed();
    };
    if (outcome.kind === 'released') {
      // The slot is free now; the attempt still counts as running until its outputs are in.
      void outcome.outcome.catch(internal).then(end);
      this.changed();
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
        if (!this.abort.signal.aborted) this.queue.unshift(rec);
        this.removeHost(a.host.name, 'lost', outcome.message);
        return;
      case 'failed':
        rec.attempts++;
        rec.error = outcome.message;
        rec.log = outcome.log;
        rec.failedOn = new Set([...rec.failedOn, a.host.name]);
        a.record.failures++;
        a.streak.add(rec.task.index);
        if (this.abort.signal.aborted) {
          rec.status = 'cancelled';
        } else if (rec.attempts > this.options.retries) {
          rec.status = 'failed';
        } else {
          rec.status = 'pending';
          this.queue.unshift(rec);
        }
        if (a.streak.size >= this.options.maxConsecutiveFailures) {
          this.removeHost(
            a.host.name,
            'blocked',
            `taken out of the run after failing ${a.streak.size} different tasks in a row (last: ${outcome.message})`,
          );
        }
        return;
    }
  }
}
