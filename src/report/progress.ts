import type { Listr, ListrTaskWrapper } from 'listr2';
import type { TaskRef } from '../scheduler/events.js';
import type { Scheduler, SchedulerEvent } from '../scheduler/scheduler.js';
import { RepeatedOutput } from './failures.js';

/** What the user sees while a run goes: fed by scheduler events, never the other way round. */
export interface Progress {
  /** `unit` is what `total` and `skipped` count: tasks, or with --chunk frames. */
  attach(scheduler: Scheduler, counts: { total: number; skipped: number; unit?: 'tasks' | 'frames' }): void;
  /** A warning or note that is not a task event. */
  note(text: string): void;
  stop(): Promise<void>;
}

/** What a task counts for in the views: its frames (a chunk has several; with --chunk the views count frames). */
function framesIn(task: TaskRef): number {
  return task.count ?? 1;
}

/** The frames of the runs a chunk that failed half-way finished: done, though its attempt failed. */
function framesDone(e: Event<'chunk-split'>): number {
  return e.parts.reduce((n, p) => (p.done ? n + framesIn(p) : n), 0);
}

class Counter {
  done = 0;
  failed = 0;
  private readonly started = Date.now();
  constructor(
    readonly total: number,
    readonly skipped: number,
  ) {}
  line(): string {
    const finished = this.done + this.failed;
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const left = this.total - this.skipped - finished;
    const eta = rate > 0 ? `, ETA ${formatSeconds(left / rate)}` : '';
    return `${this.done + this.skipped}/${this.total} done${this.failed ? `, ${this.failed} failed` : ''}${this.skipped ? ` (${this.skipped} already complete)` : ''}, ${rate.toFixed(2)}/s${eta}`;
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

type Event<T extends SchedulerEvent['type']> = Extract<SchedulerEvent, { type: T }>;

/**
 * Tiles done per frame, for "(3/4 tiles of frame 7)": counted once from the
 * plan's records at the start, then kept by the events.
 */
class TileCounts {
  private readonly byFrame = new Map<number, { done: number; tiles: number }>();
  constructor(records: Scheduler['records']) {
    for (const r of records) {
      if (!r.task.tile) continue;
      let f = this.byFrame.get(r.task.frame);
      if (!f) this.byFrame.set(r.task.frame, (f = { done: 0, tiles: 0 }));
      f.tiles++;
      if (r.status === 'done' || r.status === 'skipped') f.done++;
    }
  }
  done(task: TaskRef): string {
    const f = this.byFrame.get(task.frame);
    if (!f || task.tile === null) return '';
    f.done++;
    return ` (${f.done}/${f.tiles} tiles of frame ${task.frame})`;
  }
}

/**
 * Whether a host-state event is worth a line: every change of state, but
 * not a host's first `connecting` (every host starts so), a reconnecting
 * host's next try, or its closing at the run's end.
 */
function hostLineWorthy(e: Event<'host-state'>, was: string | undefined): boolean {
  if (e.state === 'connecting' && was === undefined) return false;
  if (e.state === was && (e.state === 'reconnecting' || e.state === 'connecting')) return false;
  return !(e.state === 'done' || (e.state === 'cancelled' && was === 'ok'));
}

/** One plain line per event: for CI logs and anything that is not a terminal. Fed by the scheduler's typed events only. */
export class PlainProgress implements Progress {
  private counter = new Counter(0, 0);
  private stopped = false;
  constructor(private readonly write: (line: string) => void) {}

  attach(scheduler: Scheduler, counts: { total: number; skipped: number; unit?: 'tasks' | 'frames' }): void {
    this.counter = new Counter(counts.total, counts.skipped);
    if (counts.skipped) this.write(`distray: ${counts.skipped} of ${counts.total} ${counts.unit ?? 'tasks'} already complete, skipping them (--force renders them again)`);
    const tiles = new TileCounts(scheduler.records);
    const repeated = new RepeatedOutput();
    const states = new Map<string, string>();
    scheduler.on('event', (e) => {
      if (this.stopped) return;
      switch (e.type) {
        case 'host-state': {
          if (hostLineWorthy(e, states.get(e.host))) this.write(`distray: host ${e.host}: ${e.state}${e.reason ? `: ${e.reason}` : ''}`);
          states.set(e.host, e.state);
          return;
        }
        case 'attempt-ended':
          return this.ended(e, tiles, repeated);
        case 'task-retried':
          this.counter.failed -= framesIn(e.task);
          return this.write(`distray: ${e.task.label}: retried from the live page`);
        case 'chunk-split': {
          this.counter.done += framesDone(e);
          const done = e.parts.filter((p) => p.done).map((p) => p.label);
          return this.write(`distray: ${done.join(', ')} done on ${e.host} (of ${e.task.label}, whose attempt failed) [${this.counter.line()}]`);
        }
        case 'speculation-started': {
          const why = e.reason === 'lost' ? `${e.against.host} was lost and may come back` : `expected to end before the attempt on ${e.against.host}`;
          return this.write(`distray: ${e.task.label}: a copy starts on ${e.host} (${why}); the first complete result wins`);
        }
        case 'speculation-lost':
          return this.write(`distray: ${e.task.label}: ${e.winner.host} finished first; stopping the copy on ${e.host}`);
        default:
          return;
      }
    });
  }

  private ended(e: Event<'attempt-ended'>, tiles: TileCounts, repeated: RepeatedOutput): void {
    if (e.ignored) return;
    if (e.outcome === 'done') {
      this.counter.done += framesIn(e.task);
      this.write(`distray: ${e.task.label} done on ${e.host} in ${e.seconds.toFixed(1)}s${tiles.done(e.task)} [${this.counter.line()}]`);
    } else if (e.outcome === 'failed') {
      if (e.settled === 'failed') this.counter.failed += framesIn(e.task);
      const next = e.settled === 'failed' ? 'giving up' : e.settled === 'cancelled' ? 'the run is stopping' : 'will retry';
      const message = repeated.shorten(e.message ?? 'failed', `${e.task.label} attempt ${e.attempts}`);
      this.write(`distray: ${e.task.label} failed on ${e.host} (attempt ${e.attempts}, ${next}): ${message}`);
    } else if (e.outcome === 'lost') {
      this.write(`distray: ${e.task.label} interrupted: ${e.host} was lost; it goes back to the queue`);
    }
  }

  note(text: string): void {
    this.write(`distray: ${text}`);
  }

  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

/** Failures only (after their last retry), for scripts and crontabs; the CLI prints the summary after. */
export class QuietProgress implements Progress {
  constructor(private readonly write: (line: string) => void) {}

  attach(scheduler: Scheduler): void {
    const repeated = new RepeatedOutput();
    scheduler.on('event', (e) => {
      if (e.type === 'attempt-ended' && e.outcome === 'failed' && e.settled === 'failed') {
        this.write(`distray: ${e.task.label} failed on ${e.host} (attempt ${e.attempts}, giving up): ${repeated.shorten(e.message ?? 'failed', e.task.label)}`);
      }
    });
  }

  note(): void {}

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** A host as the live view shows it, kept from the events. */
export interface HostView {
  readonly name: string;
  state: string;
  message?: string | undefined;
  tasksDone: number;
  failures: number;
  /** Attempts (by task/attempt) whose renderer runs there now, and those waiting in a lane behind one (sent ahead). */
  readonly rendering: Map<string, { task: TaskRef; lane: number }>;
  readonly waiting: Map<string, { task: TaskRef; lane: number }>;
}

export function newHostView(name: string): HostView {
  return { name, state: 'connecting', tasksDone: 0, failures: 0, rendering: new Map(), waiting: new Map() };
}

/** Folds one event into the host views; returns the host it changed, if any. */
export function foldHostView(hosts: Map<string, HostView>, e: SchedulerEvent): HostView | undefined {
  if (e.type !== 'host-state' && e.type !== 'attempt-queued' && e.type !== 'attempt-started' && e.type !== 'attempt-ended') return undefined;
  let h = hosts.get(e.host);
  if (!h) hosts.set(e.host, (h = newHostView(e.host)));
  if (e.type === 'host-state') {
    h.state = e.state;
    h.message = e.reason;
    return h;
  }
  const key = `${e.task.index}/${e.attempt}`;
  if (e.type === 'attempt-queued') h.waiting.set(key, { task: e.task, lane: e.lane });
  else if (e.type === 'attempt-started') {
    // A lane renders one task at a time: the one before has ended, though its end may not have been told yet.
    for (const [k, r] of h.rendering) if (r.lane === e.lane) h.rendering.delete(k);
    h.waiting.delete(key);
    h.rendering.set(key, { task: e.task, lane: e.lane });
  } else {
    // Released (the renderer ended, outputs still coming) or any other end: its slot is free.
    h.waiting.delete(key);
    h.rendering.delete(key);
    if (!e.ignored && e.outcome === 'done') h.tasksDone++;
    if (!e.ignored && e.outcome === 'failed') h.failures++;
  }
  return h;
}

/**
 * A host's line in the live view: what renders there now, and what waits
 * behind it in a lane (sent ahead so it starts without a round trip).
 */
export function hostLine(h: HostView): string {
  const labels = (rs: HostView['rendering']): string => [...rs.values()].map((r) => r.task.label.replace('frame ', '')).join(', ');
  const rendering = labels(h.rendering);
  const next = labels(h.waiting);
  const busy = [rendering && `rendering ${rendering}`, next && `next ${next}`].filter(Boolean).join('; ');
  const state = h.state === 'ok' ? busy || 'idle' : h.state;
  return `${h.name}: ${state}, ${h.tasksDone} done${h.failures ? `, ${h.failures} failed` : ''}${h.message && h.state !== 'ok' ? ` (${firstLine(h.message)})` : ''}`;
}

/** listr2's live view, drawing on stderr whatever stdout is. */
function stderrRenderer(base: typeof import('listr2').DefaultRenderer): typeof import('listr2').DefaultRenderer {
  return class extends base {
    static override nonTTY = true;
  };
}

/** A live view on a terminal: a line per host and the overall count, rate and ETA. */
export class TerminalProgress implements Progress {
  /** stderrOnly: stdout is taken (--events -), so the view neither draws on it nor holds back what is written to it. */
  constructor(private readonly options: { stderrOnly?: boolean } = {}) {}

  private list: Listr | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private release: Array<() => void> = [];
  private notes: string[] = [];
  private refreshAll: () => void = () => {};

  attach(scheduler: Scheduler, counts: { total: number; skipped: number; unit?: 'tasks' | 'frames' }): void {
    const counter = new Counter(counts.total, counts.skipped);
    const hostTasks = new Map<string, ListrTaskWrapper<unknown, never, never>>();
    let overall: ListrTaskWrapper<unknown, never, never> | undefined;
    // The hosts as the events tell them, starting from those the run expects.
    const views = new Map<string, HostView>([...scheduler.hosts.keys()].map((name) => [name, newHostView(name)]));
    const refresh = (h?: HostView): void => {
      if (overall) overall.title = counter.line();
      if (h) {
        const t = hostTasks.get(h.name);
        if (t) t.title = hostLine(h);
      }
    };
    const until = (): Promise<void> => new Promise((resolve) => this.release.push(resolve));
    const tasks = ({ Listr, ListrLogger, ProcessOutput, DefaultRenderer }: typeof import('listr2')): Listr => new Listr(
      [
        {
          title: counter.line(),
          task: async (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>): Promise<void> => {
            overall = task;
            await until();
          },
        },
        ...[...views.values()].map((h) => ({
          title: hostLine(h),
          task: async (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>): Promise<void> => {
            hostTasks.set(h.name, task);
            await until();
          },
        })),
      ] as never,
      {
        concurrent: true,
        exitOnError: false,
        registerSignalListeners: false,
        // listr2 falls back to plain lines on stdout when stdout is no terminal: here stderr is the terminal that counts.
        ...(this.options.stderrOnly ? { renderer: stderrRenderer(DefaultRenderer) } : {}),
        rendererOptions: {
          collapseSubtasks: false,
          ...(this.options.stderrOnly ? { logger: new ListrLogger({ useIcons: true, toStderr: [], processOutput: new ProcessOutput(process.stderr, process.stderr) }) } : {}),
        },
      } as never,
    );
    this.refreshAll = () => {
      refresh();
      for (const h of views.values()) refresh(h);
    };
    scheduler.on('event', (e) => {
      if (e.type === 'attempt-ended' && !e.ignored) {
        if (e.outcome === 'done') counter.done += framesIn(e.task);
        // Failures are not kept as notes: the summary at the end lists each of them once.
        if (e.outcome === 'failed' && e.settled === 'failed') counter.failed += framesIn(e.task);
      } else if (e.type === 'task-retried') counter.failed -= framesIn(e.task);
      else if (e.type === 'chunk-split') counter.done += framesDone(e);
      const h = foldHostView(views, e);
      if (h || e.type === 'task-retried') refresh(h);
    });
    // listr2 is loaded only for a terminal: plain and scripted runs start that much sooner.
    this.running = import('listr2')
      .then((listr2) => {
        this.list = tasks(listr2);
        return this.list.run();
      })
      .catch(() => {});
  }

  note(text: string): void {
    this.notes.push(text);
  }

  async stop(): Promise<void> {
    this.refreshAll();
    for (const r of this.release) r();
    await this.running;
    for (const n of this.notes) process.stderr.write(`distray: ${n}\n`);
  }
}
