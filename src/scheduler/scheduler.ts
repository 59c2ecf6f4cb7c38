import { EventEmitter } from 'node:events';
import { HostStates, type HostState, type HostStateRecord } from '../hosts/state.js';
import type { Task } from '../plan/plan.js';
import { attemptFacts, type AttemptRef, type SchedulerEvent, type TaskRef } from './events.js';
import { Fifo } from './fifo.js';
import { Heap } from './heap.js';

export type { SchedulerEvent } from './events.js';
export type { HostState } from '../hosts/state.js';

/**
 * Why an attempt failed, as fields (execa's result is the model): the
 * report and the event stream carry them, and the message is made from them.
 */
export interface AttemptFailure {
  /** Where it failed: sending its inputs, starting it, the renderer itself, or fetching its outputs. */
  stage: 'input' | 'start' | 'render' | 'output';
  /** The renderer's exit status; null when it did not exit by itself (a signal, a timeout, never started). */
  exitCode: number | null;
  /** The signal that ended the renderer (SIGTERM, SIGKILL, ...), or null. */
  signal: string | null;
  /** Stopped by --timeout. */
  timedOut: boolean;
  /** Stopped by --stall: neither its output nor its output files changed for that long. */
  stalled: boolean;
  /** The program was not found on the host (exit 127). */
  notFound: boolean;
}

/** Bytes an attempt sent to its host for its inputs and fetched back for its outputs. */
export interface AttemptBytes {
  in: number;
  out: number;
}

export type AttemptOutcome =
  | { kind: 'done'; bytes?: AttemptBytes | undefined }
  /**
   * The renderer or a copy failed: uses up one attempt. `done`: the frames
   * of a chunk that are complete all the same (their outputs are in place):
   * they are done, and only the rest is rendered again (see Chunks).
   */
  | {
      kind: 'failed';
      message: string;
      log?: string | undefined;
      failure?: AttemptFailure | undefined;
      bytes?: AttemptBytes | undefined;
      done?: readonly number[] | undefined;
    }
  /** The host went away: the task goes back to the front without using an attempt. */
  | { kind: 'lost'; message: string; bytes?: AttemptBytes | undefined }
  /**
   * Stopped. `done`: the frames of a chunk whose outputs were complete on
   * the host when the run was stopped and are now in place: they are done,
   * and only the rest of the chunk is cancelled (see Chunks).
   */
  | { kind: 'cancelled'; bytes?: AttemptBytes | undefined; done?: readonly number[] | undefined };

/** Where an attempt runs on its host, and how it says it has started. */
export interface AttemptSlot {
  /** The slot (0..slots-1): a host runs one attempt at a time per slot, in the order they were given. */
  lane: number;
  /** Called when the renderer actually starts (a queued attempt waits for the one before it). */
  started(): void;
  /**
   * Called when the renderer has ended well and the slot may take its next
   * task while this attempt's outputs are still being collected (downloads
   * overlap the next render). The attempt goes on until run() settles.
   */
  released?(): void;
  /**
   * True once another attempt of the same task has won (its outputs are
   * complete and kept): this one must not move its outputs into place
   * locally, and its signal is aborted. Asked by the attempt layer just
   * before it renames downloaded outputs over the final paths.
   */
  superseded?(): boolean;
  /**
   * Claims the task's final outputs for this attempt, just before it moves
   * them into place: true for the first attempt of the task to ask (and again
   * for it), false for every other copy, which must then discard its
   * outputs. Decided synchronously, so two copies finishing together never
   * both write. An attempt that fails after claiming calls `unclaim`.
   */
  claim?(): boolean;
  unclaim?(): void;
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
  /** With --chunk, replaced by its first part when a slot takes part of it, or when it is split (see Chunks). */
  task: Task;
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
  /** Attempts started for it in all, speculative copies included (an attempt's number is its place in this count). */
  copies: number;
  /** How its last failed attempt failed (cleared when it is done). */
  failure?: AttemptFailure | undefined;
  /** Attempts that were lost with their host (the task went back to the queue, no attempt used). */
  lost: number;
  /** The attempt whose outputs were kept, once done. */
  won: AttemptRef | null;
  /**
   * With --chunk: of its attempts, those that failed after completing some
   * frames of a larger chunk it was part of. They do not use up its retries:
   * each left fewer frames to render.
   */
  partial?: number;
}

/** A host as the run sees it: its state (see hosts/state.ts, moved only by the scheduler) and what it did. */
export interface HostRecord extends HostStateRecord {
  tasksDone: number;
  failures: number;
}

export interface SchedulerEvents {
  /** Every change, as a frozen object (see events.ts): what views, the report and the event stream read. */
  event: [SchedulerEvent];
  /** An attempt that settled its task ended, with the task's live record: for the stitcher, which reads the task's outputs. */
  'task-end': [TaskRecord, HostRecord, AttemptOutcome];
}

export interface SchedulerOptions {
  retries: number;
  /** A host whose last attempts failed on this many different tasks is taken out of the run. */
  maxConsecutiveFailures: number;
  now(): number;
  /**
   * When the queue is empty and a slot idle, start a second copy of the
   * running attempt expected to end last if the copy is expected to end
   * sooner, and copy a lost host's tasks elsewhere at once. Default off.
   */
  speculate?: boolean | undefined;
  /** Indexes of the records in the order their tasks are queued (default: as they are). */
  order?: readonly number[] | undefined;
  /** Told of a host state change that cannot happen (tests make it throw; a run ignores the change). */
  onRefusedMove?: ((host: string, from: HostState, to: HostState) => void) | undefined;
  /** With --chunk: forms each task's chunk as a slot takes it, and splits a chunk done in part. */
  chunks?: Chunks | undefined;
}

/**
 * With --chunk, the queue holds chunks of any length (a first run's whole
 * frame range is one): a slot takes the first part of one, as many frames
 * as `carve` decides when it takes it, and the rest stays queued. A chunk
 * whose attempt produced some of its frames is split into runs of frames
 * done and not, and only the runs not done are queued again. Records are
 * added to `records` for the parts (the plan stays one record per run of
 * frames, however many frames a run has).
 */
