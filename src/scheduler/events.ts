/**
 * The scheduler's events: plain frozen objects, each complete in itself (no
 * live records, no sets that change later), for the terminal view, the
 * report, a JSON event stream and a browser view. `at` is the scheduler
 * clock's reading (milliseconds; performance.now() in a real run).
 *
 * run-start            the scheduler took its first call: `tasks` in the
 *                      plan, `pending` of them to run (the rest were
 *                      complete already).
 * host-state           a host changed state: 'connecting', 'reconnecting',
 *                      'removed' (taken out of the inventory during the run),
 *                      'ok' (usable), 'lost', 'blocked' (taken out after
 *                      failing different tasks in a row), 'cancelled', or
 *                      why it never became usable ('unreachable', 'auth
 *                      failed', ...); `reason` says why in words.
 * attempt-queued       an attempt of `task` was sent to `host`, slot
 *                      `lane`; `behind` is true when it waits there behind
 *                      the slot's running one; `speculative` when it is a
 *                      second copy of a task running elsewhere.
 * attempt-started      its renderer started on the host.
 * attempt-ended        the attempt ended: `outcome` 'released' (renderer
 *                      done, slot free, outputs still coming: another
 *                      attempt-ended follows), 'done', 'failed', 'lost',
 *                      'cancelled'; `message` for failed and lost;
 *                      `ignored` for the losing copy of a speculation (the
 *                      task was already done elsewhere, or the copy was
 *                      stopped to make room for a faster one). Its facts:
 *                      `seconds` since its renderer started (since it was
 *                      queued if it never started), `exitCode`, `signal`,
 *                      `timedOut`, `stalled`, `stage` (failed only), `bytesIn` and
 *                      `bytesOut` (its --in and --out copies; 0 on a
 *                      'released', whose final attempt-ended has them),
 *                      `log` (failed only: where its renderer's output is
 *                      kept, when it left any).
 * speculation-started  a copy of `task` (`attempt` on `host`) races the
 *                      attempt `against` on another host; `reason` 'slow'
 *                      (expected to end sooner) or 'lost' (its host was
 *                      lost and may yet come back).
 * speculation-lost     `attempt` on `host` lost the race to `winner` and is
 *                      being stopped; with `replaced`, it was stopped to make
 *                      room for `winner`, a copy expected to end sooner that
 *                      is still running (a task runs at most three attempts
 *                      at once).
 * task-done            the task reached its final status ('done',
 *                      'failed', 'cancelled'); `winner` is the attempt
 *                      whose outputs were kept, `copies` how many attempts
 *                      were started for it in all.
 * chunk-formed         with --chunk: a slot took `task`, the first frames
 *                      of the queued chunk `from`; `rest` stays queued.
 * chunk-split          with --chunk: attempt `attempt` of `task` on `host`
 *                      failed with some of its frames done: the chunk is
 *                      now `parts`, each `done` (its frames are in place)
 *                      or queued again.
 * task-retried         a failed task was put back in the queue by
 *                      Scheduler.retry (the live page's retry button);
 *                      `attempts` it had used, which no longer count.
 * run-end              every task has ended; counts by final status.
 */
import type { Task } from '../plan/plan.js';
import type { AttemptFailure, AttemptOutcome, AttemptRef, TaskRef } from './types.js';

export type { AttemptRef, TaskRef } from './types.js';

