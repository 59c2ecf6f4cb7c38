/**
 * The scheduler's public types: what a host implements (SchedulerHost),
 * what an attempt reports (AttemptOutcome), the records the run reads
 * (TaskRecord, HostRecord), the options, and the run-stop reason. Every
 * other file of the scheduler imports from here; nothing here imports them.
 */
import type { Task } from '../plan/plan.js';
import type { HostState, HostStateRecord } from './hostStates.js';

// A task as events name it (see events.ts). Its doc comments are the events' JSON Schema's: they are frozen with it.
export interface TaskRef {
  readonly index: number;
  readonly frame: number;
  readonly tile: number | null;
  readonly label: string;
  /** With --chunk: the task's last frame (`frame` is its first) and how many it renders. */
  readonly last?: number;
  readonly count?: number;
}

// An attempt as events name it: its host, and its number among its task's attempts.
export interface AttemptRef {
  readonly host: string;
  readonly attempt: number;
}

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

/** A host as the run sees it: its state (see hostStates.ts, moved only by the scheduler) and what it did. */
export interface HostRecord extends HostStateRecord {
  tasksDone: number;
  failures: number;
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

/** The hosts a task has failed on when it has failed on none: one shared empty set (a run can hold a million records). */
export const NO_HOSTS: ReadonlySet<string> = new Set();

/** A task's record before it has run (see Scheduler.record). */
export function newTaskRecord(task: Task): TaskRecord {
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
