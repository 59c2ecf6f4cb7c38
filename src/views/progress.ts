import type { Listr, ListrTaskWrapper } from 'listr2';
import type { TaskRef } from '../scheduler/events.js';
import type { Scheduler, SchedulerEvent } from '../scheduler/scheduler.js';
import type { HostFigures } from '../fold/hostFigures.js';
import type { TaskFold } from '../fold/taskFold.js';
import { RepeatedOutput } from './failures.js';
import { visible } from '../text/visible.js';

/**
 * What the run's views count: the run's fold of the scheduler's events (its
 * counts of frames; with --tiles of tiles), subscribed to the scheduler
 * before the view, so that a view reads it with each event already in.
 */
export interface Watched {
  fold: TaskFold;
  /** The run's per-host figures: the live view's host rows count tasks done and failures from them (as the summary does). */
  figures?: HostFigures;
  unit?: 'frames' | 'tiles';
}

/** What the user sees while a run goes: fed by scheduler events, never the other way round. */
export interface Progress {
  attach(scheduler: Scheduler, run: Watched): void;
  /** A warning or note that is not a task event. */
  note(text: string): void;
  stop(): Promise<void>;
}

/** The overall line: frames done of all, failed, already complete, the rate and the time left, as the run's fold counts them. */
class Counter {
  private readonly started = Date.now();
  constructor(private readonly run: Watched) {}
  line(): string {
    const f = this.run.fold.counts().frames;
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? f.done / elapsed : 0;
    const left = f.pending + f.running;
    const eta = rate > 0 ? `, ETA ${formatSeconds(left / rate)}` : '';
    return `${f.done + f.skipped}/${f.total} done${f.failed ? `, ${f.failed} failed` : ''}${f.skipped ? ` (${f.skipped} already complete)` : ''}, ${rate.toFixed(2)}/s${eta}`;
  }
}