export type SchedulerEvent =
  | { readonly type: 'run-start'; readonly at: number; readonly tasks: number; readonly pending: number }
  | {
      readonly type: 'host-state';
      readonly at: number;
      readonly host: string;
      readonly state: string;
      readonly reason?: string | undefined;
    }
  | {
      readonly type: 'attempt-queued';
      readonly at: number;
      readonly task: TaskRef;
      readonly attempt: number;
      readonly host: string;
      readonly lane: number;
      readonly behind: boolean;
      readonly speculative: boolean;
    }
  | {
      readonly type: 'attempt-started';
      readonly at: number;
      readonly task: TaskRef;
      readonly attempt: number;
      readonly host: string;
      readonly lane: number;
    }
  | ({
      readonly type: 'attempt-ended';
      readonly at: number;
      readonly task: TaskRef;
      readonly attempt: number;
      readonly host: string;
      readonly outcome: 'released' | 'done' | 'failed' | 'lost' | 'cancelled';
      readonly message?: string | undefined;
      readonly ignored: boolean;
      /** The task's attempts that ran to an outcome so far, this one included (a lost one is not counted). */
      readonly attempts: number;
      /**
       * The status this attempt settled its task in (a task-done follows), or
       * null when it did not: a failed attempt with `settled` null is retried,
       * one with 'failed' gave up, one with 'cancelled' ended with the run.
       */
      readonly settled: 'done' | 'failed' | 'cancelled' | null;
    } & AttemptFacts)
  | {
      readonly type: 'speculation-started';
      readonly at: number;
      readonly task: TaskRef;
      readonly attempt: number;
      readonly host: string;
      readonly against: AttemptRef;
      readonly reason: 'slow' | 'lost';
    }
  | {
      readonly type: 'speculation-lost';
      readonly at: number;
      readonly task: TaskRef;
      readonly attempt: number;
      readonly host: string;
      readonly winner: AttemptRef;
      /** Stopped for a copy expected to end sooner (`winner`, still running), not because the task is done. */
      readonly replaced?: true | undefined;
    }
  | {
      readonly type: 'task-done';
      readonly at: number;
      readonly task: TaskRef;
      readonly status: 'done' | 'failed' | 'cancelled';
      readonly host: string | null;
      readonly attempts: number;
      readonly winner: AttemptRef | null;
      readonly copies: number;
      readonly error?: string | undefined;
    }
  | {
      readonly type: 'chunk-formed';
      readonly at: number;
      readonly from: TaskRef;
      readonly task: TaskRef;
      readonly rest: TaskRef;
    }
  | {
      readonly type: 'chunk-split';
      readonly at: number;
      readonly task: TaskRef;
      readonly attempt: number;
      readonly host: string;
      readonly parts: ReadonlyArray<TaskRef & { readonly done: boolean }>;
    }
  | { readonly type: 'task-retried'; readonly at: number; readonly task: TaskRef; readonly attempts: number }
  | {
      readonly type: 'run-end';
      readonly at: number;
      readonly done: number;
      readonly failed: number;
      readonly cancelled: number;
      readonly skipped: number;
    };

export type SchedulerEventType = SchedulerEvent['type'];

/** How an attempt ended, as fields: on every attempt-ended event. */
export interface AttemptFacts {
  readonly seconds: number;
  /** The renderer's exit status: 0 when it succeeded; null when it did not exit by itself or never ran. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  /** Stopped by --stall (a hung renderer). */
  readonly stalled: boolean;
  /** Where a failed attempt failed. */
  readonly stage?: AttemptFailure['stage'] | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** A failed attempt's log: the file its renderer's output is kept in, when it left any (the report's `log`). */
  readonly log?: string | undefined;
}

/** The facts of an attempt's outcome (pure: the scheduler adds them to attempt-ended). */
export function attemptFacts(outcome: AttemptOutcome, seconds: number): AttemptFacts {
  const bytes = outcome.bytes;
  const failure = outcome.kind === 'failed' ? outcome.failure : undefined;
  const succeeded = outcome.kind === 'done';
  return {
    seconds: Math.round(seconds * 1000) / 1000,
    exitCode: succeeded ? 0 : (failure?.exitCode ?? null),
    signal: failure?.signal ?? null,
    timedOut: failure?.timedOut ?? false,
    stalled: failure?.stalled ?? false,
    ...(failure ? { stage: failure.stage } : {}),
    bytesIn: bytes?.in ?? 0,
    bytesOut: bytes?.out ?? 0,
    ...(outcome.kind === 'failed' && outcome.log !== undefined ? { log: outcome.log } : {}),
  };
}

/** How events name a task: a frozen copy of what a view needs, never the live Task. */
export function refOf(t: Task): TaskRef {
  const c = t.chunk;
  if (c)
    return Object.freeze({
      index: t.index,
      frame: t.frame,
      tile: null,
      label: t.label,
      last: c.first + (c.count - 1) * c.step,
      count: c.count,
    });
  return Object.freeze({ index: t.index, frame: t.frame, tile: t.tile?.index ?? null, label: t.label });
}
