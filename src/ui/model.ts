import type { SchedulerEvent, TaskRef } from '../scheduler/events.js';
import { splitTail } from '../views/failures.js';
import { HostFigures as FigureModel } from '../fold/hostFigures.js';
import { TaskFold, type TaskStanding } from '../fold/taskFold.js';

/**
 * What the live page and the HTML report show, folded from the scheduler's
 * events: no I/O and no clock of its own (times are the events' `at`, in
 * seconds after `origin`). The page gets a snapshot when it connects and
 * then the deltas taken with takeDelta(): the entries that changed since.
 */

/** A task as the grid shows it. `retrying`: an attempt failed and it waits to run again. */
export type TaskState = 'queued' | 'running' | 'done' | 'failed' | 'retrying' | 'cancelled' | 'skipped';

export interface TaskView {
  i: number;
  frame: number;
  tile: number | null;
  label: string;
  state: TaskState;
  /** Where its latest attempt went (or the winner's host once done). */
  host: string | null;
  /** Attempts of it live now, not counting one being stopped for a faster copy: more than one while a speculative copy races. */
  live: number;
  /** Attempts started for it in all (retries and copies). */
  copies: number;
  /** Its winning attempt's time, from its renderer's start to its outputs in. */
  seconds: number | null;
  /** Its outputs include an image the page can show. */
  image: boolean;
  /** With --chunk: its last frame and how many it renders (`frame` is its first); the contact sheet has a picture of each. */
  last?: number;
  count?: number;
}

/** One attempt on one host slot, from when its renderer started (one that never started has none): a bar of the timeline. Times in seconds after the run started. */
export interface AttemptBar {
  i: number;
  label: string;
  attempt: number;
  host: string;
  lane: number;
  speculative: boolean;
  queued: number;
  start: number | null;
  /** When the slot was free again (the renderer ended), and when the attempt ended (outputs in). */
  freed: number | null;
  end: number | null;
  outcome: 'waiting' | 'running' | 'collecting' | 'done' | 'failed' | 'lost' | 'cancelled';
  /** The task was settled by another copy when this one ended. */
  ignored: boolean;
}

export interface HostFigures {
  tasksDone: number;
  failures: number;
  meanSeconds: number | null;
  medianSeconds: number | null;
}

export interface HostRow extends HostFigures {
  name: string;
  state: string;
  reason: string | null;
  slots: number;
  busy: number;
}

export interface FailureView {
  i: number;
  label: string;
  host: string;
  attempt: number;
  at: number;
  message: string;
  /** The renderer's last lines of output, when it printed any. */
  tail: string | null;
}

/** The run's counts of frames (with --tiles of tiles: `unit`), as the run's fold has them. */
export interface ProgressView {
  unit: 'frames' | 'tiles';
  total: number;
  skipped: number;
  done: number;
  failed: number;
  cancelled: number;
  running: number;
  /** Seconds after the start, at the latest event; and when the snapshot or delta was made (the page counts on from it between events). */
  at: number;
  now?: number | undefined;
  /** Frames done per second since the first renderer started, and the seconds left at that rate (at `now`). */
  rate: number | null;
  eta: number | null;
}

export interface RunEnd {
  exitCode: number;
  /** The lines the CLI prints at the end. */
  lines: string[];
}

export interface Snapshot {
  title: string;
  startedAt: string;
  /** The tiles of a frame share one picture (their stitched frame): a contact sheet shows it once. */
  perFrame: boolean;
  tasks: TaskView[];
  hosts: HostRow[];
  bars: AttemptBar[];
  failures: FailureView[];
  progress: ProgressView;
  /** The task most recently done with an image. */
  latest: number | null;
  /** Whether failed tasks may be retried now (the run is live). */
  retryable: boolean;
  end: RunEnd | null;
}

/** What changed since the last delta: the snapshot's lists hold only the entries that changed (failures: the new ones). */
export type Delta = Omit<Snapshot, 'title' | 'startedAt' | 'perFrame'>;

