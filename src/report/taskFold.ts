import type { Task } from '../plan/plan.js';
import type { AttemptRef, SchedulerEvent, TaskRef } from '../scheduler/events.js';
import type { TaskList, TaskSummary } from './summary.js';

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
 * One task as its events have told it so far. Plain fields, no reference
 * to the event objects: a run can hold a million of them to its end.
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
  /** Its attempts that have not ended: the task is running while there is one. */
  running = 0;
  /** When the last attempt that counted for it started: the parts of a chunk it split start then too. */
  endedStart = 0;
  constructor(
    public frame: number,
    public tile: number | null,
    public chunk: ChunkFrames | undefined,
    public status: Status,
  ) {}

  /** Now the task `ref` (a chunk cut down to its rest, or its first part). */
  become(ref: TaskRef): void {
    this.frame = ref.frame;
    this.chunk = chunkOfRef(ref);
  }
}

function chunkOfRef(ref: TaskRef): ChunkFrames | undefined {
  return ref.count !== undefined && ref.last !== undefined ? { last: ref.last, count: ref.count, label: ref.label } : undefined;
}

const round = (s: number): number => Math.round(s * 1000) / 1000;

/** An attempt's key among the live ones: its task and its number (unique within the task). */
const key = (task: TaskRef, attempt: number): string => `${task.index}/${attempt}`;

/**
 * The report's task list, folded from the scheduler's events alone (see
 * scheduler/events.ts): one entry per task, from the plan's tasks as the
 * run starts (`begin`: those complete already are `skipped`), then each
 * event as it comes (`add`), then `list()` for every task's TaskSummary and,
 * with --chunk, the frames not done. Pure: no I/O, no clock (times are the
 * events' `at`), no scheduler record. With --chunk the tasks formed and
 * split as the run goes (chunk-formed, chunk-split) are entries of their
 * own, listed in frame order.
 *
 *     const tasks = new TaskFold();
 *     tasks.begin(records);                       // the plan's tasks, complete ones 'skipped'
 *     scheduler.on('event', (e) => tasks.add(e));
 *     ...
 *     tasks.list(clockOrigin);                    // { tasks: [...], missingFrames? }
 */
export class TaskFold {
  /** By task index: a task's index is its place in the run's tasks (chunk parts are added at the end). */
  private readonly entries: Entry[] = [];
  /** When each attempt that has not ended started (when queued, then when its renderer started). */
  private readonly starts = new Map<string, number>();
  /** With --chunk: the frame spec's step (a chunk's frames are this far apart); the list is in its order. */
  private step: number | undefined;
  private begun = false;

  /**
   * The tasks as the run starts, in plan order: status 'skipped' for those
   * complete already, anything else is to run. Only the first call counts
   * (a run that fails before it starts gives the tasks as they were then).
   */
  begin(tasks: Iterable<{ readonly task: Task; readonly status: string }>): void {
    if (this.begun) return;
    this.begun = true;
    for (const { task, status } of tasks) {
      const c = task.chunk;
      if (c) this.step ??= c.step;
      const chunk = c ? { last: c.first + (c.count - 1) * c.step, count: c.count, label: task.label } : undefined;
      this.entries[task.index] = new Entry(task.frame, task.tile?.index ?? null, chunk, status === 'skipped' ? 'skipped' : 'pending');
    }
  }

  add(e: SchedulerEvent): void {
    switch (e.type) {
      case 'attempt-queued': {
        const t = this.entry(e.task);
        t.status = 'running';
        t.host = e.host;
        t.startedAt = e.at;
        t.endedAt = null;
        t.copies = e.attempt;
        t.running++;
        this.starts.set(key(e.task, e.attempt), e.at);
        return;
      }
      case 'attempt-started': {
        this.entry(e.task).startedAt = e.at;
        this.starts.set(key(e.task, e.attempt), e.at);
        return;
      }
      case 'attempt-ended':
        if (e.outcome !== 'released') this.ended(e);
        return;
      case 'task-done': {
        const t = this.entry(e.task);
        t.status = e.status;
        t.host = e.host;
        t.attempts = e.attempts;
        t.copies = e.copies;
        t.won = e.winner;
        t.error = e.error;
        return;
      }
      case 'task-retried':
        this.entry(e.task).status = 'pending';
        return;
      case 'chunk-formed': {
        // The queued chunk goes on as its rest; the part a slot took keeps its history of failures.
        const from = this.entry(e.from);
        from.become(e.rest);
        const part = this.entry(e.task);
        part.attempts = from.attempts;
        part.error = from.error;
        part.failure = from.failure;
        return;
      }
      case 'chunk-split':
        this.split(e);
        return;
      default:
        return;
    }
  }

