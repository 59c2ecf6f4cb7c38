import { describe, expect, it } from 'vitest';
import { finalLines, frameRanges } from '../../../src/report/failures.js';
import type { RunSummary, TaskSummary } from '../../../src/report/summary.js';

const task = (frame: number, status: TaskSummary['status'], error?: string): TaskSummary => ({
  frame,
  tile: null,
  status,
  host: null,
  attempts: 1,
  copies: 1,
  exitCode: null,
  signal: null,
  timedOut: false,
  stalled: false,
  lost: 0,
  cancelled: false,
  seconds: 1,
  ...(error ? { error } : {}),
});

const summary = (over: Partial<RunSummary>): RunSummary => ({
  ok: true,
  exitCode: 0,
  startedAt: '2026-11-30T00:00:00.000Z',
  seconds: 1,
  tasks: [],
  hosts: [],
  errors: [],
  ...over,
});

describe('finalLines', () => {
  it('gives one line for a cause shared by every frame, with the count', () => {
    const tasks = Array.from({ length: 240 }, (_, i) => task(i + 1, 'failed', 'no host was usable'));
    const hosts = [{ name: 'h1', state: 'unreachable', tasksDone: 0, failures: 0, message: 'connection refused' }];
    const lines = finalLines(summary({ exitCode: 3, tasks, hosts }));
    expect(lines.filter((l) => l.includes('no host was usable'))).toEqual(['FAILED 240 tasks (frames 1-240): no host was usable', 'no host was usable:']);
    expect(lines).toContain('  h1: unreachable: connection refused');
    expect(lines.length).toBeLessThan(6);
  });

  it('names hosts that were unusable, lost or taken out even when the run exits 0', () => {
    const hosts = [
      { name: 'h1', state: 'done', tasksDone: 3, failures: 0 },
      { name: 'h2', state: 'unreachable', tasksDone: 0, failures: 0, message: 'connect ECONNREFUSED 127.0.0.1:22302' },
      { name: 'h3', state: 'lost', tasksDone: 1, failures: 0, message: 'connection lost' },
    ];
    const lines = finalLines(summary({ tasks: [task(1, 'done'), task(2, 'done')], hosts }));
    expect(lines[0]).toBe('2 done in 1.0s (exit 0)');
    expect(lines).toContain('2 of 3 hosts were not used to the end:');
    expect(lines).toContain('  h2: unreachable: connect ECONNREFUSED 127.0.0.1:22302');
    expect(lines).toContain('  h3: lost: connection lost');
    expect(lines.join('\n')).not.toContain('h1:');
  });

  it("prints a renderer's output tail once per distinct failure", () => {
    const tail = 'line a\nline b';
    const tasks = [task(3, 'failed', `exit 1 on h1; last output:\n${tail}`), task(4, 'failed', `exit 1 on h2; last output:\n${tail}`)];
    const lines = finalLines(summary({ exitCode: 1, tasks }));
    expect(lines).toContain(`FAILED frame 3: exit 1 on h1; last output:\n${tail}`);
    expect(lines).toContain('FAILED frame 4: exit 1 on h2; same output as frame 3');
  });

  it('writes frames as ranges', () => {
    expect(frameRanges([1, 2, 3, 7, 9, 10])).toBe('frames 1-3, 7, 9-10');
    expect(frameRanges([5])).toBe('frame 5');
  });
});
