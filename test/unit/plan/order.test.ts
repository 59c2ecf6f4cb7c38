import { describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { parseOrder, previewPositions, taskOrder } from '../../../src/plan/order.js';
import { Plan } from '../../../src/plan/plan.js';

describe('previewPositions', () => {
  it.each([
    [0, []],
    [1, [0]],
    [2, [0, 1]],
    [3, [0, 2, 1]],
    [9, [0, 8, 4, 2, 6, 1, 3, 5, 7]],
    [6, [0, 5, 2, 1, 3, 4]],
  ])('%i positions', (n, want) => {
    expect(previewPositions(n)).toEqual(want);
  });

  it('is a permutation for every count up to 200', () => {
    for (let n = 0; n <= 200; n++) expect([...previewPositions(n)].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
  });
});

describe('taskOrder', () => {
  const plan = (tiles: boolean): Plan =>
    new Plan({
      frames: parseFrameSpec('10,14'),
      exec: 'r',
      args: [],
      ins: [],
      outs: [],
      hostNames: ['x'],
      tiles: tiles ? { grid: { cols: 2, rows: 1 }, size: { width: 4, height: 2 } } : undefined,
    });

  it('keeps the plan order by default', () => {
    expect(taskOrder(plan(false).tasks, 'sequential')).toEqual([0, 1, 2, 3, 4]);
  });

  it("puts first, last and middle frames first, and keeps a frame's tiles together", () => {
    const p = plan(false);
    expect(taskOrder(p.tasks, 'preview').map((i) => p.tasks[i]!.frame)).toEqual([10, 14, 12, 11, 13]);
    const t = plan(true);
    expect(taskOrder(t.tasks, 'preview').map((i) => t.tasks[i]!.label)).toEqual([
      'frame 10 tile 0',
      'frame 10 tile 1',
      'frame 14 tile 0',
      'frame 14 tile 1',
      'frame 12 tile 0',
      'frame 12 tile 1',
      'frame 11 tile 0',
      'frame 11 tile 1',
      'frame 13 tile 0',
      'frame 13 tile 1',
    ]);
  });

  it('refuses an unknown order', () => {
    expect(parseOrder(undefined)).toBe('sequential');
    expect(() => parseOrder('random')).toThrow(/expected sequential or preview/);
  });
});

describe('parseOrder', () => {
  it('reads both orders, sequential by default, and names the choices when refusing', () => {
    expect(parseOrder('sequential')).toBe('sequential');
    expect(parseOrder('preview')).toBe('preview');
    expect(() => parseOrder('')).toThrow('--order "": expected sequential or preview');
    expect(() => parseOrder('Preview')).toThrow('--order "Preview": expected sequential or preview');
  });

  it('has no positions for no frames', () => {
    expect(previewPositions(-3)).toEqual([]);
    expect(taskOrder([], 'preview')).toEqual([]);
  });
});