  /** A run that stopped on an error: the tasks still waiting to run are cancelled with it. */
  cancelWaiting(): void {
    for (const t of this.entries) if (t?.status === 'pending') t.status = 'cancelled';
  }

  /**
   * Every task's summary, in plan order (with --chunk in frame order), and
   * with --chunk the frames not done. `clockOrigin`: the scheduler clock's
   * reading when the run started, for the tasks' `start` and `end`.
   */
  list(clockOrigin?: number): TaskList {
    const entries = this.entries.filter((t): t is Entry => t !== undefined);
    const chunked = entries.some((t) => t.chunk !== undefined);
    if (chunked) {
      const sign = Math.sign(this.step ?? 1);
      entries.sort((a, b) => (a.frame - b.frame) * sign);
    }
    const tasks = entries.map((t) => summaryOf(t, clockOrigin));
    return chunked ? { tasks, missingFrames: this.missingFrames(entries) } : { tasks };
  }

  private missingFrames(entries: readonly Entry[]): number[] {
    const missing: number[] = [];
    for (const t of entries) {
      if (t.status === 'done' || t.status === 'skipped') continue;
      const count = t.chunk?.count ?? 1;
      const step = count > 1 ? (t.chunk!.last - t.frame) / (count - 1) : 0;
      for (let i = 0; i < count; i++) missing.push(t.frame + i * step);
    }
    return missing.sort((a, b) => a - b);
  }

  private ended(e: Ended): void {
    const k = key(e.task, e.attempt);
    const start = this.starts.get(k) ?? e.at;
    this.starts.delete(k);
    const t = this.entry(e.task);
    t.running--;
    // The losing copy of a speculation: the task was done by another.
    if (e.ignored) return;
    t.endedAt = e.at;
    t.seconds += (e.at - start) / 1000;
    t.endedStart = start;
    t.attempts = e.attempts;
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
        t.failure = e.stage === undefined ? undefined : { exitCode: e.exitCode, signal: e.signal, timedOut: e.timedOut, stalled: e.stalled, stage: e.stage };
        break;
      case 'lost':
        t.error = e.message;
        t.lost++;
        break;
      case 'cancelled':
        break;
    }
    // Not settled: another copy goes on, or it is queued again (a task-done follows a settled one).
    if (e.settled === null) t.status = t.running > 0 ? 'running' : 'pending';
  }

  /**
   * A chunk that failed with some frames done is now its parts (its
   * attempt-ended came just before): the first keeps the chunk's entry,
   * the others are new; each is done by that attempt (a task-done follows)
   * or queued again with its failure.
   */
  private split(e: Extract<SchedulerEvent, { type: 'chunk-split' }>): void {
    const t = this.entry(e.task);
    const start = t.endedStart;
    const { attempts, copies, error, log, failure } = t;
    e.parts.forEach((p, i) => {
      let r = t;
      if (i === 0) t.become(p);
      else {
        r = this.entry(p);
        r.copies = copies;
        r.seconds = (e.at - start) / 1000;
      }
      r.host = e.host;
      r.startedAt = start;
      r.endedAt = e.at;
      r.attempts = attempts;
      // A part done has its task-done next (with its winner, this attempt).
      if (p.done) {
        r.error = undefined;
        r.failure = undefined;
      } else {
        r.error = error;
        r.log = log;
        r.failure = failure;
      }
    });
  }

  /** The entry of `ref`, made when the task is new (a chunk's part, or a task the run began without). */
  private entry(ref: TaskRef): Entry {
    let t = this.entries[ref.index];
    if (!t) {
      t = new Entry(ref.frame, ref.tile, chunkOfRef(ref), 'pending');
      this.entries[ref.index] = t;
      if (t.chunk && t.chunk.count > 1) this.step ??= (t.chunk.last - t.frame) / (t.chunk.count - 1);
    }
    return t;
  }
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
    ...(t.won ? { won: { host: t.won.host, attempt: t.won.attempt } } : {}),
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
