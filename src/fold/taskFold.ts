import type { Task } from '../plan/plan.js';

/** What the fold reads of a planned task (a plan's Task is one). */
export type FoldTask = Pick<Task, 'index' | 'frame' | 'label' | 'chunk'> & {
  readonly tile: { readonly index: number } | null;
};
import type { AttemptRef, SchedulerEvent, TaskRef } from '../scheduler/events.js';
import type { TaskList, TaskSummary } from './types.js';

type Status = TaskSummary['status'];
type Ended = Extract<SchedulerEvent, { type: 'attempt-ended' }>;

/** How a task's last failed attempt failed (the report's exitCode, signal, timedOut, stalled, stage). */
interface Failure {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stalled: boolean;
  readonly stage: NonNullable<TaskSummary['stage']>;
}

/** With --chunk: the frames a task renders, `frame` being the first. */
interface ChunkFrames {
  readonly last: number;
  readonly count: number;
  readonly label: string;
}

/**
 * One task as its events have told it so far, from its first event until
 * it is done for good (then its summary is kept instead).
 */
class Entry {
  host: string | null = null;
  attempts = 0;
  copies = 0;
  lost = 0;
  /** Its counted attempts' time, summed unrounded (rounded once in the report, as one sum). */
  seconds = 0;
  /** The scheduler clock when its last attempt started and ended (outputs in), or null. */
  startedAt: number | null = null;
  endedAt: number | null = null;
  error: string | undefined = undefined;
  log: string | undefined = undefined;
  failure: Failure | undefined = undefined;
  won: AttemptRef | null = null;
  /** Its attempts that have not ended: the task is running while there is one (not counting those in `stopping`). */
  running = 0;
  /** Its attempts being stopped to make room for a faster copy (speculation-lost replaced): they carry the task no more. */
  stopping: Set<number> | undefined = undefined;
  /**
   * When they started (when queued, then when the renderer started): one
   * here, as most tasks have at a time; a speculative copy's in `others`.
   */
  attempt = 0;
  attemptStart = 0;
  others: Map<number, number> | undefined = undefined;
  /** When the last attempt that counted for it started: the parts of a chunk it split start then too. */
  endedStart = 0;
  /** Its attempts whose renderer has started and that have not ended (the views' `running`), and whether its last counted attempt failed. */
  startedOne = 0;
  startedMore: Set<number> | undefined = undefined;
  lastFailed = false;
  /** Its place in the run's tasks, and what the counts have it as (see TaskFold.counts). */
  index = -1;
  counted: Status | undefined = undefined;
  countedFrames = 0;
  countedRendering = false;
  constructor(
    public frame: number,
    public tile: number | null,
    public chunk: ChunkFrames | undefined,
    public status: Status,
  ) {}

  setStart(attempt: number, at: number): void {
    if (this.others?.has(attempt)) this.others.set(attempt, at);
    else if (this.attempt === 0 || this.attempt === attempt) {
      this.attempt = attempt;
      this.attemptStart = at;
    } else (this.others ??= new Map()).set(attempt, at);
  }

  /** When the attempt that has just ended started (undefined if it was never seen to). */
  takeStart(attempt: number): number | undefined {
    if (this.attempt === attempt) {
      this.attempt = 0;
      return this.attemptStart;
    }
    const start = this.others?.get(attempt);
    this.others?.delete(attempt);
    return start;
  }

  /** Now the task `ref` (a chunk cut down to its rest, or its first part). */
  become(ref: TaskRef): void {
    this.frame = ref.frame;
    this.chunk = chunkOfRef(ref);
  }

  static ofRef(ref: TaskRef): Entry {
    return new Entry(ref.frame, ref.tile, chunkOfRef(ref), 'pending');
  }

  /** A task of the plan that no event has named (yet). */
  static ofTask(task: FoldTask, status: Status): Entry {
    const c = task.chunk;
    const chunk = c ? { last: c.first + (c.count - 1) * c.step, count: c.count, label: task.label } : undefined;
    return new Entry(task.frame, task.tile?.index ?? null, chunk, status);
  }
}

/** The frames a task renders (a tile counts as one: see FoldCounts). */
function framesOfEntry(t: Entry): number {
  return t.chunk?.count ?? 1;
}

/** Whether a renderer of `t` runs now: an attempt started, not ended, and not being stopped for a faster copy. */
function rendering(t: Entry): boolean {
  if (t.startedOne !== 0 && !t.stopping?.has(t.startedOne)) return true;
  if (t.startedMore) for (const a of t.startedMore) if (!t.stopping?.has(a)) return true;
  return false;
}