export interface Chunks {
  carve(task: Task, host: string, index: number): { taken: Task; rest: Task } | undefined;
  /** A task's renderer ran for `ms` on `host` and exited 0 (its outputs may still be coming). */
  timed(task: Task, host: string, ms: number): void;
  /** Frames a task typically takes now: the queue's frames over this are the tasks it holds, for its pace. */
  frames(): number;
  split(task: Task, done: ReadonlySet<number>, next: () => number): Array<{ task: Task; done: boolean }>;
}

function newHostRecord(name: string): HostRecord {
  return { name, state: 'connecting', tasksDone: 0, failures: 0 };
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
 * every queued one failed here), `qidle` (rendering one, and no queued task
 * it may take or queue), `spare` (idle with the queue empty, no running
 * attempt worth a copy on it now), or nowhere (busy). `idle` and `qidle`
 * slots are looked at again when a task is put back or a host changes, a
 * `qidle` one also when its render ends.
 */
type Listing = 'free' | 'queue' | 'held' | 'qheld' | 'idle' | 'qidle' | 'spare' | null;

interface Lane {
  readonly host: ActiveHost;
  readonly index: number;
  /** Attempts given to this slot and not yet freed: 0, 1, or 2 (one rendering, one queued behind it). */
  inflight: number;
  listed: Listing;
  /** The attempt rendering in this lane: the next one starting there means it has ended. */
  rendering: Attempt | undefined;
  /**
   * It has an entry in the dispatcher's idle list (maybe a stale one: it
   * left `idle` or `qidle` since): a slot that waits there again needs no
   * second one, or the list would grow by one for every task such a slot renders.
   */
  inIdle: boolean;
}

/** A task's attempts that have not ended, and whether the run waits for the task (not settled, not back in the queue). */
interface TaskRun {
  readonly atts: Attempt[];
  open: boolean;
  /** Its place in the order of the live map's entries. */
  readonly seq: number;
}

/**
 * The reason an attempt's signal carries when the whole run is stopped
 * (Ctrl+C, SIGTERM, the live page's Stop, a stop on error), as opposed to
 * an attempt stopped alone (a copy that lost, or one replaced by a faster
 * copy): a stopped run still keeps the frames an attempt has finished.
 */
export const RUN_STOPPED: unique symbol = Symbol('distray: the run is stopping');

/** Whether an attempt's aborted signal means the whole run is stopping (not this attempt alone). */
export function isRunStop(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason === RUN_STOPPED;
}

/** The Scheduler's side of AttemptSlot, by keys only this module holds. */
const STARTED = Symbol('started');
const RELEASED = Symbol('released');
const CLAIM = Symbol('claim');
const UNCLAIM = Symbol('unclaim');

/**
 * One attempt of a task on a host's slot, from when it is sent until it
 * ends. It is also the AttemptSlot its host is given: methods on a class
 * rather than closures per attempt, since a farm of a thousand hosts has
 * thousands of attempts in flight and their garbage is most of what a
 * decision costs there.
 */
class Attempt implements AttemptSlot {
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
    private readonly scheduler: Scheduler,
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
    this.scheduler[STARTED](this);
  }

  released(): void {
    this.scheduler[RELEASED](this);
  }

  superseded(): boolean {
    const won = this.rec.won;
    return won !== null && (won.host !== this.host.host.name || won.attempt !== this.number);
  }

  claim(): boolean {
    return this.scheduler[CLAIM](this);
  }

  unclaim(): void {
    this.scheduler[UNCLAIM](this);
  }
}

function internalError(err: unknown): AttemptOutcome {
  return { kind: 'failed', message: `internal error: ${err instanceof Error ? err.message : String(err)}` };
}

/** An entry of the speculation heaps: stale once the attempt has ended or restarted (`start` differs). */
interface Expected {
  readonly att: Attempt;
  readonly start: number;
  /** When it is expected to end by its host's pace at the time (start + task time). */
  readonly end: number;
}

/** A render that has run t so far is expected to take this multiple of t in all (it is not counted on to end just now). */
const RUNNING_FACTOR = 1.5;

/**
 * A copy must be expected to take no more than 1 / COPY_MARGIN of the time
 * the original is expected to need still: task times vary, and a host's
 * pace is an average, so a copy that would win only narrowly is as likely
 * to lose, and takes a slot a better copy could have had.
 */
const COPY_MARGIN = 1.5;

/** Live attempts of one task at most: the original and two copies (the first may have gone to a slow host, the only one free then). */
const MAX_COPIES = 3;

interface ActiveHost {
  readonly host: SchedulerHost;
  readonly record: HostRecord;
  readonly lanes: Lane[];
  removed: boolean;
  /** Its attempts that have not ended, in no order (each knows its index: see Attempt.onHost). */
  readonly live: Attempt[];
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
  /**
   * When watchStall is next due for it, and the timer for that: armed no
   * later than it is due, and kept when the check moves later (which most
   * changes do) to be re-armed when it fires, rather than made anew on
   * every change; `onStall` is its callback, one per host.
   */
  stallDue: number | undefined;
  stallTimer: Timer | undefined;
  stallArmed: number;
  onStall: () => void;
  /** Free slots held back (leaving the last tasks to faster hosts), slots not queueing now, and spare ones. */
  readonly held: Lane[];
  readonly qheld: Lane[];
  readonly spare: Lane[];
  /**
   * Its entry in the dispatcher's qheld heap while its slots do not queue
   * (older entries of it are stale; none while it is overdue: it is put back
   * when it no longer is), and when it was held, among the hosts held so far.
   */
  qheldEntry: QheldEntry | undefined;
  qheldSeq: number;
}

const qheldFirst = (x: QheldEntry, y: QheldEntry): boolean => x.estimate < y.estimate;