export interface ModelTask {
  index: number;
  frame: number;
  tile: number | null;
  label: string;
  skipped: boolean;
  image: boolean;
  /** With --chunk: the frames it renders, the last of them. */
  count?: number | undefined;
  last?: number | undefined;
}

export interface ModelOptions {
  title: string;
  startedAt: Date;
  /** The scheduler clock's reading when the run started (events' `at` are on that clock, in ms). */
  origin: number;
  tasks: readonly ModelTask[];
  hosts: ReadonlyArray<{ name: string; slots: number }>;
  /** With --stitch: a task's picture is its whole frame. */
  perFrame?: boolean;
  /** With --tiles: the counts are of tiles. */
  unit?: 'frames' | 'tiles';
  /**
   * The run's fold of the scheduler's events (fold/taskFold.ts), fed before
   * the model: the tasks' states and the counts are its. Without it the model
   * keeps one of its own, fed by apply().
   */
  fold?: TaskFold;
  /** The scheduler clock, for the snapshots' and deltas' `now`. */
  now?: () => number;
  /** The run's per-host figures (fold/hostFigures.ts), fed before the model; without them the model keeps its own. */
  figures?: FigureModel;
}

/** Failures kept for the page (the newest); the JSON report lists them all. */
export const MAX_FAILURES = 500;

interface HostState {
  row: HostRow;
}

const NO_FIGURES: HostFigures = { tasksDone: 0, failures: 0, meanSeconds: null, medianSeconds: null };

export class RunModel {
  private readonly tasks: TaskView[];
  private readonly hosts = new Map<string, HostState>();
  /** Per-host figures: the run's (the JSON report's and the final summary's), or its own. */
  private readonly figures: FigureModel;
  private readonly ownFigures: boolean;
  private readonly bars = new Map<string, AttemptBar>();
  /** Attempts told to stop for a faster copy (speculation-lost replaced), by bar key, until they end: not counted in their task's `live`. */
  private readonly stopping = new Set<string>();
  private readonly failures: FailureView[] = [];
  /** Attempts sent to a slot whose renderer has not started: drawn once it starts. */
  private readonly waiting = new Map<string, Omit<AttemptBar, 'start' | 'freed' | 'end' | 'outcome' | 'ignored'>>();
  private readonly fold: TaskFold;
  private readonly ownFold: boolean;
  private firstStart: number | null = null;
  private lastAt = 0;
  private latest: number | null = null;
  private end: RunEnd | null = null;
  private finished = false;
  private readonly dirtyTasks = new Set<number>();
  private readonly dirtyHosts = new Set<string>();
  private readonly dirtyBars = new Set<string>();
  private newFailures: FailureView[] = [];
  /** What the last delta said of the run's end, so the next one is made when that changes. */
  private sentEnd = false;
  private sentFinished = false;

  constructor(private readonly options: ModelOptions) {
    this.tasks = options.tasks.map((t) => ({
      i: t.index,
      frame: t.frame,
      tile: t.tile,
      label: t.label,
      state: t.skipped ? 'skipped' : 'queued',
      host: null,
      live: 0,
      copies: 0,
      seconds: null,
      image: t.image,
      ...(t.count !== undefined && t.last !== undefined ? { last: t.last, count: t.count } : {}),
    }));
    for (const h of options.hosts) this.host(h.name, h.slots);
    this.ownFigures = options.figures === undefined;
    this.figures = options.figures ?? new FigureModel();
    this.ownFold = options.fold === undefined;
    if (options.fold) this.fold = options.fold;
    else {
      this.fold = new TaskFold(options.origin);
      this.fold.begin(
        options.tasks.map((t) => ({
          task: {
            index: t.index,
            frame: t.frame,
            tile: t.tile === null ? null : { index: t.tile },
            label: t.label,
            chunk:
              t.count === undefined
                ? undefined
                : {
                    first: t.frame,
                    count: t.count,
                    step: t.count > 1 && t.last !== undefined ? (t.last - t.frame) / (t.count - 1) : 1,
                  },
          },
          status: t.skipped ? 'skipped' : 'pending',
        })),
      );
    }
  }

