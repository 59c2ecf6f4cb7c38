import type { Plan } from '../plan/plan.js';
import type { SchedulerEvent } from '../scheduler/events.js';
import type { FrameRecord } from '../stitch/frames.js';
import { EventStream } from './eventStream.js';
import { HostFigures } from '../fold/hostFigures.js';
import type { HostSlots, RunEvent, RunStartEvent, StreamEvent } from '../fold/runEvents.js';
import { endSummary } from '../fold/summary.js';
import type { RunSummary } from '../fold/types.js';
import { TaskFold } from '../fold/taskFold.js';

/**
 * A run's events, as the run sees them: the scheduler's, with what the run
 * adds (run-start's plan size and hosts, frame-stitched, run-end's
 * summary), kept as per-host figures and the report's task list and, with
 * --events, written as they happen. The scheduler's run-end is held back until the summary is known,
 * so that it is the stream's last line and carries it.
 */
export class RunLog {
  readonly figures = new HostFigures();
  /** The report's tasks, folded from the scheduler's events (the run calls `tasks.begin` with the plan's tasks first). */
  readonly tasks: TaskFold;
  private readonly stream: EventStream | undefined;
  private readonly startFacts: { startedAt: string; frames: number; tiles: number; hosts: HostSlots[] };
  private started = false;
  private ended: Extract<SchedulerEvent, { type: 'run-end' }> | undefined;

  constructor(options: {
    events?: string | undefined;
    plan: Plan;
    hosts: readonly HostSlots[];
    startedAt: Date;
    note: (text: string) => void;
    /** The run's: once aborted, the event stream's end waits less for its reader. */
    signal?: AbortSignal | undefined;
    now?: () => number;
    /** The scheduler clock's reading when the run started: the report's tasks' `start` and `end` count from it. */
    clockOrigin?: number;
    /** A program's listener: every event the --events stream gets, as it happens (the stream's `v` aside). */
    onEvent?: ((e: StreamEvent) => void) | undefined;
  }) {
    this.onEvent = options.onEvent;
    this.note = options.note;
    this.now = options.now ?? (() => performance.now());
    this.tasks = new TaskFold(options.clockOrigin);
    this.stream =
      options.events !== undefined
        ? EventStream.open(options.events, options.note, process.stdout, { signal: options.signal })
        : undefined;
    const { plan } = options;
    const tilesPerFrame = plan.tasks[0]?.tile?.count ?? 1;
    this.startFacts = {
      startedAt: options.startedAt.toISOString(),
      frames: plan.tasks.length / tilesPerFrame,
      tiles: plan.tiled ? tilesPerFrame : 0,
      hosts: options.hosts.map((h) => ({ name: h.name, slots: h.slots })),
    };
  }

  private readonly now: () => number;
  private readonly onEvent: ((e: StreamEvent) => void) | undefined;
  private readonly note: (text: string) => void;

  /** The scheduler's `event` listener. */
  readonly scheduler = (e: SchedulerEvent): void => {
    this.tasks.add(e);
    if (e.type === 'run-start') {
      this.started = true;
      this.publish(Object.freeze({ ...e, ...this.startFacts }));
    } else if (e.type === 'run-end') {
      this.ended = e;
      this.figures.add(e);
    } else this.publish(e);
  };

  /** FrameStitcher's onFrame: a frame stitched, or that could not be. */
  readonly frame = (f: Readonly<FrameRecord>): void => {
    const status = f.status === 'stitched' ? 'stitched' : 'failed';
    this.publish(
      Object.freeze({
        type: 'frame-stitched',
        at: this.now(),
        frame: f.frame,
        tiles: f.tiles,
        output: f.output,
        status,
        ...(f.error ? { error: f.error } : {}),
      }),
    );
  };

  /** Files copied once per host (see HostFilesEvent). */
  readonly hostFiles = (
    host: string,
    direction: 'in' | 'out',
    copied: { files: number; bytes: number; seconds: number },
  ): void => {
    this.publish(Object.freeze({ type: 'host-files', at: this.now(), host, direction, ...copied }));
  };

  /**
   * The run is over: the stream gets its run-end with the summary (and a
   * run-start first, if the scheduler never started: nothing to render, or
   * stopped before), and is closed.
   */
  async finish(summary: RunSummary): Promise<void> {
    if (!this.stream && !this.onEvent) return;
    const at = this.now();
    const brief = endSummary(summary);
    const { done, failed, cancelled, skipped } = brief.counts;
    if (!this.started)
      this.emit(
        Object.freeze({
          type: 'run-start',
          at,
          tasks: summary.tasks.length,
          pending: summary.tasks.length - skipped,
          ...this.startFacts,
        }),
      );
    this.emit(
      Object.freeze({ ...(this.ended ?? { type: 'run-end', at, done, failed, cancelled, skipped }), summary: brief }),
    );
    await this.stream?.close();
  }

  private publish(e: Exclude<RunEvent, { type: 'run-end' }> | RunStartEvent): void {
    this.figures.add(e);
    this.emit(e);
  }

  private emit(e: StreamEvent): void {
    this.stream?.write(e);
    try {
      this.onEvent?.(e);
    } catch (err) {
      // A listener's bug is its own: the run goes on, and says so.
      this.note(`the onEvent listener threw at a ${e.type} event: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