/** A host whose slots do not queue, by its estimate when it was held (or when that changed since). */
interface QheldEntry {
  readonly a: ActiveHost;
  readonly estimate: number;
}

/**
 * One dispatcher for every host slot (Playwright's runner dispatcher is the
 * model): a queue of tasks, lists of slots that can take one, and one
 * synchronous schedule() that pairs them whenever anything changes. A slot
 * is found without looking at every host, and the farm's pace is kept as a
 * running sum, so a decision costs the same on 10 hosts as on 1,000.
 * Attempts are async; decisions are not.
 */
const NO_HOSTS: ReadonlySet<string> = new Set();

export class Scheduler extends EventEmitter<SchedulerEvents> {
  readonly records: TaskRecord[];
  readonly hosts = new Map<string, HostRecord>();
  /** Tasks waiting for a slot: fresh ones in plan order, those put back (retries, lost) at the front. */
  private readonly queue = new Fifo<TaskRecord>();
  private readonly byName = new Map<string, ActiveHost>();
  private readonly usable = new Set<ActiveHost>();
  /** Every host's state; the count of hosts the run still counts on (connecting or reconnecting). */
  private readonly states: HostStates;
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

  private readonly free = new Fifo<Lane>();
  private readonly queueable = new Fifo<Lane>();
  private readonly idle: Lane[] = [];
  private readonly heldHosts = new Set<ActiveHost>();
  private readonly qheldHosts = new Set<ActiveHost>();
  /**
   * The same hosts by estimate, shortest first: a host queues once its
   * estimate is short enough for the queue's drain time (see shouldQueue),
   * so a look at them stops at the first that cannot, instead of going
   * through them all (they can be most of a farm, looked at on every change
   * of its pace).
   */
  private qheldByEstimate = new Heap<QheldEntry>(qheldFirst);
  private qheldSeq = 0;
  private readonly spareHosts = new Set<ActiveHost>();
  /** A timer says time has passed: spare slots look for a render worth a copy again. */
  private spareDirty = false;
  /** Σ slots / time over the usable hosts that are timed. */
  private rateSum = 0;
  /** fastestTime(), kept as hosts' times change; looked for again only once the fastest host slowed or left. */
  private fastest = Infinity;
  private fastestHost: ActiveHost | undefined;
  private fastestKnown = true;
  private untimed = 0;
  private recheck: Timer | undefined;
  private scheduling = false;
  private again = false;
  /** When held slots were last looked at: the queue's drain time then, whether every pace was known; or a change that calls for a look. */
  private heldDrain = 0;
  private heldComplete = false;
  private heldDirty = false;
  /** Renders started so far (see oldestOf). */
  private renders = 0;
  /** No more than the least estimate of the held hosts (see noneTakesFree). */
  private heldLeast = Infinity;

  /**
   * Running attempts by when they are expected to end (latest first), and by
   * when they started (earliest first: a render that has run long is
   * expected to run longer still). Kept only with speculation.
   */
  private readonly byEnd = new Heap<Expected>((a, b) => a.end > b.end);
  private readonly byStart = new Heap<Expected>((a, b) => a.start < b.start);
  private expecting = false;
  /** Tasks of a lost host, to be copied to the next free slots while the host may still come back. */
  private readonly urgent: TaskRecord[] = [];
  /** With --chunk: see Chunks; and the frames of the queued chunks. */
  private readonly chunks: Chunks | undefined;
  private queuedFrames = 0;
  /** Failed tasks put back by retry(): the attempts they had used by then, which no longer count against --retries. */
  private readonly retried = new Map<TaskRecord, number>();

  constructor(
    records: TaskRecord[],
    private readonly options: SchedulerOptions,
  ) {
    super();
    this.records = records;
    this.states = new HostStates(options.onRefusedMove);
    for (const i of options.order ?? records.keys()) {
      const r = records[i];
      if (r?.status === 'pending') this.queue.push(r);
    }
    this.chunks = options.chunks;
    if (this.chunks) for (const r of records) if (r.status === 'pending') this.queuedFrames += framesIn(r.task);
  }

  static record(task: Task): TaskRecord {
    return {
      task,
      status: 'pending',
      attempts: 0,
      host: null,
      seconds: 0,
      startedAt: null,
      endedAt: null,
      failedOn: NO_HOSTS,
      copies: 0,
      won: null,
      lost: 0,
    };
  }