  /** Folds one scheduler event in: the tasks it names take their state from the run's fold. */
  apply(e: SchedulerEvent): void {
    if (this.ownFold) this.fold.add(e);
    this.event(e);
    if (e.type === 'chunk-formed') this.restate(e.from.index, e.task.index, e.rest.index);
    else if (e.type === 'chunk-split') this.restate(e.task.index, ...e.parts.map((p) => p.index));
    else if ('task' in e) this.restate(e.task.index);
  }

  /** The grid's state of the tasks `indexes`, from how the fold has them. */
  private restate(...indexes: number[]): void {
    for (const i of indexes) {
      const t = this.tasks[i];
      const now = this.fold.standing(i);
      if (!t || !now) continue;
      const state = stateOf(now);
      if (t.state !== state) {
        t.state = state;
        this.dirtyTasks.add(i);
      }
    }
  }

  private event(e: SchedulerEvent): void {
    if (this.ownFigures) this.figures.add(e);
    const at = this.seconds(e.at);
    this.lastAt = Math.max(this.lastAt, at);
    switch (e.type) {
      case 'run-start':
        return;
      case 'host-state': {
        const h = this.host(e.host);
        h.row.state = e.state;
        h.row.reason = e.reason ?? null;
        this.dirtyHosts.add(e.host);
        return;
      }
      case 'attempt-queued': {
        const t = this.task(e.task.index);
        if (!t) return;
        t.host = e.host;
        t.live++;
        t.copies = Math.max(t.copies, e.attempt);
        const h = this.host(e.host);
        if (e.lane >= h.row.slots) h.row.slots = e.lane + 1;
        // Drawn when its renderer starts: one waiting behind the slot's running attempt would cover it.
        this.waiting.set(barKey(t.i, e.attempt), {
          i: t.i,
          label: t.label,
          attempt: e.attempt,
          host: e.host,
          lane: e.lane,
          speculative: e.speculative,
          queued: at,
        });
        this.dirtyTasks.add(t.i);
        return;
      }
      case 'attempt-started': {
        const t = this.task(e.task.index);
        const key = barKey(e.task.index, e.attempt);
        const sent = this.waiting.get(key);
        if (!t || !sent) return;
        this.waiting.delete(key);
        this.firstStart ??= at;
        this.setBar({ ...sent, label: t.label, start: at, freed: null, end: null, outcome: 'running', ignored: false });
        this.busy(sent.host, +1);
        this.dirtyTasks.add(t.i);
        return;
      }
      case 'attempt-ended':
        this.attemptEnded(e, at);
        return;
      case 'speculation-started':
        return;
      case 'speculation-lost': {
        // One stopped to make room for a faster copy no longer carries its task: a task whose other attempts fail meanwhile is retried or failed.
        const t = this.task(e.task.index);
        if (!e.replaced || !t || this.stopping.has(barKey(t.i, e.attempt))) return;
        this.stopping.add(barKey(t.i, e.attempt));
        t.live = Math.max(0, t.live - 1);
        this.dirtyTasks.add(t.i);
        return;
      }
      case 'chunk-formed':
        this.chunkTask(e.rest);
        this.chunkTask(e.task, e.from.index);
        return;
      case 'chunk-split':
        for (const p of e.parts) this.chunkTask(p, e.task.index);
        // The runs of frames it finished are tasks done on its host.
        this.refigure(this.host(e.host));
        return;
      case 'task-retried':
        return;
      case 'task-done': {
        const t = this.task(e.task.index);
        if (!t) return;
        if (e.winner) {
          t.host = e.winner.host;
          const bar = this.bars.get(barKey(t.i, e.winner.attempt));
          if (bar?.start != null && bar.end !== null) t.seconds = bar.end - bar.start;
        }
        if (e.status === 'done' && t.image) this.latest = t.i;
        this.dirtyTasks.add(t.i);
        return;
      }
      case 'run-end':
        this.finished = true;
        return;
    }
  }

