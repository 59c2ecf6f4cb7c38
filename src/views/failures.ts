import { figureLines } from './figuresText.js';
import type { RunSummary, TaskSummary } from '../fold/types.js';
import { countTasks } from '../fold/taskFold.js';

const TAIL_MARK = '; last output:\n';

/** A failure message's own words and the renderer's output tail after them, if any. */
export function splitTail(message: string): { head: string; tail: string | undefined } {
  const i = message.indexOf(TAIL_MARK);
  return i < 0
    ? { head: message, tail: undefined }
    : { head: message.slice(0, i), tail: message.slice(i + TAIL_MARK.length) };
}

/**
 * A renderer that fails the same way on every attempt prints the same tail
 * each time: show each distinct tail once, and name where it was shown.
 */
export class RepeatedOutput {
  private readonly seen = new Map<string, string>();

  /** `where` names this failure ("frame 3", "frame 3 attempt 2") for later ones that repeat it. */
  shorten(message: string, where: string): string {
    const { head, tail } = splitTail(message);
    if (tail === undefined) return message;
    const first = this.seen.get(tail);
    if (first === undefined) {
      this.seen.set(tail, where);
      return message;
    }
    return `${head}; same output as ${first}`;
  }
}

function taskLabel(t: TaskSummary): string {
  if (t.label !== undefined) return t.label;
  return `frame ${t.frame}${t.tile !== null ? ` tile ${t.tile}` : ''}`;
}

/** "frames 1-3, 7, 9-12": the frames of many tasks in one line. */
export function frameRanges(frames: readonly number[]): string {
  const sorted = [...new Set(frames)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return `${sorted.length === 1 ? 'frame' : 'frames'} ${parts.join(', ')}`;
}

/** A task's frames: a chunk's are `frame` to `last`, `count` of them. */
function framesOf(t: TaskSummary): number[] {
  if (t.last === undefined || t.count === undefined || t.count < 2) return [t.frame];
  const step = (t.last - t.frame) / (t.count - 1);
  return Array.from({ length: t.count }, (_, i) => t.frame + i * step);
}

/** frameRanges, its first few ranges only. */
function shortRanges(frames: readonly number[]): string {
  const all = frameRanges(frames);
  const parts = all.split(', ');
  return parts.length > 8 ? `${parts.slice(0, 8).join(', ')}, ...` : all;
}

const STATUS_ORDER = ['done', 'failed', 'cancelled', 'skipped', 'running', 'pending'] as const;

/**
 * The counts the summary starts with, in frames (the report's list counted
 * as the run's fold counts it): "12 done"; with --chunk "12 frames done (3
 * chunks)"; with --tiles "7 tiles done, 1 failed".
 */
export function countsLine(summary: Pick<RunSummary, 'tasks'>): string {
  const { tasks, frames } = countTasks(summary.tasks);
  const chunked = summary.tasks.some((t) => t.count !== undefined);
  const tiled = !chunked && summary.tasks.some((t) => t.tile !== null);
  const word = chunked ? 'frame' : tiled ? 'tile' : '';
  const parts = STATUS_ORDER.filter((s) => frames[s] > 0).map(
    (s, i) => `${frames[s]}${i === 0 && word ? ` ${word}${frames[s] === 1 ? '' : 's'}` : ''} ${s}`,
  );
  if (parts.length === 0) return 'nothing to do';
  if (chunked) return `${parts.join(', ')} (${tasks.total} ${tasks.total === 1 ? 'chunk' : 'chunks'})`;
  if (tiled) {
    // Tiles are the tasks, frames what users count: a frame is complete once all its tiles are.
    const incomplete = new Set<number>();
    const all = new Set<number>();
    for (const t of summary.tasks) {
      all.add(t.frame);
      if (t.status !== 'done' && t.status !== 'skipped') incomplete.add(t.frame);
    }
    return `${parts.join(', ')} (${all.size - incomplete.size} of ${all.size} ${all.size === 1 ? 'frame' : 'frames'} complete)`;
  }
  return parts.join(', ');
}

/** Hosts that were not used to the end, whatever the exit status: a run that succeeded on two hosts of three should say so. */
const FINE_STATES = new Set(['done', 'ok']);

/**
 * The lines the CLI prints when a run ends: the counts, each distinct failure
 * once (the same cause for many tasks is one line with their count), and the
 * hosts that were unusable, lost or taken out, with their reason.
 */
/** Failure entries at the end of a run (each a task, or tasks that failed the same way). */
const MAX_FAILURE_LINES = 50;

export function finalLines(summary: RunSummary, options: { figures?: boolean } = {}): string[] {
  const lines = [`${countsLine(summary)} in ${summary.seconds.toFixed(1)}s (exit ${summary.exitCode})`];

  const byCause = new Map<string, TaskSummary[]>();
  for (const t of summary.tasks) {
    if (t.status !== 'failed') continue;
    const key = t.error ?? '';
    const same = byCause.get(key);
    if (same) same.push(t);
    else byCause.set(key, [t]);
  }
  const repeated = new RepeatedOutput();
  // A run of a million tasks can fail a million ways: the first few are listed, the report has them all.
  let listed = 0;
  for (const [cause, tasks] of byCause) {
    if (listed++ === MAX_FAILURE_LINES) {
      const rest = [...byCause.values()].slice(MAX_FAILURE_LINES).reduce((n, ts) => n + ts.length, 0);
      lines.push(`... and ${rest} more failed ${rest === 1 ? 'task' : 'tasks'} (--report FILE lists them all)`);
      break;
    }
    if (tasks.length > 1) {
      const { head, tail } = splitTail(cause);
      // Counted as users count: frames (a chunk's all of them), or tiles with --tiles.
      const frames = tasks.flatMap(framesOf);
      const what = tasks[0]!.tile !== null ? `${tasks.length} tiles` : `${frames.length} frames`;
      lines.push(
        `FAILED ${frameRanges(frames)} (${what}): ${head}${tail === undefined ? '' : `; last output:\n${tail}`}`,
      );
      continue;
    }
    const t = tasks[0]!;
    lines.push(`FAILED ${taskLabel(t)}: ${repeated.shorten(cause, taskLabel(t))}`);
  }
  if (summary.missingFrames !== undefined && summary.missingFrames.length > 0) {
    const n = summary.missingFrames.length;
    lines.push(
      `${n} ${n === 1 ? 'frame' : 'frames'} not done: ${shortRanges(summary.missingFrames)} (run the same command again to render just them)`,
    );
  }
  lines.push(...summary.errors);
  if (options.figures !== false) lines.push(...figureLines(summary));

  const troubled = summary.hosts.filter((h) => !FINE_STATES.has(h.state));
  if (troubled.length > 0) {
    lines.push(
      summary.exitCode === 3
        ? 'no host was usable:'
        : `${troubled.length} of ${summary.hosts.length} ${summary.hosts.length === 1 ? 'host' : 'hosts'} ${troubled.length === 1 ? 'was' : 'were'} not used to the end:`,
    );
    for (const h of troubled) lines.push(`  ${h.name}: ${h.state}${h.message ? `: ${h.message}` : ''}`);
  }
  return lines;
}