function chunkOfRef(ref: TaskRef): ChunkFrames | undefined {
  return ref.count !== undefined && ref.last !== undefined
    ? { last: ref.last, count: ref.count, label: ref.label }
    : undefined;
}

const round = (s: number): number => Math.round(s * 1000) / 1000;

/**
 * Counts by the report's status, and `rendering`: those whose renderer runs
 * now or whose outputs are coming in (a part of `running`, which counts
 * those sent to a host to wait there too; not those being stopped for a
 * faster copy).
 */
export type StatusCounts = Record<Status, number> & { total: number; rendering: number };

/**
 * The run's counts as the fold has them now: of tasks, and of frames (a
 * chunk counts its frames; without --chunk a task is a frame, or with
 * --tiles a tile). Every view counts from these, or from the report's list
 * with countTasks, which gives the same.
 */
export interface FoldCounts {
  tasks: StatusCounts;
  frames: StatusCounts;
}

const STATUSES = ['pending', 'running', 'done', 'failed', 'skipped', 'cancelled'] as const satisfies readonly Status[];
const SLOT: Record<Status, number> = { pending: 0, running: 1, done: 2, failed: 3, skipped: 4, cancelled: 5 };
const TOTAL = 6;
const RENDERING = 7;
const SLOTS = 8;

export function noCounts(): StatusCounts {
  return { total: 0, pending: 0, running: 0, done: 0, failed: 0, skipped: 0, cancelled: 0, rendering: 0 };
}

/** The counts of a report's task list (see FoldCounts): the fold's own at the run's end. */
export function countTasks(tasks: Iterable<{ status: Status; count?: number | undefined }>): FoldCounts {
  const counts = { tasks: noCounts(), frames: noCounts() };
  for (const t of tasks) {
    counts.tasks[t.status]++;
    counts.tasks.total++;
    counts.frames[t.status] += t.count ?? 1;
    counts.frames.total += t.count ?? 1;
  }
  return counts;
}

/** How a task stands for the views (the page's grid): its status, whether a renderer of it runs now, whether its last attempt failed. */
export interface TaskStanding {
  status: Status;
  rendering: boolean;
  lastFailed: boolean;
}

const NONE = 0;
const DONE = 1;
const SKIPPED = 2;

/**
 * The plan's tasks that are settled for good, kept as numbers by task
 * index: done (with what the report says of a done task) or skipped. A run
 * of a million tasks keeps about 50 bytes for each, not a summary object
 * (about 500): the summaries are made once, by list().
 */
class Settled {
  private readonly state: Uint8Array;
  private readonly host: Int32Array;
  private readonly attempts: Uint32Array;
  private readonly copies: Uint32Array;
  private readonly lost: Uint32Array;
  private readonly seconds: Float64Array;
  private readonly startedAt: Float64Array;
  private readonly endedAt: Float64Array;
  private readonly wonHost: Int32Array;
  private readonly wonAttempt: Uint32Array;
  /** Host names by number (-1: none). */
  private readonly names: string[] = [];
  private readonly numbers = new Map<string, number>();

  constructor(readonly size: number) {
    this.state = new Uint8Array(size);
    this.host = new Int32Array(size);
    this.attempts = new Uint32Array(size);
    this.copies = new Uint32Array(size);
    this.lost = new Uint32Array(size);
    this.seconds = new Float64Array(size);
    this.startedAt = new Float64Array(size);
    this.endedAt = new Float64Array(size);
    this.wonHost = new Int32Array(size);
    this.wonAttempt = new Uint32Array(size);
  }

  has(i: number): boolean {
    return i < this.size && this.state[i] !== NONE;
  }

  skip(i: number): void {
    this.state[i] = SKIPPED;
  }

  isSkipped(i: number): boolean {
    return this.state[i] === SKIPPED;
  }

  /** `t`, done for good: whether it could be kept as numbers (a task of the plan as planned, with its times). */
  keep(i: number, t: Entry): boolean {
    if (i >= this.size || t.chunk !== undefined || t.startedAt === null || t.endedAt === null) return false;
    this.state[i] = DONE;
    this.host[i] = this.number(t.host);
    this.attempts[i] = t.attempts;
    this.copies[i] = t.copies;
    this.lost[i] = t.lost;
    this.seconds[i] = t.seconds;
    this.startedAt[i] = t.startedAt;
    this.endedAt[i] = t.endedAt;
    this.wonHost[i] = this.number(t.won?.host ?? null);
    this.wonAttempt[i] = t.won?.attempt ?? 0;
    return true;
  }

