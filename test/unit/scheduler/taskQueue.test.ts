import { describe, expect, it } from 'vitest';
import { TaskQueue } from '../../../src/scheduler/taskQueue.js';

describe('TaskQueue', () => {
  it('takes from the front, anywhere, gives back to the front, and drains in order', () => {
    const q = new TaskQueue([1, 2, 3, 4, 5]);
    expect(q.takeAt(0)).toBe(1);
    expect(q.takeAt(2)).toBe(4);
    expect(q.length).toBe(3);
    expect(q.at(0)).toBe(2);
    expect(q.at(3)).toBeUndefined();
    q.unshift(1);
    q.unshift(0);
    expect(q.findIndex((n) => n === 3)).toBe(3);
    expect(q.findIndex((n) => n === 4)).toBe(-1);
    expect(q.takeAt(9)).toBeUndefined();
    expect(q.drain()).toEqual([0, 1, 2, 3, 5]);
    expect(q.length).toBe(0);
    expect(q.takeAt(0)).toBeUndefined();
  });

  it('keeps its order across the compaction of a long run of takes', () => {
    const n = 100_000;
    const q = new TaskQueue(Array.from({ length: n }, (_, i) => i));
    const taken: number[] = [];
    for (let i = 0; i < n / 2; i++) {
      const x = q.takeAt(0)!;
      taken.push(x);
      if (i % 1000 === 999) {
        q.unshift(x);
        taken.pop();
      }
    }
    expect(q.length).toBe(n - taken.length);
    const rest = q.drain();
    expect([...taken, ...rest]).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
