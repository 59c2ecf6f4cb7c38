import type { SchedulerEvent } from '../scheduler/events.js';
import type { EndSummary } from './types.js';

/**
 * The events of a whole run: the scheduler's (see scheduler/events.ts) and
 * those of the steps after it. Plain frozen objects, each complete in
 * itself; `at` is the scheduler's clock (milliseconds, performance.now()).
 */

/** A host of the inventory as the run started, with its slots (the ideal makespan needs them). */
export interface HostSlots {
  readonly name: string;
  readonly slots: number;
}

/**
 * The scheduler's run-start, with what the run knows around it: the plan's
 * size and the hosts with their slots. A run with nothing to render still
 * gets one, made by the run.
 */
export type RunStartEvent = Extract<SchedulerEvent, { type: 'run-start' }> & {
  readonly startedAt?: string | undefined;
  readonly frames?: number | undefined;
  readonly tiles?: number | undefined;
  readonly hosts?: readonly HostSlots[] | undefined;
};

/** With --stitch: a frame's tiles were stitched into its image, or could not be. */
export interface FrameStitchedEvent {
  readonly type: 'frame-stitched';
  readonly at: number;
  readonly frame: number;
  readonly tiles: number;
  readonly output: string;
  readonly status: 'stitched' | 'failed';
  readonly error?: string | undefined;
}

/**
 * Files copied once per host, not for a task: the once-per-host inputs as
 * the host joins (`in`), its once-per-host outputs as it leaves or the run
 * ends (`out`).
 */
export interface HostFilesEvent {
  readonly type: 'host-files';
  readonly at: number;
  readonly host: string;
  readonly direction: 'in' | 'out';
  /** Files sent or fetched (inputs already there unchanged are not sent), their bytes, and the seconds it took. */
  readonly files: number;
  readonly bytes: number;
  readonly seconds: number;
}

export type RunEvent =
  Exclude<SchedulerEvent, { type: 'run-start' }> | RunStartEvent | FrameStitchedEvent | HostFilesEvent;

/** Version of the events' shape in the --events stream (`v` on every line): raised only when a field changes meaning or goes. */
export const EVENTS_VERSION = 1;

/** The --events stream's last line: the scheduler's run-end with the run's summary (see endSummary). */
export type RunEndLine = Extract<SchedulerEvent, { type: 'run-end' }> & { readonly summary: EndSummary };

/** What the --events stream holds: the run's events, with the summary on its run-end. */
export type StreamEvent = Exclude<RunEvent, { type: 'run-end' }> | RunEndLine;

/** A line of the --events stream: an event with the stream's version `v` first (see EventStream). */
export type EventLine = {
  [K in StreamEvent['type']]: { readonly v: typeof EVENTS_VERSION } & Extract<StreamEvent, { readonly type: K }>;
}[StreamEvent['type']];