  /** The entry `task` (index i) was settled with, made again for its summary. */
  entry(i: number, task: FoldTask): Entry {
    if (this.state[i] === SKIPPED) return Entry.ofTask(task, 'skipped');
    const t = Entry.ofTask(task, 'done');
    t.host = this.name(this.host[i]!);
    t.attempts = this.attempts[i]!;
    t.copies = this.copies[i]!;
    t.lost = this.lost[i]!;
    t.seconds = this.seconds[i]!;
    t.startedAt = this.startedAt[i]!;
    t.endedAt = this.endedAt[i]!;
    const won = this.name(this.wonHost[i]!);
    t.won = won === null ? null : { host: won, attempt: this.wonAttempt[i]! };
    return t;
  }

  private number(name: string | null): number {
    if (name === null) return -1;
    let n = this.numbers.get(name);
    if (n === undefined) {
      n = this.names.push(name) - 1;
      this.numbers.set(name, n);
    }
    return n;
  }

  private name(n: number): string | null {
    return n < 0 ? null : this.names[n]!;
  }
}

/**
 * The report's task list, folded from the scheduler's events alone (see
 * scheduler/events.ts): from the plan's tasks as the run starts (`begin`:
 * those complete already are `skipped`), then each event as it comes
 * (`add`), then `list()` for every task's TaskSummary and, with --chunk,
 * the frames not done. Pure: no I/O, no clock (times are the events' `at`),
 * no scheduler record. With --chunk the tasks formed and split as the run
 * goes (chunk-formed, chunk-split) are tasks of their own, listed in frame
 * order.
 *
 *     const tasks = new TaskFold(clockOrigin);
 *     tasks.begin(records);                       // the plan's tasks, complete ones 'skipped'
 *     scheduler.on('event', (e) => tasks.add(e));
 *     ...
 *     tasks.list();                               // { tasks: [...], missingFrames? }
 *
 * A run can have a million tasks: a task has an entry only from its first
 * event until it is done for good, when a few numbers (see Settled) take
 * its place until list() makes the report's lines.
 */
export class TaskFold {
  /** By task index (its place in the run's tasks; chunk parts are added at the end): its entry while it has one. */
  private readonly entries: Array<Entry | undefined> = [];
  /** The plan's tasks, by index: what the list says of one no event has named, or of one settled. */
  private readonly planned: Array<FoldTask | undefined> = [];
  /** The plan's tasks done for good, and those skipped. */
  private settled = new Settled(0);
  /** With --chunk: the frame spec's step (a chunk's frames are this far apart); the list is in its order. */
  private step: number | undefined;
  private begun = false;
  /**
   * Kept as each task changes (see FoldCounts), by SLOT: tasks in the first
   * half, frames in the second (a run of a million tasks adds to them several
   * times a task, so they are numbers in an array, not an object's fields).
   */
  private readonly tally = new Float64Array(2 * SLOTS);
  /** With --tiles: per frame, its tiles and those done or complete already. */
  private readonly tiles = new Map<number, { done: number; tiles: number }>();

  /** `clockOrigin`: the scheduler clock's reading when the run started, for the tasks' `start` and `end` (none without it). */
  constructor(private readonly clockOrigin?: number) {}

  /**
   * The tasks as the run starts, in plan order: status 'skipped' for those
   * complete already, anything else is to run. Only the first call counts
   * (a run that fails before it starts gives the tasks as they were then).
   */
  begin(tasks: Iterable<{ readonly task: FoldTask; readonly status: string }>): void {
    if (this.begun) return;
    this.begun = true;
    const skipped: number[] = [];
    for (const { task, status } of tasks) {
      if (task.chunk) this.step ??= task.chunk.step;
      this.planned[task.index] = task;
      if (status === 'skipped') skipped.push(task.index);
      this.count(status === 'skipped' ? 'skipped' : 'pending', task.chunk?.count ?? 1, false, +1);
      if (task.tile) {
        let f = this.tiles.get(task.frame);
        if (!f) this.tiles.set(task.frame, (f = { done: 0, tiles: 0 }));
        f.tiles++;
        if (status === 'skipped') f.done++;
      }
    }
    this.settled = new Settled(this.planned.length);
    for (const i of skipped) this.settled.skip(i);
  }