/** "45s", "2m05s", "1h07m": seconds rounded up first, so that 119.5 s is "2m00s" (it said "1m60s"). */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const t = Math.ceil(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

type Event<T extends SchedulerEvent['type']> = Extract<SchedulerEvent, { type: T }>;

/** " (3/4 tiles of frame 7)" for a tile done, as the run's fold counts them. */
function tilesLine(fold: TaskFold, task: TaskRef): string {
  const f = task.tile === null ? undefined : fold.tilesOf(task.frame);
  return f ? ` (${f.done}/${f.tiles} tiles of frame ${task.frame})` : '';
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
  private counter: Counter | undefined;
  private stopped = false;
  private readonly write: (line: string) => void;
  /** `write` gets each line with its control characters made visible (a renderer's output, a host's name: see text/visible.ts). */
  constructor(write: (line: string) => void) {
    this.write = (line) => write(visible(line));
  }

  attach(scheduler: Scheduler, run: Watched): void {
    const counter = (this.counter = new Counter(run));
    const start = run.fold.counts().frames;
    if (start.skipped)
      this.write(
        `distray: ${start.skipped} of ${start.total} ${run.unit ?? 'frames'} already complete, skipping them (--force renders them again)`,
      );
    const repeated = new RepeatedOutput();
    const states = new Map<string, string>();
    // Attempts that ended stopped with the run: a chunk split after one kept its finished frames, it did not fail.
    const stopped = new Set<string>();
    scheduler.on('event', (e) => {
      if (this.stopped) return;
      switch (e.type) {
        case 'host-state': {
          if (hostLineWorthy(e, states.get(e.host)))
            this.write(`distray: host ${e.host}: ${e.state}${e.reason ? `: ${e.reason}` : ''}`);
          states.set(e.host, e.state);
          return;
        }
        case 'attempt-ended':
          if (e.outcome === 'cancelled' && !e.ignored) stopped.add(`${e.task.index}/${e.attempt}`);
          return this.ended(e, run.fold, repeated);
        case 'task-retried':
          return this.write(`distray: ${e.task.label}: retried from the live page`);
        case 'chunk-split': {
          const done = e.parts.filter((p) => p.done).map((p) => p.label);
          // Its attempt-ended came just before: cancelled when the run was stopped and the chunk kept what it had finished.
          const why = stopped.delete(`${e.task.index}/${e.attempt}`) ? 'stopped with the run' : 'whose attempt failed';
          return this.write(
            `distray: ${done.join(', ')} done on ${e.host} (of ${e.task.label}, ${why}) [${counter.line()}]`,
          );
        }
        case 'speculation-started': {
          const why =
            e.reason === 'lost'
              ? `${e.against.host} was lost and may come back`
              : `expected to end before the attempt on ${e.against.host}`;
          return this.write(
            `distray: ${e.task.label}: a copy starts on ${e.host} (${why}); the first complete result wins`,
          );
        }
        case 'speculation-lost':
          if (e.replaced)
            return this.write(
              `distray: ${e.task.label}: a copy on ${e.winner.host} is expected to end sooner; stopping the one on ${e.host}`,
            );
          return this.write(
            `distray: ${e.task.label}: ${e.winner.host} finished first; stopping the copy on ${e.host}`,
          );
        default:
          return;
      }
    });
  }

  private ended(e: Event<'attempt-ended'>, fold: TaskFold, repeated: RepeatedOutput): void {
    if (e.ignored) return;
    if (e.outcome === 'done') {
      this.write(
        `distray: ${e.task.label} done on ${e.host} in ${e.seconds.toFixed(1)}s${tilesLine(fold, e.task)} [${this.counter!.line()}]`,
      );
    } else if (e.outcome === 'failed') {
      const next =
        e.settled === 'failed' ? 'giving up' : e.settled === 'cancelled' ? 'the run is stopping' : 'will retry';
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
  private readonly write: (line: string) => void;
  constructor(write: (line: string) => void) {
    this.write = (line) => write(visible(line));
  }

  attach(scheduler: Scheduler): void {
    const repeated = new RepeatedOutput();
    scheduler.on('event', (e) => {
      if (e.type === 'attempt-ended' && e.outcome === 'failed' && e.settled === 'failed') {
        this.write(
          `distray: ${e.task.label} failed on ${e.host} (attempt ${e.attempts}, giving up): ${repeated.shorten(e.message ?? 'failed', e.task.label)}`,
        );
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
  if (
    e.type !== 'host-state' &&
    e.type !== 'attempt-queued' &&
    e.type !== 'attempt-started' &&
    e.type !== 'attempt-ended'
  )
    return undefined;
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
  const labels = (rs: HostView['rendering']): string =>
    [...rs.values()].map((r) => r.task.label.replace('frame ', '')).join(', ');
  const rendering = labels(h.rendering);
  const next = labels(h.waiting);
  const busy = [rendering && `rendering ${rendering}`, next && `next ${next}`].filter(Boolean).join('; ');
  // A removed host finishes what it was given: what it still renders is worth its row.
  const state = h.state === 'ok' ? busy || 'idle' : h.state === 'removed' && busy ? `removed, ${busy}` : h.state;
  // A host's name and message come from elsewhere (the inventory, its login): shown, never acted on by the terminal.
  return visible(
    `${h.name}: ${state}, ${h.tasksDone} done${h.failures ? `, ${h.failures} failed` : ''}${h.message && h.state !== 'ok' ? ` (${firstLine(h.message)})` : ''}`,
  );
}

/** listr2's live view, drawing on stderr whatever stdout is. */
function stderrRenderer(base: typeof import('listr2').DefaultRenderer): typeof import('listr2').DefaultRenderer {
  return class extends base {
    static override nonTTY = true;
  };
}

/** The most rows the live view gives hosts: a farm of a thousand shows its hosts in trouble and a count of the rest. */
export const MAX_HOST_ROWS = 20;

/**
 * How many host rows fit a terminal of `rows` lines: the overall line and
 * the cursor's line stay on screen, since what is taller than the terminal
 * cannot be redrawn in place (it would scroll and repeat).
 */
export function hostRowCap(rows: number | undefined): number {
  return Math.max(1, Math.min(MAX_HOST_ROWS, (rows ?? 24) - 3));
}

/** Which hosts earn one of few rows: those in trouble first, then those changing, then the rest. */
function rank(h: HostView): number {
  if (h.state === 'ok' || h.state === 'done' || h.state === 'cancelled') return 2;
  if (h.state === 'connecting' || h.state === 'removed') return 1;
  return 0;
}

/** "38 ok, 2 lost": the hosts counted by state, the most common first. */
function stateCounts(hosts: readonly HostView[]): string {
  const counts = new Map<string, number>();
  for (const h of hosts) counts.set(h.state, (counts.get(h.state) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
}

/**
 * The live view's host rows, at most `cap`: a row per host (in the order
 * they appeared: the inventory's, then hosts added during the run) when
 * they fit; otherwise the hosts in trouble, then those connecting or
 * removed, then the others, in cap - 1 rows, and a last row that counts the
 * rest by state ("and 40 more hosts: 38 ok, 2 lost").
 */
export function hostRows(hosts: readonly HostView[], cap: number): string[] {
  if (hosts.length <= cap) return hosts.map(hostLine);
  const room = Math.max(0, cap - 1);
  const shown = new Set(
    hosts
      .map((h, order) => ({ h, order }))
      .sort((a, b) => rank(a.h) - rank(b.h) || a.order - b.order)
      .slice(0, room)
      .map((x) => x.h),
  );
  const rest = hosts.filter((h) => !shown.has(h));
  const summary = `${room > 0 ? 'and ' : ''}${rest.length} ${room > 0 ? 'more ' : ''}hosts: ${stateCounts(rest)}`;
  return [...hosts.filter((h) => shown.has(h)).map(hostLine), summary];
}

/** How often the live view redraws what the events changed: often enough to look live, seldom enough not to flicker on a big farm. */
const REDRAW_MS = 100;

/**
 * A live view on a terminal: the overall count, rate and ETA, and a row per
 * host, hosts added during the run included (see hostRows for a farm
 * taller than the terminal).
 */
export class TerminalProgress implements Progress {
  /** stderrOnly: stdout is taken (--events -), so the view neither draws on it nor holds back what is written to it. */
  constructor(private readonly options: { stderrOnly?: boolean } = {}) {}

  private list: Listr | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private release: Array<() => void> = [];
  private notes: string[] = [];
  private redraw: () => void = () => {};
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  attach(scheduler: Scheduler, run: Watched): void {
    const counter = new Counter(run);
    const stream = this.options.stderrOnly ? process.stderr : process.stdout;
    // The hosts as the events tell them, starting from those the run expects; a host added later joins at its first event.
    const views = new Map<string, HostView>([...scheduler.hosts.keys()].map((name) => [name, newHostView(name)]));
    let overall: ListrTaskWrapper<unknown, never, never> | undefined;
    /*
     * listr2 runs the tasks a list was made with, and a task added to a running
     * list never starts: the host rows are a fixed set of tasks made up front,
     * as many as a terminal shows, whose titles are whatever hosts there are
     * now (an empty title draws nothing). Titles are set on the Task itself,
     * without the wrapper's redraw per title, and the overall line's title
     * (through the wrapper) draws them all at once.
     */
    const rowTasks: Array<ListrTaskWrapper<unknown, never, never>['task'] | undefined> = [];
    let changed = true;
    let cap = hostRowCap(stream.rows);
    this.redraw = () => {
      // A terminal made smaller or taller gets as many rows as it shows.
      if (hostRowCap(stream.rows) !== cap) changed = true;
      if (changed) {
        cap = hostRowCap(stream.rows);
        for (const v of views.values()) {
          const f = run.figures?.figure(v.name);
          if (f) Object.assign(v, { tasksDone: f.tasksDone, failures: f.failures });
        }
        const lines = hostRows([...views.values()], cap);
        rowTasks.forEach((t, i) => {
          if (t) t.title = lines[i] ?? '';
        });
        changed = false;
      }
      if (overall) overall.title = counter.line();
    };
    // A task that starts once the run has stopped (a run shorter than loading listr2) draws its last title and ends.
    const until = (): Promise<void> => {
      if (!this.stopped) return new Promise((resolve) => this.release.push(resolve));
      changed = true;
      this.redraw();
      return Promise.resolve();
    };
    const initial = hostRows([...views.values()], cap);
    const tasks = ({ Listr, ListrLogger, ProcessOutput, DefaultRenderer }: typeof import('listr2')): Listr =>
      new Listr(
        [
          {
            title: counter.line(),
            task: async (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>): Promise<void> => {
              overall = task;
              await until();
            },
          },
          ...Array.from({ length: MAX_HOST_ROWS }, (_, i) => ({
            title: initial[i] ?? '',
            task: async (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>): Promise<void> => {
              rowTasks[i] = task.task;
              changed = true;
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
            // One line per row, however long a host's message: the view's height is its row count.
            formatOutput: 'truncate',
            ...(this.options.stderrOnly
              ? {
                  logger: new ListrLogger({
                    useIcons: true,
                    toStderr: [],
                    processOutput: new ProcessOutput(process.stderr, process.stderr),
                  }),
                }
              : {}),
          },
        } as never,
      );
    // Failures are not kept as notes: the summary at the end lists each of them once. The counts are the fold's.
    scheduler.on('event', (e) => {
      if (foldHostView(views, e) || e.type === 'chunk-split') changed = true;
    });
    // Events only mark what changed; the view is drawn at most every REDRAW_MS, however many hosts send them.
    this.timer = setInterval(() => this.redraw(), REDRAW_MS);
    this.timer.unref();
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
    this.stopped = true;
    clearInterval(this.timer);
    this.redraw();
    for (const r of this.release) r();
    await this.running;
    for (const n of this.notes) process.stderr.write(`distray: ${visible(n)}\n`);
  }
}