  /** The run is over (the summary is known): the page shows it, and retrying is no longer possible. */
  ended(end: RunEnd): void {
    this.finished = true;
    this.end = end;
  }

  /** Sets a host's final state (from the summary). */
  hostEnded(name: string, state: string, reason: string | undefined): void {
    const h = this.host(name);
    h.row.state = state;
    h.row.reason = reason ?? null;
    this.dirtyHosts.add(name);
  }

  snapshot(): Snapshot {
    return {
      title: this.options.title,
      startedAt: this.options.startedAt.toISOString(),
      perFrame: this.options.perFrame ?? false,
      tasks: this.tasks.map((t) => ({ ...t })),
      hosts: [...this.hosts.values()].map((h) => ({ ...h.row })),
      bars: [...this.bars.values()].map((b) => ({ ...b })),
      failures: this.failures.map((f) => ({ ...f })),
      progress: this.progress(),
      latest: this.latest,
      retryable: !this.finished,
      end: this.end,
    };
  }

  /** What changed since the last call (or since the start), or undefined when nothing did. */
  takeDelta(): Delta | undefined {
    if (
      this.dirtyTasks.size + this.dirtyHosts.size + this.dirtyBars.size + this.newFailures.length === 0 &&
      !this.endDirty()
    )
      return undefined;
    const delta: Delta = {
      tasks: [...this.dirtyTasks].map((i) => ({ ...this.tasks[i]! })),
      hosts: [...this.dirtyHosts].flatMap((n) => {
        const h = this.hosts.get(n);
        return h ? [{ ...h.row }] : [];
      }),
      bars: [...this.dirtyBars].flatMap((k) => {
        const b = this.bars.get(k);
        return b ? [{ ...b }] : [];
      }),
      failures: this.newFailures,
      progress: this.progress(),
      latest: this.latest,
      retryable: !this.finished,
      end: this.end,
    };
    this.dirtyTasks.clear();
    this.dirtyHosts.clear();
    this.dirtyBars.clear();
    this.newFailures = [];
    this.sentEnd = this.end !== null;
    this.sentFinished = this.finished;
    return delta;
  }

  private endDirty(): boolean {
    return (this.end !== null) !== this.sentEnd || this.finished !== this.sentFinished;
  }

  private attemptEnded(e: Extract<SchedulerEvent, { type: 'attempt-ended' }>, at: number): void {
    const key = barKey(e.task.index, e.attempt);
    const bar = this.bars.get(key);
    const t = this.task(e.task.index);
    if (!t) return;
    // One that never started is not drawn: it ends with no bar (stopped with the run, or its host lost).
    if (!bar) {
      if (e.outcome !== 'released' && this.waiting.delete(key)) {
        if (!this.stopping.delete(key)) t.live = Math.max(0, t.live - 1);
        this.dirtyTasks.add(t.i);
        if (e.outcome === 'failed' && !e.ignored) this.failed(e, t, this.host(e.host), at);
      }
      return;
    }
    const wasRendering = bar.outcome === 'running';
    if (wasRendering) this.busy(bar.host, -1);
    this.dirtyBars.add(key);
    if (e.outcome === 'released') {
      bar.freed = at;
      bar.outcome = 'collecting';
      return;
    }
    bar.freed ??= at;
    bar.end = at;
    bar.outcome = e.outcome;
    bar.ignored = e.ignored;
    if (!this.stopping.delete(key)) t.live = Math.max(0, t.live - 1);
    this.dirtyTasks.add(t.i);
    const h = this.host(bar.host);
    if (e.outcome === 'done' && !e.ignored) this.refigure(h);
    if (e.outcome === 'failed' && !e.ignored) this.failed(e, t, h, at);
  }