  add(e: SchedulerEvent): void {
    // Every task the event names is counted again after it, if it changed (a chunk formed or split names its parts).
    if (e.type === 'chunk-formed' || e.type === 'chunk-split') {
      const named = this.named(e);
      try {
        this.apply(e);
      } finally {
        for (const t of named) this.recount(t);
      }
      return;
    }
    const t = 'task' in e ? this.entry(e.task) : undefined;
    try {
      this.apply(e);
    } finally {
      if (t) this.recount(t);
    }
  }

  /** The counts now (see FoldCounts). */
  counts(): FoldCounts {
    const of = (base: number): StatusCounts => {
      const c = noCounts();
      for (const k of STATUSES) c[k] = this.tally[base + SLOT[k]]!;
      c.total = this.tally[base + TOTAL]!;
      c.rendering = this.tally[base + RENDERING]!;
      return c;
    };
    return { tasks: of(0), frames: of(SLOTS) };
  }

  /** How task `index` stands now (see TaskStanding), or undefined for an index no plan or event has named. */
  standing(index: number): TaskStanding | undefined {
    const t = this.entries[index];
    if (t) return { status: t.status, rendering: rendering(t), lastFailed: t.lastFailed };
    const task = this.planned[index];
    if (!task) return undefined;
    if (this.settled.has(index))
      return { status: this.settled.isSkipped(index) ? 'skipped' : 'done', rendering: false, lastFailed: false };
    return { status: 'pending', rendering: false, lastFailed: false };
  }

  private count(status: Status, frames: number, isRendering: boolean, by: 1 | -1): void {
    const tally = this.tally;
    const i = SLOT[status];
    tally[i]! += by;
    tally[SLOTS + i]! += by * frames;
    tally[TOTAL]! += by;
    tally[SLOTS + TOTAL]! += by * frames;
    if (isRendering) {
      tally[RENDERING]! += by;
      tally[SLOTS + RENDERING]! += by * frames;
    }
  }

  /** The entries of the tasks `e` names (made now if new, as apply would make them). */
  private named(e: SchedulerEvent): Entry[] {
    const refs: TaskRef[] = [];
    if (e.type === 'chunk-formed') refs.push(e.from, e.task);
    else if (e.type === 'chunk-split') refs.push(e.task, ...e.parts);
    else if ('task' in e) refs.push(e.task);
    const out: Entry[] = [];
    for (const r of refs) {
      const t = this.entry(r);
      if (t && !out.includes(t)) out.push(t);
    }
    return out;
  }

  /** With --tiles: the tiles of `frame` done (or complete already) and all of them, or undefined for a frame of no tiles. */
  tilesOf(frame: number): { done: number; tiles: number } | undefined {
    const f = this.tiles.get(frame);
    return f ? { ...f } : undefined;
  }

  /** Counts `t` as it is now, in place of what the counts had it as (an entry is counted from when it is made). */
  private recount(t: Entry): void {
    const frames = framesOfEntry(t);
    const isRendering = rendering(t);
    const was = t.counted;
    if (was === t.status && t.countedFrames === frames && t.countedRendering === isRendering) return;
    if (was !== undefined) {
      this.count(was, t.countedFrames, t.countedRendering, -1);
      const f = was === 'done' && t.tile !== null ? this.tiles.get(t.frame) : undefined;
      if (f) f.done--;
    }
    this.count(t.status, frames, isRendering, +1);
    if (t.status === 'done' && t.tile !== null) {
      const f = this.tiles.get(t.frame);
      if (f) f.done++;
    }
    t.counted = t.status;
    t.countedFrames = frames;
    t.countedRendering = isRendering;
  }

  /** `t`, a task of the plan, as the counts have had it from the start: pending. */
  private countedPlanned(t: Entry, task: FoldTask): void {
    t.counted = 'pending';
    t.countedFrames = task.chunk?.count ?? 1;
    t.countedRendering = false;
  }

