import { describe, expect, it } from 'vitest';
import { finalLines } from '../../../src/views/failures.js';
import { figureLines, formatBytes } from '../../../src/views/figuresText.js';
import { HostFigures } from '../../../src/fold/hostFigures.js';
import { summarise } from '../../../src/fold/summary.js';

const record = (
  name: string,
  tasksDone: number,
  state = 'done',
): { name: string; state: string; tasksDone: number; failures: number } => ({ name, state, tasksDone, failures: 0 });

function figures(): HostFigures {
  const f = new HostFigures();
  f.add({
    type: 'run-start',
    at: 0,
    tasks: 3,
    pending: 3,
    hosts: [
      { name: 'fast', slots: 2 },
      { name: 'down', slots: 1 },
    ],
  });
  f.add({ type: 'host-state', at: 0, host: 'fast', state: 'ok' });
  for (const [i, s] of [2, 4, 9].entries()) {
    f.add({
      type: 'attempt-ended',
      at: 0,
      task: { index: i, frame: i, tile: null, label: `frame ${i}` },
      attempt: 1,
      host: 'fast',
      outcome: 'done',
      ignored: false,
      attempts: 1,
      settled: 'done',
      seconds: s,
      exitCode: 0,
      signal: null,
      timedOut: false,
      stalled: false,
      bytesIn: 1500,
      bytesOut: 2_500_000,
    });
  }
  f.add({ type: 'run-end', at: 10_000, done: 3, failed: 0, cancelled: 0, skipped: 0 });
  return f;
}

describe('per-host figures in the summary', () => {
  it("adds the figures to the report's hosts and the run's makespan next to its ideal", () => {
    const s = summarise([], [record('fast', 3), record('down', 0, 'unreachable')], {
      exitCode: 0,
      startedAt: new Date(0),
      seconds: 11,
      errors: [],
      figures: figures().figures(),
    });
    expect(s.hosts[0]).toEqual({
      name: 'fast',
      state: 'done',
      tasksDone: 3,
      failures: 0,
      slots: 2,
      lost: 0,
      meanSeconds: 5,
      medianSeconds: 4,
      bytesIn: 4500,
      bytesOut: 7_500_000,
    });
    expect(s.figures).toEqual({ makespan: 10, ideal: 7.5, taskSeconds: 15, slots: 2 });
  });

  it('prints a line per host that worked, and the makespan against the ideal', () => {
    const s = summarise([], [record('fast', 3), record('down', 0, 'unreachable')], {
      exitCode: 0,
      startedAt: new Date(0),
      seconds: 11,
      errors: [],
      figures: figures().figures(),
    });
    expect(figureLines(s)).toEqual([
      'per host: tasks done, failed, mean and median seconds per task, bytes in and out:',
      '  fast  3 done, 0 failed, mean 5.0s, median 4.0s, in 4.5 kB, out 7.5 MB',
      'makespan 10.0s, ideal 7.5s (15.0s of tasks over 2 slots)',
    ]);
    expect(finalLines(s)).toEqual(expect.arrayContaining(figureLines(s)));
    const one = { ...s, figures: { ...s.figures!, slots: 1 } };
    expect(figureLines(one).at(-1)).toBe('makespan 10.0s, ideal 7.5s (15.0s of tasks over 1 slot)');
  });

  it('prints none for a run without figures or where nothing ran', () => {
    const s = summarise([], [record('a', 0)], { exitCode: 0, startedAt: new Date(0), seconds: 0, errors: [] });
    expect(figureLines(s)).toEqual([]);
    expect(
      figureLines(
        summarise([], [record('a', 0)], {
          exitCode: 0,
          startedAt: new Date(0),
          seconds: 0,
          errors: [],
          figures: new HostFigures().figures(),
        }),
      ),
    ).toEqual([]);
  });

  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1500, '1.5 kB'],
    [2_500_000, '2.5 MB'],
    [3_210_000_000, '3.21 GB'],
  ])('formats %i bytes as %s', (n, text) => expect(formatBytes(n)).toBe(text));
});
