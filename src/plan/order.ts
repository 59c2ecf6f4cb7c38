import { UsageError } from '../errors.js';
import type { Task } from './plan.js';

export type TaskOrder = 'sequential' | 'preview';

export function parseOrder(text: string | undefined): TaskOrder {
  if (text === undefined || text === 'sequential' || text === 'preview') return text ?? 'sequential';
  throw new UsageError(`--order "${text}": expected sequential or preview`);
}

/**
 * Positions 0..count-1 in preview order: the first, the last, the middle,
 * then the middles of the gaps left, each round halving them, so the whole
 * range is sampled ever more finely.
 */
export function previewPositions(count: number): number[] {
  if (count <= 0) return [];
  const out = [0];
  if (count === 1) return out;
  out.push(count - 1);
  let gaps: Array<[number, number]> = [[0, count - 1]];
  while (gaps.length > 0) {
    const next: Array<[number, number]> = [];
    for (const [a, b] of gaps) {
      if (b - a < 2) continue;
      const m = Math.floor((a + b) / 2);
      out.push(m);
      next.push([a, m], [m, b]);
    }
    gaps = next;
  }
  return out;
}

/** Indexes of `tasks` in the order they are to be queued; a frame's tiles stay together, in their own order. */
export function taskOrder(tasks: readonly Task[], order: TaskOrder): number[] {
  const all = tasks.map((_, i) => i);
  if (order === 'sequential') return all;
  const frames: number[][] = [];
  let last: number | undefined;
  tasks.forEach((t, i) => {
    if (frames.length === 0 || t.frame !== last) frames.push([]);
    frames.at(-1)!.push(i);
    last = t.frame;
  });
  return previewPositions(frames.length).flatMap((p) => frames[p]!);
}