  private apply(e: SchedulerEvent): void {
    switch (e.type) {
      case 'attempt-queued': {
        const t = this.entry(e.task);
        if (!t) return;
        t.status = 'running';
        t.host = e.host;
        t.startedAt = e.at;
        t.endedAt = null;
        t.copies = e.attempt;
        t.running++;
        t.setStart(e.attempt, e.at);
        return;
      }
      case 'attempt-started': {
        const t = this.entry(e.task);
        if (!t) return;
        t.startedAt = e.at;
        t.setStart(e.attempt, e.at);
        // One here, as most tasks have at a time; a speculative copy's in startedMore.
        if (t.startedOne === 0) t.startedOne = e.attempt;
        else (t.startedMore ??= new Set()).add(e.attempt);
        return;
      }
      case 'attempt-ended':
        if (e.outcome !== 'released') this.ended(e);
        return;
      case 'task-done': {
        const t = this.entry(e.task);
        if (!t) return;
        t.status = e.status;
        t.host = e.host;
        t.attempts = e.attempts;
        t.copies = e.copies;
        t.won = e.winner;
        t.error = e.error;
        this.settle(e.task, t);
        return;
      }
      case 'task-retried': {
        const t = this.entry(e.task);
        if (t) {
          t.status = 'pending';
          t.lastFailed = true;
        }
        return;
      }
      case 'chunk-formed': {
        // The queued chunk goes on as its rest; the part a slot took keeps its history of failures.
        const from = this.entry(e.from);
        const part = this.entry(e.task);
        if (!from || !part) return;
        from.become(e.rest);
        part.attempts = from.attempts;
        part.error = from.error;
        part.failure = from.failure;
        part.lastFailed = from.lastFailed;
        return;
      }
      case 'chunk-split':
        this.split(e);
        return;
      case 'speculation-lost': {
        const t = e.replaced ? this.entry(e.task) : undefined;
        if (t) (t.stopping ??= new Set()).add(e.attempt);
        return;
      }
      default:
        return;
    }
  }

  /** A run that stopped on an error: the tasks still waiting to run are cancelled with it. */
  cancelWaiting(): void {
    for (const [i, task] of this.planned.entries()) {
      if (!task || this.entries[i] !== undefined || this.settled.has(i)) continue;
      const t = Entry.ofTask(task, 'pending');
      t.index = i;
      this.countedPlanned(t, task);
      this.entries[i] = t;
    }
    for (const t of this.entries) {
      if (!(t instanceof Entry) || t.status !== 'pending') continue;
      t.status = 'cancelled';
      this.recount(t);
    }
  }

  /** Every task's summary, in plan order (with --chunk in frame order), and with --chunk the frames not done. */
  list(): TaskList {
    const tasks: TaskSummary[] = [];
    const n = Math.max(this.entries.length, this.planned.length);
    for (let i = 0; i < n; i++) {
      const t = this.entries[i];
      const task = this.planned[i];
      if (t) tasks.push(summaryOf(t, this.clockOrigin));
      else if (task && this.settled.has(i)) tasks.push(summaryOf(this.settled.entry(i, task), this.clockOrigin));
      else if (task) tasks.push(summaryOf(Entry.ofTask(task, 'pending'), this.clockOrigin));
    }
    if (!tasks.some((t) => t.count !== undefined)) return { tasks };
    const sign = Math.sign(this.step ?? 1);
    tasks.sort((a, b) => (a.frame - b.frame) * sign);
    return { tasks, missingFrames: missingFrames(tasks) };
  }

  /** A task done, once no copy of it runs any more, is kept as numbers (see Settled): nothing changes it after that. */
  private settle(ref: TaskRef, t: Entry): void {
    if (t.status !== 'done' || t.running !== 0) return;
    const task = this.planned[ref.index];
    // A task as planned (not a chunk cut or split as the run went): its frame and tile are the plan's.
    if (task && task.frame === t.frame && (task.tile?.index ?? null) === t.tile && this.settled.keep(ref.index, t))
      this.entries[ref.index] = undefined;
  }

  private ended(e: Ended): void {
    const t = this.entry(e.task);
    if (!t) return;
    const start = t.takeStart(e.attempt) ?? e.at;
    t.running--;
    t.stopping?.delete(e.attempt);
    if (t.startedOne === e.attempt) t.startedOne = 0;
    else t.startedMore?.delete(e.attempt);
    // Lost with its host, whether or not another copy settled the task meanwhile.
    if (e.outcome === 'lost') t.lost++;
    // The losing copy of a speculation: the task was done by another.
    if (e.ignored) return this.settle(e.task, t);
    t.endedAt = e.at;
    t.seconds += (e.at - start) / 1000;
    t.endedStart = start;
    t.attempts = e.attempts;
    t.lastFailed = e.outcome === 'failed';
    switch (e.outcome) {
      case 'done':
        t.host = e.host;
        t.startedAt = start;
        t.error = undefined;
        t.failure = undefined;
        break;
      case 'failed':
        t.error = e.message;
        t.log = e.log;
        t.failure =
          e.stage === undefined
            ? undefined
            : { exitCode: e.exitCode, signal: e.signal, timedOut: e.timedOut, stalled: e.stalled, stage: e.stage };
        break;
      case 'lost':
        t.error = e.message;
        break;
      case 'cancelled':
        break;
    }
    // Not settled: another copy goes on, or it is queued again. Settled: its task-done follows, and a view that
    // writes a line for this event (the terminal's "done" line and its counts) counts it in its status already.
    if (!e.settled) t.status = t.running > (t.stopping?.size ?? 0) ? 'running' : 'pending';
    else t.status = e.settled;
  }

