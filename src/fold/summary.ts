import type { TaskRecord } from '../scheduler/scheduler.js';
import { framesOfChunk, lastOf } from '../plan/chunks.js';
import type { RunFigures, RunSummary, TaskList, EndSummary, TaskSummary } from './types.js';
import { countTasks, type StatusCounts } from './taskFold.js';

const round = (s: number): number => Math.round(s * 1000) / 1000;

/** With --chunk, the parts a chunk was cut into are added as the run goes: listed by their frames instead. */
function inFrameOrder(records: readonly TaskRecord[]): readonly TaskRecord[] {
  const step = records.find((r) => r.task.chunk)?.task.chunk?.step;
  if (step === undefined) return records;
  return [...records].sort((a, b) => (a.task.frame - b.task.frame) * Math.sign(step));
}

function missingFrames(records: readonly TaskRecord[]): number[] {
  const missing: number[] = [];
  for (const r of records) {
    if (r.status === 'done' || r.status === 'skipped') continue;
    if (r.task.chunk) for (const f of framesOfChunk(r.task.chunk)) missing.push(f);
    else missing.push(r.task.frame);
  }
  // Frames of a spec with a negative step run downwards; the parts of split chunks are listed after the others.
  return missing.sort((a, b) => a - b);
}

/**
 * The task list read from the scheduler's live records at the end, as the
 * report was made before it was folded from the events: kept for the
 * benchmark's plan measure and as the oracle the fold is tested against
 * (test/unit/fold/taskFold.test.ts).
 */
export function tasksOfRecords(records: readonly TaskRecord[], clockOrigin?: number): TaskList {
  const tasks = inFrameOrder(records).map((r) => ({
    frame: r.task.frame,
    ...(r.task.chunk ? { last: lastOf(r.task.chunk), count: r.task.chunk.count, label: r.task.label } : {}),
    tile: r.task.tile?.index ?? null,
    status: r.status,
    host: r.host,
    attempts: r.attempts,
    copies: r.copies,
    ...(r.won ? { won: { host: r.won.host, attempt: r.won.attempt } } : {}),
    exitCode: r.status === 'done' ? 0 : (r.failure?.exitCode ?? null),
    signal: r.status === 'done' ? null : (r.failure?.signal ?? null),
    timedOut: r.status !== 'done' && (r.failure?.timedOut ?? false),
    stalled: r.status !== 'done' && (r.failure?.stalled ?? false),
    lost: r.lost,
    cancelled: r.status === 'cancelled',
    ...(r.status !== 'done' && r.failure ? { stage: r.failure.stage } : {}),
    seconds: round(r.seconds),
    ...(r.startedAt !== null && clockOrigin !== undefined ? { start: round((r.startedAt - clockOrigin) / 1000) } : {}),
    ...(r.endedAt !== null && clockOrigin !== undefined ? { end: round((r.endedAt - clockOrigin) / 1000) } : {}),
    ...(r.status !== 'done' && r.status !== 'skipped' && r.error ? { error: r.error } : {}),
    ...(r.status === 'failed' && r.log ? { log: r.log } : {}),
  }));
  return records.some((r) => r.task.chunk) ? { tasks, missingFrames: missingFrames(records) } : { tasks };
}

/**
 * The report: `tasks` as a run folds them from its events (a TaskList), or
 * the scheduler's records (see tasksOfRecords); the hosts and the rest.
 */
export function summarise(
  tasks: TaskList | readonly TaskRecord[],
  /** The hosts' states and counts: the figures' hosts (from the events), or the scheduler's records. */
  hosts: Iterable<{ name: string; state: string; tasksDone: number; failures: number; message?: string | undefined }>,
  extra: {
    exitCode: number;
    startedAt: Date;
    seconds: number;
    errors: string[];
    /** The scheduler clock's reading when the run started (for records: their tasks' start and end). */
    clockOrigin?: number;
    /** Per-host figures from the run's events. */
    figures?: RunFigures;
  },
): RunSummary {
  const list = isTaskList(tasks) ? tasks : tasksOfRecords(tasks, extra.clockOrigin);
  const byHost = new Map(extra.figures?.hosts.map((h) => [h.name, h]));
  const summary: RunSummary = {
    ok: extra.exitCode === 0,
    exitCode: extra.exitCode,
    startedAt: extra.startedAt.toISOString(),
    seconds: round(extra.seconds),
    ...(list.missingFrames ? { missingFrames: list.missingFrames } : {}),
    tasks: list.tasks,
    hosts: [...hosts].map((h) => {
      const f = byHost.get(h.name);
      return {
        name: h.name,
        state: h.state,
        tasksDone: h.tasksDone,
        failures: h.failures,
        ...(h.message ? { message: h.message } : {}),
        ...(f
          ? {
              slots: f.slots,
              lost: f.lost,
              meanSeconds: f.meanSeconds,
              medianSeconds: f.medianSeconds,
              bytesIn: f.bytesIn,
              bytesOut: f.bytesOut,
            }
          : {}),
      };
    }),
    errors: extra.errors,
  };
  if (extra.figures) {
    const { makespan, ideal, taskSeconds, slots } = extra.figures;
    summary.figures = { makespan, ideal, taskSeconds, slots };
  }
  return summary;
}

function isTaskList(tasks: TaskList | readonly TaskRecord[]): tasks is TaskList {
  return !Array.isArray(tasks);
}

export function endSummary(summary: RunSummary): EndSummary {
  const rest: Partial<RunSummary> = { ...summary };
  delete rest.tasks;
  delete rest.frames;
  // The fold's counts of the report's list: of tasks (`counts`, as before) and of frames (a chunk counts its frames; with --tiles, tiles).
  const { tasks, frames } = countTasks(summary.tasks);
  const only = ({
    pending,
    running,
    done,
    failed,
    skipped,
    cancelled,
  }: StatusCounts): Record<TaskSummary['status'], number> => ({ pending, running, done, failed, skipped, cancelled });
  return { ...(rest as Omit<RunSummary, 'tasks' | 'frames'>), counts: only(tasks), frameCounts: only(frames) };
}