  private failed(e: Extract<SchedulerEvent, { type: 'attempt-ended' }>, t: TaskView, h: HostState, at: number): void {
    this.refigure(h);
    const { head, tail } = splitTail(e.message ?? 'failed');
    const f: FailureView = {
      i: t.i,
      label: t.label,
      host: h.row.name,
      attempt: e.attempt,
      at,
      message: head,
      tail: tail ?? null,
    };
    this.failures.push(f);
    if (this.failures.length > MAX_FAILURES) this.failures.shift();
    this.newFailures.push(f);
  }

  private refigure(h: HostState): void {
    const f = this.figures.figure(h.row.name);
    if (f)
      Object.assign(h.row, {
        tasksDone: f.tasksDone,
        failures: f.failures,
        meanSeconds: f.meanSeconds,
        medianSeconds: f.medianSeconds,
      });
    this.dirtyHosts.add(h.row.name);
  }

  private busy(host: string, by: number): void {
    const h = this.host(host);
    h.row.busy = Math.max(0, h.row.busy + by);
    this.dirtyHosts.add(host);
  }

  private progress(): ProgressView {
    const f = this.fold.counts().frames;
    const now = this.options.now ? this.seconds(this.options.now()) : undefined;
    const elapsed = this.firstStart === null ? 0 : (now ?? this.lastAt) - this.firstStart;
    const rate = elapsed > 0 && f.done > 0 ? f.done / elapsed : null;
    return {
      unit: this.options.unit ?? 'frames',
      total: f.total,
      skipped: f.skipped,
      done: f.done,
      failed: f.failed,
      cancelled: f.cancelled,
      running: f.rendering,
      at: this.lastAt,
      ...(now !== undefined ? { now } : {}),
      rate,
      eta: rate !== null && !this.finished ? (f.pending + f.running) / rate : null,
    };
  }

  private seconds(at: number): number {
    return Math.max(0, (at - this.options.origin) / 1000);
  }

  private task(i: number): TaskView | undefined {
    return this.tasks[i];
  }

  /** With --chunk: a task formed or cut as the run goes (after the chunk `from`), or a queued chunk whose frames changed. */
  private chunkTask(ref: TaskRef, from = ref.index): void {
    const t = this.tasks[ref.index];
    const frames = ref.count !== undefined && ref.last !== undefined ? { last: ref.last, count: ref.count } : {};
    if (t) {
      t.frame = ref.frame;
      t.label = ref.label;
      Object.assign(t, frames);
    } else {
      const image = this.tasks[from]?.image ?? false;
      this.tasks[ref.index] = {
        i: ref.index,
        frame: ref.frame,
        tile: null,
        label: ref.label,
        state: 'queued',
        host: null,
        live: 0,
        copies: 0,
        seconds: null,
        image,
        ...frames,
      };
    }
    this.dirtyTasks.add(ref.index);
  }

  private host(name: string, slots = 1): HostState {
    let h = this.hosts.get(name);
    if (!h) {
      h = { row: { name, state: 'connecting', reason: null, slots, busy: 0, ...NO_FIGURES } };
      this.hosts.set(name, h);
      this.dirtyHosts.add(name);
    }
    return h;
  }

  private setBar(bar: AttemptBar): void {
    const key = barKey(bar.i, bar.attempt);
    this.bars.set(key, bar);
    this.dirtyBars.add(key);
  }
}

/** A task's state on the grid, from how the fold has it: one sent to a host is queued there until its renderer starts. */
function stateOf(t: TaskStanding): TaskState {
  if (t.status === 'running' || t.status === 'pending')
    return t.rendering ? 'running' : t.lastFailed ? 'retrying' : 'queued';
  return t.status;
}

function barKey(i: number, attempt: number): string {
  return `${i}:${attempt}`;
}