  /**
   * A chunk that failed with some frames done is now its parts (its
   * attempt-ended came just before): the first keeps the chunk's entry,
   * the others are new; each is done by that attempt (a task-done follows)
   * or queued again with its failure.
   */
  private split(e: Extract<SchedulerEvent, { type: 'chunk-split' }>): void {
    const t = this.entry(e.task);
    if (!t) return;
    const start = t.endedStart;
    const { attempts, copies, error, log, failure } = t;
    e.parts.forEach((p, i) => {
      let r: Entry | undefined = t;
      if (i === 0) t.become(p);
      else {
        r = this.entry(p);
        if (!r) return;
        r.copies = copies;
        r.seconds = (e.at - start) / 1000;
      }
      r.host = e.host;
      r.startedAt = start;
      r.endedAt = e.at;
      r.attempts = attempts;
      r.lastFailed = !p.done;
      // A part done has its task-done next (with its winner, this attempt): done from now, as the views count it.
      if (p.done) {
        r.status = 'done';
        r.error = undefined;
        r.failure = undefined;
      } else {
        r.error = error;
        r.log = log;
        r.failure = failure;
      }
    });
  }

  /**
   * The entry of `ref`, made at its first event; none once it is done for
   * good (no event of the scheduler's names a task after that: it is here
   * in case).
   */
  private entry(ref: TaskRef): Entry | undefined {
    const t = this.entries[ref.index];
    if (t) return t;
    if (this.settled.has(ref.index)) return undefined;
    const made = Entry.ofRef(ref);
    made.index = ref.index;
    this.entries[ref.index] = made;
    // A task of the plan is counted (pending) from the start; a chunk's part formed as the run goes, from now.
    const task = this.planned[ref.index];
    if (task) this.countedPlanned(made, task);
    else this.recount(made);
    if (made.chunk && made.chunk.count > 1) this.step ??= (made.chunk.last - made.frame) / (made.chunk.count - 1);
    return made;
  }
}

/** With --chunk: every frame of the tasks not done (failed, cancelled, or never run), in order. */
function missingFrames(tasks: readonly TaskSummary[]): number[] {
  const missing: number[] = [];
  for (const t of tasks) {
    if (t.status === 'done' || t.status === 'skipped') continue;
    const count = t.count ?? 1;
    const step = count > 1 ? (t.last! - t.frame) / (count - 1) : 0;
    for (let i = 0; i < count; i++) missing.push(t.frame + i * step);
  }
  return missing.sort((a, b) => a - b);
}

function summaryOf(t: Entry, clockOrigin: number | undefined): TaskSummary {
  const { status, failure } = t;
  const done = status === 'done';
  return {
    frame: t.frame,
    ...(t.chunk ? { last: t.chunk.last, count: t.chunk.count, label: t.chunk.label } : {}),
    tile: t.tile,
    status,
    host: t.host,
    attempts: t.attempts,
    copies: t.copies,
    // The event's own (frozen) reference: a million done tasks need no copy of it.
    ...(t.won ? { won: t.won } : {}),
    exitCode: done ? 0 : (failure?.exitCode ?? null),
    signal: done ? null : (failure?.signal ?? null),
    timedOut: !done && (failure?.timedOut ?? false),
    stalled: !done && (failure?.stalled ?? false),
    lost: t.lost,
    cancelled: status === 'cancelled',
    ...(!done && failure ? { stage: failure.stage } : {}),
    seconds: round(t.seconds),
    ...(t.startedAt !== null && clockOrigin !== undefined ? { start: round((t.startedAt - clockOrigin) / 1000) } : {}),
    ...(t.endedAt !== null && clockOrigin !== undefined ? { end: round((t.endedAt - clockOrigin) / 1000) } : {}),
    ...(!done && status !== 'skipped' && t.error ? { error: t.error } : {}),
    ...(status === 'failed' && t.log ? { log: t.log } : {}),
  };
}
