import type { TaskRecord } from '../scheduler/scheduler.js';
import type { FrameRecord } from '../stitch/frames.js';

// The report's shape (--report), and of the --events stream's run-end: what
// the folds of a run's events (taskFold.ts, hostFigures.ts) add up to. The
// JSON Schemas in schemas/ are generated from these types (npm run schemas).

export interface TaskSummary {
  /** Its frame; with --chunk its first frame, `last` its last, `count` how many, and `label` "frames 10-18". */
  frame: number;
  last?: number;
  count?: number;
  label?: string;
  tile: number | null;
  status: TaskRecord['status'];
  host: string | null;
  attempts: number;
  seconds: number;
  /** When its last attempt started and ended, in seconds after the run started. */
  start?: number;
  end?: number;
  error?: string;
  log?: string;
  /** Attempts started for the task, speculative copies included, and the one whose outputs were kept. */
  copies: number;
  won?: { host: string; attempt: number };
  /**
   * How it ended, as fields: the renderer's exit status (0 when done; null
   * when it did not exit by itself), the signal that ended it, whether
   * --timeout stopped it, whether --stall did, how many attempts were lost with their host, and
   * whether the run was stopped before it was done. Of its last failed
   * attempt when it failed; `stage` says where that failed (input, start,
   * render, output).
   */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stalled: boolean;
  lost: number;
  cancelled: boolean;
  stage?: 'input' | 'start' | 'render' | 'output';
}

export interface HostSummary {
  name: string;
  state: string;
  tasksDone: number;
  failures: number;
  message?: string;
  /** Its figures (see fold/hostFigures.ts), from the run's events. */
  slots?: number;
  lost?: number;
  meanSeconds?: number | null;
  medianSeconds?: number | null;
  bytesIn?: number;
  bytesOut?: number;
}

/** The run's makespan next to its ideal: see RunFigures. */
export type FiguresSummary = Omit<RunFigures, 'hosts'>;

export interface RunSummary {
  ok: boolean;
  exitCode: number;
  startedAt: string;
  seconds: number;
  tasks: TaskSummary[];
  hosts: HostSummary[];
  /** With --stitch: per frame, its tiles and its stitched image. */
  frames?: FrameRecord[];
  /**
   * With --chunk: every frame of the run not done (failed, cancelled, or
   * never run), in frame order; empty when every frame is done or was
   * complete already. Each frame is in exactly one task, whose status is
   * the frame's.
   */
  missingFrames?: number[];
  /** Problems that are not one task's: a per-host output that could not be fetched, a usage error. */
  errors: string[];
  figures?: FiguresSummary;
}

/**
 * The report's tasks: one summary per task, in plan order (with --chunk in
 * frame order), and with --chunk every frame not done. A run folds them from
 * its events (see TaskFold in taskFold.ts).
 */
export interface TaskList {
  tasks: TaskSummary[];
  missingFrames?: number[] | undefined;
}

/**
 * What the --events stream's run-end carries: the report without its
 * per-task and per-frame lists (each task has its task-done event, each
 * frame its frame-stitched), with the counts by status instead.
 */
export type EndSummary = Omit<RunSummary, 'tasks' | 'frames'> & {
  counts: Record<TaskSummary['status'], number>;
  frameCounts: Record<TaskSummary['status'], number>;
};

/** One host's state and figures over a run. Seconds are per attempt, from its renderer's start to its outputs in. */
export interface HostFigure {
  name: string;
  /** Its last state (see the host-state event: 'connecting', 'ok', 'lost', 'unreachable', ...), and why in words. */
  state: string;
  message?: string;
  /** Its slots: as given when the run started, else the most it was seen to use. */
  slots: number;
  /** Tasks it completed (a losing speculative copy is not counted). */
  tasksDone: number;
  /** Attempts that failed there (a retry elsewhere may have succeeded). */
  failures: number;
  /** Attempts lost with the host (they went back to the queue, or a copy elsewhere had won meanwhile). */
  lost: number;
  /** Over its completed tasks; null when it completed none. */
  meanSeconds: number | null;
  medianSeconds: number | null;
  /**
   * Bytes sent to it and fetched from it: its attempts' --in and --out
   * copies (every attempt, losing copies too) and its once-per-host inputs
   * and outputs (the host-files event).
   */
  bytesIn: number;
  bytesOut: number;
}

export interface RunFigures {
  hosts: HostFigure[];
  /** Seconds from the scheduler's start to every task ended; null before the run starts. */
  makespan: number | null;
  /** What the makespan would be if the completed tasks' slot time were spread evenly over every usable slot: taskSeconds / slots. */
  ideal: number | null;
  /**
   * The time each completed task held its slot (its renderer's start to the
   * slot's release: the outputs' copy back overlaps the slot's next render),
   * added up.
   */
  taskSeconds: number;
  /** Slots of the hosts that were usable at some point. */
  slots: number;
}
