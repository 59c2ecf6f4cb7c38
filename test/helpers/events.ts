import type { RunStartEvent } from '../../src/fold/runEvents.js';
import type { AttemptFacts, SchedulerEvent, TaskRef } from '../../src/scheduler/events.js';

/**
 * The scheduler's events for tests, checked by the compiler: each builder
 * takes the fields a test cares about and fills in the rest with plain
 * defaults (at 0, attempt 1, lane 0, no bytes...). A field renamed, removed
 * or added to an event fails to compile here or where a test names it,
 * instead of passing unnoticed through a cast.
 */

type Of<T extends SchedulerEvent['type']> = Extract<SchedulerEvent, { readonly type: T }>;
/** The event's fields but its type, the `required` ones to be given and the rest optional. */
type Given<T extends SchedulerEvent['type'], K extends keyof Of<T>> = Pick<Of<T>, K> & Partial<Omit<Of<T>, 'type'>>;

/** Task `index` as the plan names a whole frame: frame index + 1. */
export function taskRef(index: number, more: Partial<TaskRef> = {}): TaskRef {
  return { index, frame: index + 1, tile: null, label: `frame ${index + 1}`, ...more };
}

/** A chunk of frames `frame`..`last`, as task `index`. */
export function chunkRef(index: number, frame: number, last: number): TaskRef {
  return { index, frame, tile: null, label: `frames ${frame}-${last}`, last, count: last - frame + 1 };
}

/** The run-start as the run sends it to the folds (with the plan's size and the hosts' slots when given). */
export function runStart(e: Partial<Omit<RunStartEvent, 'type'>> = {}): RunStartEvent {
  return { type: 'run-start', at: 0, tasks: 1, pending: 1, ...e };
}

export function hostState(e: Given<'host-state', 'host' | 'state'>): Of<'host-state'> {
  return { type: 'host-state', at: 0, ...e };
}

export function attemptQueued(e: Given<'attempt-queued', 'task' | 'host'>): Of<'attempt-queued'> {
  return { type: 'attempt-queued', at: 0, attempt: 1, lane: 0, behind: false, speculative: false, ...e };
}

export function attemptStarted(e: Given<'attempt-started', 'task' | 'host'>): Of<'attempt-started'> {
  return { type: 'attempt-started', at: 0, attempt: 1, lane: 0, ...e };
}

/**
 * An attempt-ended: by default the first attempt, counted, that settled its
 * task when it is 'done' and left it to be retried otherwise, with the facts
 * of a renderer that exited 0 (done, released) or never exited by itself.
 */
export function attemptEnded(e: Given<'attempt-ended', 'task' | 'host' | 'outcome'>): Of<'attempt-ended'> {
  const succeeded = e.outcome === 'done' || e.outcome === 'released';
  const facts: AttemptFacts = {
    seconds: 0,
    exitCode: succeeded ? 0 : null,
    signal: null,
    timedOut: false,
    stalled: false,
    bytesIn: 0,
    bytesOut: 0,
  };
  return {
    type: 'attempt-ended',
    at: 0,
    attempt: 1,
    ignored: false,
    attempts: 1,
    settled: e.outcome === 'done' ? 'done' : null,
    ...facts,
    ...e,
  };
}

export function speculationStarted(
  e: Given<'speculation-started', 'task' | 'host' | 'against'>,
): Of<'speculation-started'> {
  return { type: 'speculation-started', at: 0, attempt: 2, reason: 'slow', ...e };
}

export function speculationLost(e: Given<'speculation-lost', 'task' | 'host' | 'winner'>): Of<'speculation-lost'> {
  return { type: 'speculation-lost', at: 0, attempt: 1, ...e };
}

/** A task-done: by default its first attempt on `host` won (done), or none did (failed, cancelled). */
export function taskDone(e: Given<'task-done', 'task' | 'status'>): Of<'task-done'> {
  const host = e.host ?? null;
  return {
    type: 'task-done',
    at: 0,
    host,
    attempts: 1,
    winner: e.status === 'done' && host !== null ? { host, attempt: 1 } : null,
    copies: 1,
    ...e,
  };
}

export function chunkFormed(e: Given<'chunk-formed', 'from' | 'task' | 'rest'>): Of<'chunk-formed'> {
  return { type: 'chunk-formed', at: 0, ...e };
}

export function chunkSplit(e: Given<'chunk-split', 'task' | 'host' | 'parts'>): Of<'chunk-split'> {
  return { type: 'chunk-split', at: 0, attempt: 1, ...e };
}

export function taskRetried(e: Given<'task-retried', 'task'>): Of<'task-retried'> {
  return { type: 'task-retried', at: 0, attempts: 1, ...e };
}

export function runEnd(e: Partial<Omit<Of<'run-end'>, 'type'>> = {}): Of<'run-end'> {
  return { type: 'run-end', at: 0, done: 0, failed: 0, cancelled: 0, skipped: 0, ...e };
}
