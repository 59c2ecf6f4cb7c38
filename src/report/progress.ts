import type { Listr, ListrTaskWrapper } from 'listr2';
import type { FinalOutcome, HostRecord, Scheduler, TaskRecord } from '../scheduler/scheduler.js';
import { RepeatedOutput } from './failures.js';

/** What the user sees while a run goes: fed by scheduler events, never the other way round. */
export interface Progress {
  /** `unit` is what `total` and `skipped` count: tasks, or with --chunk frames. */
  attach(scheduler: Scheduler, counts: { total: number; skipped: number; unit?: 'tasks' | 'frames' }): void;
  /** A warning or note that is not a task event. */
  note(text: string): void;
  stop(): Promise<void>;
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

/**
 * The attempt that ended, from its renderer's start to its outputs in: a task
 * that was lost with its host and ran again elsewhere took this long there,
 * not the time since its first try.
 */
export function attemptSeconds(r: TaskRecord): number {
  return r.startedAt !== null && r.endedAt !== null ? (r.endedAt - r.startedAt) / 1000 : r.seconds;
}

/** What a task counts for in the view: its frames (a chunk has several; it is counted in frames). */
function framesIn(r: TaskRecord): number {
  return r.task.chunk?.count ?? 1;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

/** One plain line per event: for CI logs and anything that is not a terminal. */
export class PlainProgress implements Progress {
  private counter = new Counter(0, 0);
  constructor(private readonly write: (line: string) => void) {}

  attach(scheduler: Scheduler, counts: { total: number; skipped: number; unit?: 'tasks' | 'frames' }): void {
    this.counter = new Counter(counts.total, counts.skipped);
    if (counts.skipped) this.write(`distray: ${counts.skipped} of ${counts.total} ${counts.unit ?? 'tasks'} already complete, skipping them (--force renders them again)`);
    scheduler.on('host-state', (h) => this.write(`distray: host ${h.name}: ${h.state}${h.message ? `: ${h.message}` : ''}`));
    // Counts per frame, kept up to date by the events: one pass at the start, constant work per event.
    const byFrame = new Map<number, { done: number; tiles: number }>();
    for (const r of scheduler.records) {
      if (!r.task.tile) continue;
      let f = byFrame.get(r.task.frame);
      if (!f) byFrame.set(r.task.frame, (f = { done: 0, tiles: 0 }));
      f.tiles++;
      if (r.status === 'done' || r.status === 'skipped') f.done++;
    }
    const tilesOf = (r: TaskRecord): string => {
      const f = byFrame.get(r.task.frame);
      return f ? ` (${f.done}/${f.tiles} tiles of frame ${r.task.frame})` : '';
    };
    const repeated = new RepeatedOutput();
    scheduler.on('task-retry', (r) => {
      this.counter.failed--;
      this.write(`distray: ${r.task.label}: retried from the live page`);
    });
    scheduler.on('task-end', (r: TaskRecord, h: HostRecord, o: FinalOutcome) => {
      if (o.kind === 'done') {
        this.counter.done += framesIn(r);
        const f = byFrame.get(r.task.frame);
        if (f && r.task.tile) f.done++;
        this.write(`distray: ${r.task.label} done on ${h.name} in ${attemptSeconds(r).toFixed(1)}s${tilesOf(r)} [${this.counter.line()}]`);
      } else if (o.kind === 'failed') {
        if (r.status === 'failed') this.counter.failed += framesIn(r);
        const next = r.status === 'failed' ? 'giving up' : 'will retry';
        const message = repeated.shorten(o.message, `${r.task.label} attempt ${r.attempts}`);
        this.write(`distray: ${r.task.label} failed on ${h.name} (attempt ${r.attempts}, ${next}): ${message}`);
      } else if (o.kind === 'lost') {
        this.write(`distray: ${r.task.label} interrupted: ${h.name} was lost; it goes back to the queue`);
      }
    });
    scheduler.on('event', (e) => {
      if (e.type === 'speculation-started') {
        const why = e.reason === 'lost' ? `${e.against.host} was lost and may come back` : `expected to end before the attempt on ${e.against.host}`;
        this.write(`distray: ${e.task.label}: a copy starts on ${e.host} (${why}); the first complete result wins`);
      } else if (e.type === 'speculation-lost') {
        this.write(`distray: ${e.task.label}: ${e.winner.host} finished first; stopping the copy on ${e.host}`);
      }
    });
  }

  note(text: string): void {
    this.write(`distray: ${text}`);
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** Failures only (after their last retry), for scripts and crontabs; the CLI prints the summary after. */
export class QuietProgress implements Progress {
  constructor(private readonly write: (line: string) => void) {}

  attach(scheduler: Scheduler): void {
    const repeated = new RepeatedOutput();
    scheduler.on('task-end', (r: TaskRecord, h: HostRecord, o: FinalOutcome) => {
      if (o.kind === 'failed' && r.status === 'failed') {
        this.write(`distray: ${r.task.label} failed on ${h.name} (attempt ${r.attempts}, giving up): ${repeated.shorten(o.message, r.task.label)}`);
      }
    });
  }

  note(): void {}

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A host's line in the live view: what renders there now, and what waits
 * behind it in a lane (sent ahead so it starts without a round trip).
 */
export function hostLine(h: HostRecord): string {
  const labels = (rs: Iterable<TaskRecord>): string => [...rs].map((r) => r.task.label.replace('frame ', '')).join(', ');
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

  attach(scheduler: Scheduler, counts: { total: number; skipped: number }): void {
    const counter = new Counter(counts.total, counts.skipped);
    const hostTasks = new Map<string, ListrTaskWrapper<unknown, never, never>>();
    let overall: ListrTaskWrapper<unknown, never, never> | undefined;
    const refresh = (h?: HostRecord): void => {
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
        ...[...scheduler.hosts.values()].map((h) => ({
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
      for (const h of scheduler.hosts.values()) refresh(h);
    };
    scheduler.on('host-state', (h) => refresh(h));
    scheduler.on('task-start', (_r, h) => refresh(h));
    scheduler.on('task-render', (_r, h) => refresh(h));
    scheduler.on('task-retry', () => {
      counter.failed--;
      refresh();
    });
    // Failures are not kept as notes: the summary at the end lists each of them once.
    scheduler.on('task-end', (r, h, o) => {
      if (o.kind === 'done') counter.done += framesIn(r);
      if (o.kind === 'failed' && r.status === 'failed') counter.failed += framesIn(r);
      refresh(h);
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