  /**
   * Moves a host to `state` (see hosts/state.ts for the moves that can
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
    this.wakeIdle();
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
    const a: ActiveHost = {
      host,
      record,
      lanes: [],
      removed: false,
      live: [],
      streak: new Set(),
      estimate: undefined,
      time: undefined,
      contribution: 0,
      overdue: false,
      stallDue: undefined,
      stallTimer: undefined,
      stallArmed: 0,
      onStall: () => this.stallCheck(a),
      held: [],
      qheld: [],
      spare: [],
      qheldEntry: undefined,
      qheldSeq: 0,
    };
    for (let i = 0; i < host.slots; i++)
      a.lanes.push({ host: a, index: i, inflight: 0, listed: null, rendering: undefined, inIdle: false });
    this.byName.set(host.name, a);
    this.usable.add(a);
    this.untimed++;
    this.hostEvent(record);
    for (const lane of a.lanes) this.list(lane);
    this.wakeIdle();
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
    if (a && !a.removed) this.takeOut(a, state, message);
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
    for (const r of this.queue.drain()) this.final(r, 'cancelled');
    this.queuedFrames = 0;
    this.urgent.length = 0;
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
    if (this.held) this.held.push(Object.freeze(e));
    else this.emit('event', Object.freeze(e));
  }

  /**
   * Events made while an attempt's end is settled (its task's task-done, a
   * retry queued elsewhere) are held, so the attempt-ended that says how the
   * task goes on comes first.
   */
  private held: SchedulerEvent[] | null = null;

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
    a.removed = true;
    this.usable.delete(a);
    if (a.estimate === undefined) this.untimed--;
    this.rateSum -= a.contribution;
    a.contribution = 0;
    a.time = undefined;
    this.heldHosts.delete(a);
    this.qheldHosts.delete(a);
    a.qheldEntry = undefined;
    this.armStall(a, undefined);
    if (a === this.fastestHost) this.fastestKnown = false;
    if (this.byName.get(a.host.name) === a) this.byName.delete(a.host.name);
    this.moveHost(a.host.name, state, message);
    if (state === 'lost' && this.speculating) {
      // Its renders may live on and be picked up if it comes back within the grace period; meanwhile
      // a copy runs elsewhere, and whichever is complete first wins.
      // In the order of the live map, as every other look at the running tasks goes (one attempt of a task per host).
      for (const att of [...a.live].sort((x, y) => x.run.seq - y.run.seq)) this.urgent.push(att.rec);
      // Spare slots (idle, nothing worth a copy until now) are the first to take them.
      for (const h of [...this.spareHosts]) this.release(h, 'spare');
    }
    // A task that failed everywhere else may now go back to a host where it failed.
    this.wakeIdle();
    this.schedule();
  }

  /** Puts a slot on the list its state calls for (a removed host's slots go nowhere). */
  private list(lane: Lane): void {
    const a = lane.host;
    if (a.removed || lane.listed === 'held' || lane.listed === 'idle' || lane.listed === 'spare') return;
    if (lane.listed === 'qidle') {
      if (lane.inflight === 1) return;
      // Its render ended: it may take a task now, the way a free slot does.
      lane.listed = null;
    }
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
      lane.inIdle = false;
      if (lane.listed !== 'idle' && lane.listed !== 'qidle') continue;
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
    if (this.isFinished || this.abort.signal.aborted) return;
    if (this.urgent.length > 0) this.copyUrgent();
    if (this.queue.length === 0) {
      if (this.speculating && this.openTasks > 0) {
        if (!this.expecting) {
          // The heaps are filled from here on: until the queue is empty no copy is made, and they would only grow.
          this.expecting = true;
          for (const run of this.live.values()) for (const att of run.atts) this.expect(att);
        }
        this.speculate();
      }
      return;
    }
    this.expecting = false;
    const pace = new Pace(this);
    // Hosts that left the last tasks to faster ones, and slots that did not queue: looked at again when
    // the queue would now take longer to drain (a host lost or stalled, a task back), not on every change.
    const drain = pace.rate > 0 ? this.queuedTasks / pace.rate : Infinity;
    const recheck = this.heldDirty || drain > this.heldDrain * 1.05 || pace.complete !== this.heldComplete;
    this.heldDirty = false;
    if (recheck) {
      this.heldDrain = drain;
      this.heldComplete = pace.complete;
      this.recheckHeld(pace);
    }
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
    if (this.queue.length === 0) {
      // The last task is out: held slots are free for copies now.
      for (const a of [...this.heldHosts]) this.release(a, 'held');
      this.wakeIdle();
      if (this.speculating) this.again = true;
    } else if (this.heldHosts.size > 0 && this.recheck === undefined) {
      // A render that stalls makes its host's pace worse by the minute, with nothing else changing: look again.
      // (Only when no look is due yet: the held hosts can be most of a farm, and this runs on every change.)
      let wait = Infinity;
      for (const a of this.heldHosts) wait = Math.min(wait, a.estimate ?? 0);
      this.lookAgainIn(Math.max(100, wait));
    }
  }

  private lookAgainIn(ms: number): void {
    if (this.recheck !== undefined) return;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      this.heldDirty = true;
      this.spareDirty = true;
      this.schedule();
    }, ms);
  }

  private recheckHeld(pace: Pace): void {
    if (this.queue.length > 0 && !this.noneTakesFree(pace)) {
      let least = Infinity;
      for (const a of this.heldHosts) {
        const next = this.candidate(a, false);
        if (next === NONE || (this.at(next).failedOn.size === 0 && !this.shouldTakeFree(a, pace))) {
          least = Math.min(least, a.estimate ?? -Infinity);
          continue;
        }
        this.release(a, 'held');
      }
      this.heldLeast = least;
    }
    // A host queues only if not overdue, when its estimate is its time, no shorter than the fastest:
    // when the fastest could not queue, none of them can, and they can be most of a farm.
    if (
      this.qheldHosts.size === 0 ||
      pace.rate === 0 ||
      this.queueFactor(pace) * this.fastestTime() >= this.queuedTasks / pace.rate
    )
      return;
    const heap = this.qheldByEstimate;
    const queueing: QheldEntry[] = [];
    for (let e = heap.peek(); e; e = heap.peek()) {
      if (e !== e.a.qheldEntry) heap.pop();
      else if (this.shouldQueue(e.a, pace)) queueing.push(heap.pop()!);
      else if (e.a.overdue) {
        // It does not queue whatever its estimate until its render is no longer overdue (watchStall puts it back).
        heap.pop();
        e.a.qheldEntry = undefined;
      }
      // Its estimate is too long for the queue, and so is every one behind it.
      else break;
    }
    // The longest held first: the order their slots are offered tasks in.
    for (const e of queueing.sort((x, y) => x.a.qheldSeq - y.a.qheldSeq)) this.release(e.a, 'qheld');
  }

  /** Puts `a`, held from queueing, in the qheld heap by its estimate now. */
  private enterQheld(a: ActiveHost): void {
    a.qheldEntry = { a, estimate: a.estimate ?? Infinity };
    this.qheldByEstimate.push(a.qheldEntry);
    // Stale entries (a host's estimate changed, or it queues again) leave only when they come to the top: made anew once they are most of it.
    if (this.qheldByEstimate.size > 2 * this.qheldHosts.size + 64) {
      this.qheldByEstimate = new Heap<QheldEntry>(qheldFirst);
      for (const h of this.qheldHosts) if (h.qheldEntry) this.qheldByEstimate.push(h.qheldEntry);
    }
  }

  private release(a: ActiveHost, how: 'held' | 'qheld' | 'spare'): void {
    (how === 'held' ? this.heldHosts : how === 'qheld' ? this.qheldHosts : this.spareHosts).delete(a);
    if (how === 'qheld') a.qheldEntry = undefined;
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
      // Nothing it may take (or queue): it waits for a task put back or a change of hosts, not for the farm's pace.
      lane.listed = queued ? 'qidle' : 'idle';
      if (!lane.inIdle) {
        lane.inIdle = true;
        this.idle.push(lane);
      }
      return;
    }
    // A task that failed somewhere is not left to faster hosts: they may be where it failed.
    if (queued ? !this.shouldQueue(a, pace) : this.at(found).failedOn.size === 0 && !this.shouldTakeFree(a, pace)) {
      this.hold(lane, queued ? 'qheld' : 'held');
      return;
    }
    this.start(lane, this.chunks ? this.takeChunk(found, a) : this.takeAt(found));
  }

  /** Tasks in the queue, for its pace: with --chunk, its frames over the frames a task takes now. */
  private get queuedTasks(): number {
    return this.chunks === undefined
      ? this.queue.length
      : Math.max(this.queue.length, this.queuedFrames / this.chunks.frames());
  }

  /** A slot of `a` takes the first part of the queued chunk at `i` (it stays queued with the rest), or all of it. */
  private takeChunk(i: number, a: ActiveHost): TaskRecord {
    const rec = this.at(i);
    const carved = this.chunks!.carve(rec.task, a.host.name, this.records.length);
    if (!carved) {
      this.queuedFrames -= framesIn(rec.task);
      return this.takeAt(i);
    }
    const from = rec.task;
    rec.task = carved.rest;
    const part = Scheduler.record(carved.taken);
    // A chunk put back after failing keeps its history in its parts.
    part.attempts = rec.attempts;
    part.failedOn = rec.failedOn;
    part.partial = rec.partial;
    part.error = rec.error;
    part.failure = rec.failure;
    this.records.push(part);
    this.queuedFrames -= framesIn(part.task);
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
   * A chunk that produced some of its frames: its runs of frames done are
   * done (won by this attempt), and its runs of frames not done go back to
   * the front of the queue as chunks of their own. The attempt counts for
   * them, but not against their retries (see TaskRecord.partial): each such
   * attempt leaves fewer frames, so retrying cannot go on for ever.
   */
  private settlePartial(att: Attempt, outcome: Extract<AttemptOutcome, { kind: 'failed' | 'cancelled' }>): void {
    const { rec, host: a } = att;
    const host = a.host.name;
    const now = this.options.now();
    const from = rec.task;
    let next = this.records.length;
    const parts = this.chunks!.split(from, new Set(outcome.done), () => next++);
    const failedOn = new Set([...rec.failedOn, host]);
    const before = { error: rec.error, log: rec.log, failure: rec.failure, failedOn: rec.failedOn };
    const won = Object.freeze({ host, attempt: att.number });
    const attempts = rec.attempts;
    const partial = (rec.partial ?? 0) + 1;
    const records = parts.map((p, i) => {
      if (i === 0) {
        rec.task = p.task;
        return rec;
      }
      const r = Scheduler.record(p.task);
      r.copies = rec.copies;
      this.records.push(r);
      return r;
    });
    // A chunk stopped with the run did not fail: its host is not blamed.
    const failed = outcome.kind === 'failed';
    if (failed) a.record.failures++;
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
      r.host = host;
      r.startedAt = att.start;
      r.endedAt = now;
      if (r !== rec) r.seconds = (now - att.start) / 1000;
      if (parts[i]!.done) {
        r.attempts = attempts + 1;
        r.error = undefined;
        r.failure = undefined;
        r.won = won;
        a.record.tasksDone++;
        this.final(r, 'done', r === rec ? att.run : undefined);
        this.emit('task-end', r, a.record, { kind: 'done' });
        return;
      }
      r.attempts = attempts + 1;
      r.partial = partial;
      // A chunk stopped with the run did not fail: its parts left keep what its earlier attempts said.
      r.error = failed ? outcome.message : before.error;
      r.log = failed ? outcome.log : before.log;
      r.failure = failed ? outcome.failure : before.failure;
      r.failedOn = failed ? failedOn : before.failedOn;
      if (this.abort.signal.aborted) this.final(r, 'cancelled', r === rec ? att.run : undefined);
      else {
        r.status = 'pending';
        this.close(r, r === rec ? att.run : undefined);
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
   * True when no held slot would take a task now: only fresh tasks are
   * queued, and every held host's estimate (heldLeast is no more than the
   * least) is longer than the queue's drain time plus the fastest host's
   * task time (see shouldTakeFree). Held hosts can be most of a farm near
   * the end of a run, and are looked at again on every stall check.
   */
  private noneTakesFree(pace: Pace): boolean {
    return (
      this.queue.front.length === 0 &&
      pace.complete &&
      pace.rate > 0 &&
      this.heldLeast > this.queuedTasks / pace.rate + pace.fastest()
    );
  }

  private hold(lane: Lane, how: 'held' | 'qheld'): void {
    lane.listed = how;
    const a = lane.host;
    if (how === 'held') {
      a.held.push(lane);
      this.heldHosts.add(a);
      this.heldLeast = Math.min(this.heldLeast, a.estimate ?? -Infinity);
    } else {
      a.qheld.push(lane);
      if (!this.qheldHosts.has(a)) {
        this.qheldHosts.add(a);
        // Those that may queue again do in the order they were held.
        a.qheldSeq = ++this.qheldSeq;
        this.enterQheld(a);
      }
    }
  }

  /** The next free slot that is still free, taken off its list; or none. */
  private nextFree(): Lane | undefined {
    let lane: Lane | undefined;
    while ((lane = this.free.shift())) {
      if (lane.listed !== 'free') continue;
      lane.listed = null;
      if (!lane.host.removed && lane.inflight === 0) return lane;
    }
    return undefined;
  }

  /** A lost host's tasks, copied to free slots elsewhere at once. */
  private copyUrgent(): void {
    const waiting: TaskRecord[] = [];
    const skipped: Lane[] = [];
    for (const rec of this.urgent.splice(0)) {
      const atts = this.live.get(rec)?.atts;
      // Done meanwhile, or already copied to a host that is still there.
      if (!atts || atts.some((x) => !x.host.removed)) continue;
      let lane: Lane | undefined;
      // By name: a host that reconnected is a new entry here, but its renderers (and workdir) are the same.
      while (
        (lane = this.nextFree()) &&
        (atts.some((x) => x.host.host.name === lane!.host.host.name) || rec.failedOn.has(lane.host.host.name))
      )
        skipped.push(lane);
      if (!lane) {
        waiting.push(rec);
        continue;
      }
      this.start(lane, rec, atts[0]);
    }
    for (const lane of skipped) this.list(lane);
    this.urgent.push(...waiting);
  }

  /**
   * With the queue empty: gives each free slot a copy of the running attempt
   * expected to end last, while the copy is expected to end sooner.
   */
  private speculate(): void {
    const now = this.options.now();
    let lane: Lane | undefined;
    while ((lane = this.nextFree())) {
      const time = lane.host.time;
      const target = time === undefined ? undefined : this.latest(now, lane.host, now + time);
      if (target) this.copy(lane, target);
      else {
        lane.listed = 'spare';
        lane.host.spare.push(lane);
        this.spareHosts.add(lane.host);
      }
    }
    if (this.spareDirty) {
      this.spareDirty = false;
      this.respeculate(now);
    }
    // Renders that run on and on become worth a copy with nothing else changing: look again.
    if (this.spareHosts.size > 0 && this.openTasks > 0 && this.recheck === undefined) {
      let fastest = Infinity;
      for (const a of this.spareHosts) fastest = Math.min(fastest, a.time ?? Infinity);
      this.lookAgainIn(Math.max(100, Number.isFinite(fastest) ? fastest / 2 : 1000));
    }
  }

  /**
   * Spare slots, fastest hosts first, each given a copy while one is worth
   * it: once the fastest spare host has nothing worth copying, the slower
   * ones have nothing either.
   */
  private respeculate(now: number): void {
    const hosts = [...this.spareHosts]
      .filter((a) => !a.removed && a.time !== undefined)
      .sort((x, y) => x.time! - y.time!);
    for (const a of this.spareHosts) if (a.removed) this.spareHosts.delete(a);
    for (const a of hosts) {
      let lane: Lane | undefined;
      while ((lane = a.spare.at(-1))) {
        if (lane.listed !== 'spare' || lane.inflight !== 0) {
          a.spare.pop();
          continue;
        }
        const target = this.latest(now, a, now + a.time!);
        if (!target) return;
        a.spare.pop();
        lane.listed = null;
        this.copy(lane, target);
      }
      this.spareHosts.delete(a);
    }
  }

  /** When the heap entry's attempt is expected to end: by its host's pace then, and no sooner than half as long again as it has run. */
  private expectedEnd(e: Expected, now: number): number {
    return Math.max(e.end, e.start + RUNNING_FACTOR * (now - e.start));
  }

  /**
   * Whether a copy of `rec` on a host whose task time is `copyTime` is
   * expected to end before every running attempt of it. A render that has
   * run for t on a host whose task time is T is a task of about
   * max(1, RUNNING_FACTOR * t / T) such times, on the copy's host too: so a
   * copy on a host no faster never wins, unless the original's host has
   * stalled (its time then grows with its oldest render). See COPY_MARGIN.
   */
  private copyWins(rec: TaskRecord, now: number, copyTime: number): boolean {
    for (const x of this.live.get(rec)?.atts ?? []) {
      // Neither a lost host's attempt nor one being stopped (replaced) holds a copy back.
      if (x.host.removed || x.controller.signal.aborted) continue;
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
   * The running attempt expected to end last, if its task (the first of its
   * copies) is expected to end after `copyEnd` and a copy may go to `host`
   * (not where the task runs or failed). A task has no more than MAX_COPIES
   * attempts at once: at that many, a copy expected to end before all of
   * them (as any copy must be) takes the place of the one expected to end
   * last (`replace`, stopped for it): copies made while only slow hosts were
   * free do not keep a fast host that frees up later from the task. Entries
   * of ended attempts are dropped as they come up.
   */
  private latest(
    now: number,
    host: ActiveHost,
    copyEnd: number,
  ): { against: Attempt; replace: Attempt | undefined } | undefined {
    const put: Expected[] = [];
    let found: { against: Attempt; replace: Attempt | undefined } | undefined;
    for (let tries = 0; tries < 32 && !found; tries++) {
      const e1 = this.fresh(this.byEnd);
      const e2 = this.fresh(this.byStart);
      const best = !e1 ? e2 : !e2 ? e1 : this.expectedEnd(e1, now) >= this.expectedEnd(e2, now) ? e1 : e2;
      if (!best) break;
      if (this.expectedEnd(best, now) <= copyEnd) break;
      (best === e1 ? this.byEnd : this.byStart).pop();
      const atts = best.att.run.atts;
      // A task one of whose attempts has rendered and is bringing its outputs in, or is moving them into place, is all but done: no copy of it.
      if (this.claims.has(best.att.rec) || atts.some((x) => x.freed && !x.host.removed && !x.controller.signal.aborted))
        continue;
      put.push(best);
      if (atts.some((x) => x.host.host.name === host.host.name) || best.att.rec.failedOn.has(host.host.name)) continue;
      // An attempt being stopped (replaced by an earlier copy) is on its way out: it is not one of the task's attempts any more.
      let stopping = 0;
      for (const x of atts) if (x.controller.signal.aborted) stopping++;
      const full = atts.length - stopping >= MAX_COPIES;
      const replace = full ? this.lastToEnd(atts, now) : undefined;
      if (full && !replace) continue;
      if (!this.copyWins(best.att.rec, now, copyEnd - now)) continue;
      found = { against: best.att, replace };
    }
    for (const e of put) if (e.att !== found?.against) (e.end === e.start ? this.byStart : this.byEnd).push(e);
    return found;
  }

  /**
   * Of a task's attempts, the one expected to end last (see copyWins for
   * the estimate), among those on usable hosts: an attempt on a lost host
   * holds no slot, and may yet be adopted when its host comes back. None
   * while one has rendered and is bringing its outputs in: the task is all
   * but done, and that attempt may be moving them into place. Never one
   * already being stopped: it would be replaced again by every fast slot
   * that frees up before it has returned.
   */
  private lastToEnd(atts: readonly Attempt[], now: number): Attempt | undefined {
    let last: Attempt | undefined;
    let lastEnd = -Infinity;
    for (const x of atts) {
      if (x.host.removed || x.controller.signal.aborted) continue;
      // Rendered and bringing its outputs in, or moving them into place (a slot that never frees early: shared paths).
      if (x.freed || this.claims.get(x.rec) === x) return undefined;
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

  /** A copy of `target.against`'s task on `lane`; the attempt it replaces (see latest) is stopped. */
  private copy(lane: Lane, target: { against: Attempt; replace: Attempt | undefined }): void {
    const att = this.start(lane, target.against.rec, target.against);
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

  private fresh(h: Heap<Expected>): Expected | undefined {
    let e: Expected | undefined;
    while ((e = h.peek()) && (e.att.ended || e.att.start !== e.start || e.att.rec.status !== 'running')) h.pop();
    return e;
  }

  /** Enters a running attempt in the speculation heaps (again, when its renderer starts). */
  private expect(att: Attempt): void {
    if (!this.expecting) return;
    const time = att.host.time;
    // A queued attempt renders after the one before it in its lane: about one task time later.
    const end = time === undefined ? att.start : att.start + (att.rendering ? time : 2 * time);
    this.byStart.push({ att, start: att.start, end: att.start });
    if (end !== att.start) this.byEnd.push({ att, start: att.start, end });
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
    return (
      this.mayRunOn(r, a) &&
      (!queued ||
        (a.host.canQueue?.(this.chunks ? (this.chunks.carve(r.task, a.host.name, -1)?.taken ?? r.task) : r.task) ??
          true))
    );
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
    const drain = this.queuedTasks / pace.rate;
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
    const drain = this.queuedTasks / pace.rate;
    return this.queueFactor(pace) * a.estimate < drain;
  }

  private queueFactor(pace: Pace): number {
    return pace.complete ? 2 : 2 * QUEUE_MARGIN;
  }

  /** For Pace: the farm's rate (kept as a running sum) and whether every host's pace is known. */
  paceOf(): { rate: number; complete: boolean } {
    return { rate: this.rateSum, complete: this.pendingHosts <= 0 && this.untimed === 0 };
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
   * Keeps `a.time`, the host's task time as far as we can tell: its moving
   * average, or how long its oldest rendering attempt has taken so far if
   * that is longer (a host whose renders hang is not counted on to finish
   * the queue). A render's time so far grows by itself: a timer updates it
   * when the render is a quarter late, then each time it has run half as
   * long again, so the farm's pace stays a sum kept up to date in O(1).
   */
  private watchStall(a: ActiveHost): void {
    const est = a.estimate;
    let time = est;
    let due: number | undefined;
    const oldest = oldestOf(a);
    if (!a.removed && est !== undefined && oldest) {
      const now = this.options.now();
      const elapsed = now - oldest.start;
      const late = elapsed > est * STALL_LATE;
      if (late) time = elapsed;
      const next = late ? elapsed * STALL_STEP : est * STALL_LATE;
      due = now + (next - elapsed + 1);
    }
    this.armStall(a, due);
    const was = a.time;
    a.time = a.removed ? undefined : time;
    if (this.fastestKnown && a.time !== was) {
      if (a.time !== undefined && a.time < this.fastest) {
        this.fastest = a.time;
        this.fastestHost = a;
      } else if (a === this.fastestHost) this.fastestKnown = false;
    }
    const wasOverdue = a.overdue;
    a.overdue = time !== est;
    if (wasOverdue && !a.overdue && this.qheldHosts.has(a) && !a.qheldEntry) this.enterQheld(a);
    const c = a.removed || time === undefined ? 0 : a.host.slots / time;
    this.rateSum += c - a.contribution;
    a.contribution = c;
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
    this.heldDirty = true;
    this.schedule();
  }

  private checkFinished(): void {
    if (this.isFinished) return;
    if (this.queue.length > 0 && this.usable.size === 0 && this.pendingHosts <= 0 && this.running === 0) {
      const why = this.states.everReady
        ? 'no host is left to run it (every host was lost or taken out)'
        : 'no host was usable';
      this.queuedFrames = 0;
      for (const r of this.queue.drain()) {
        r.error = r.error ? `${r.error}; then ${why}` : why;
        this.final(r, 'failed');
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
  private start(lane: Lane, rec: TaskRecord, against?: Attempt): Attempt {
    const a = lane.host;
    const behind = lane.inflight > 0;
    lane.inflight++;
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
    const att = new Attempt(this, run, rec, a, lane, ++rec.copies, against !== undefined, this.options.now());
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
        const reason = against.host.removed ? 'lost' : 'slow';
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
    this.expect(att);
    this.unreturned++;
    this.attempt(att);
    this.list(lane);
    return att;
  }

  /** AttemptSlot.started: the attempt's renderer has started on its host. */
  [STARTED](att: Attempt): void {
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
    this.expect(att);
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
  [CLAIM](att: Attempt): boolean {
    const { rec } = att;
    const holder = this.claims.get(rec);
    // A task settled failed or cancelled while a replaced attempt was still being stopped keeps what it was reported.
    if (
      rec.won !== null ||
      rec.status === 'failed' ||
      rec.status === 'cancelled' ||
      (holder !== undefined && holder !== att)
    )
      return false;
    this.claims.set(rec, att);
    return true;
  }

  /** AttemptSlot.unclaim. */
  [UNCLAIM](att: Attempt): void {
    if (this.claims.get(att.rec) === att) this.claims.delete(att.rec);
  }

  /**
   * Runs the attempt on its host. Callbacks rather than an async function:
   * with thousands of attempts in flight, an async frame and its await
   * closures per attempt were much of what each scavenge copied. The steps
   * take the same turns as the awaits did (a host that throws at once is
   * answered at once).
   */
  private attempt(att: Attempt): void {
    if (this.abort.signal.aborted) att.controller.abort(RUN_STOPPED);
    let running: Promise<AttemptOutcome>;
    try {
      running = att.host.host.run(att.rec.task, att.number, att.controller.signal, att);
    } catch (err) {
      this.ran(att, internalError(err));
      return;
    }
    void Promise.resolve(running).then(
      (outcome) => this.ran(att, outcome),
      (err: unknown) => this.ran(att, internalError(err)),
    );
  }

  /** AttemptSlot.released: the renderer ended well; the slot is free, and the attempt ends once its outputs are in. */
  [RELEASED](att: Attempt): void {
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
  private ran(att: Attempt, outcome: AttemptOutcome): void {
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
    lane.inflight--;
    if (att.rendering && succeeded) {
      const ms = this.options.now() - att.start;
      if (a.estimate === undefined && !a.removed) this.untimed--;
      a.estimate = a.estimate === undefined ? ms : a.estimate + ESTIMATE_WEIGHT * (ms - a.estimate);
      this.chunks?.timed(att.rec.task, a.host.name, ms);
      if (a.estimate < this.heldLeast && this.heldHosts.has(a)) this.heldLeast = a.estimate;
    }
    this.watchStall(a);
    this.list(lane);
    // Its own pace changed: whether its other slots queue may too (the other hosts wait for a change of the farm's pace).
    if (this.qheldHosts.has(a)) {
      if (this.shouldQueue(a, new Pace(this))) this.release(a, 'qheld');
      // Its place among the held hosts follows its estimate.
      else if (a.qheldEntry && a.qheldEntry.estimate !== (a.estimate ?? Infinity)) this.enterQheld(a);
    }
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
    // A copy stopped to make room for a faster one (see latest) is a losing copy too, unless its result came in complete first.
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
      // A replaced attempt that held the outputs' claim, and failed to move them, was the task's last: it goes back to the queue.
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
    // A chunk that failed with frames done is split (see settlePartial): it goes on as its parts, none of them final by this attempt.
    // So is one stopped with the run after some of its frames were complete: those are kept, the rest cancelled.
    partial =
      (outcome.kind === 'failed' || outcome.kind === 'cancelled') &&
      outcome.done !== undefined &&
      outcome.done.length > 0 &&
      this.chunks !== undefined &&
      others === 0;
    const outer = this.held;
    const held = (this.held ??= []);
    const mark = held.length;
    try {
      if (partial && (outcome.kind === 'failed' || outcome.kind === 'cancelled')) this.settlePartial(att, outcome);
      else this.settle(att, outcome, others);
    } finally {
      if (!outer) this.held = null;
      try {
        if (this.observed) held.splice(mark, 0, Object.freeze(ended()));
      } finally {
        if (!outer) for (const e of held) this.emit('event', e);
      }
    }
    if (!partial) this.emit('task-end', rec, a.record, outcome);
    this.schedule();
  }

  private settle(att: Attempt, outcome: AttemptOutcome, others: number): void {
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
        this.final(rec, 'done', att.run);
        return;
      case 'cancelled':
        if (others === 0) this.final(rec, 'cancelled', att.run);
        return;
      case 'lost':
        rec.error = outcome.message;
        rec.lost++;
        if (others === 0) {
          if (this.abort.signal.aborted) this.final(rec, 'cancelled', att.run);
          else {
            rec.status = 'pending';
            this.close(rec, att.run);
            this.requeue(rec);
          }
        }
        if (!a.removed) this.takeOut(a, 'lost', outcome.message);
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
          this.final(rec, 'cancelled', att.run);
        } else if (rec.attempts - Math.max(rec.partial ?? 0, this.retried.get(rec) ?? 0) > this.options.retries) {
          this.final(rec, 'failed', att.run);
        } else {
          rec.status = 'pending';
          this.close(rec, att.run);
          this.requeue(rec);
        }
        if (a.streak.size >= this.options.maxConsecutiveFailures && !a.removed) {
          this.takeOut(
            a,
            'blocked',
            `taken out of the run after failing ${a.streak.size} different tasks in a row (last: ${outcome.message})`,
          );
        }
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
  private final(rec: TaskRecord, status: 'done' | 'failed' | 'cancelled', run?: TaskRun): void {
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
    this.queue.unshift(rec);
    if (this.chunks) this.queuedFrames += framesIn(rec.task);
    this.wakeIdle();
    for (const a of [...this.spareHosts]) this.release(a, 'spare');
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

/** The first of a host's attempts rendering now to have started (its lanes' renders: a host has a handful of slots). */
function oldestOf(a: ActiveHost): Attempt | undefined {
  let oldest: Attempt | undefined;
  for (const lane of a.lanes) {
    const r = lane.rendering;
    if (r && (oldest === undefined || r.renderSeq < oldest.renderSeq)) oldest = r;
  }
  return oldest;
}

/** Set#clear makes a new table even for an empty set: done on every task a host finishes. */
function clearStreak(a: ActiveHost): void {
  if (a.streak.size > 0) a.streak.clear();
}

function refOf(t: Task): TaskRef {
  const c = t.chunk;
  if (c)
    return Object.freeze({
      index: t.index,
      frame: t.frame,
      tile: null,
      label: t.label,
      last: c.first + (c.count - 1) * c.step,
      count: c.count,
    });
  return Object.freeze({ index: t.index, frame: t.frame, tile: t.tile?.index ?? null, label: t.label });
}

function framesIn(t: Task): number {
  return t.chunk?.count ?? 1;
}
