import { describe, expect, it } from 'vitest';
import { countsLine, finalLines, frameRanges } from '../../../src/views/failures.js';
import { endSummary } from '../../../src/fold/summary.js';
import type { RunSummary, TaskSummary } from '../../../src/fold/types.js';

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

const chunk = (frame: number, last: number, status: TaskSummary['status']): TaskSummary => ({
  ...task(frame, status),
  last,
  count: last - frame + 1,
  label: `frames ${frame}-${last}`,
});

describe('countsLine', () => {
  it('counts frames: a chunk counts its frames, and the chunks are named after them', () => {
    const tasks = [chunk(1, 4, 'done'), chunk(5, 8, 'done'), chunk(9, 12, 'done')];
    expect(countsLine({ tasks })).toBe('12 frames done (3 chunks)');
    expect(finalLines(summary({ tasks }))[0]).toBe('12 frames done (3 chunks) in 1.0s (exit 0)');
    // A rerun of a complete chunked job skips its frames, one chunk.
    expect(countsLine({ tasks: [chunk(1, 24, 'skipped')] })).toBe('24 frames skipped (1 chunk)');
    expect(countsLine({ tasks: [chunk(1, 3, 'done'), { ...task(4, 'failed') }, chunk(5, 12, 'cancelled')] })).toBe(
      '3 frames done, 1 failed, 8 cancelled (3 chunks)',
    );
    expect(
      countsLine({
        tasks: [
          { ...task(1, 'done'), tile: 0 },
          { ...task(1, 'failed'), tile: 1 },
        ],
      }),
    ).toBe('1 tile done, 1 failed (0 of 1 frame complete)');
    expect(countsLine({ tasks: [task(1, 'failed'), task(2, 'done')] })).toBe('1 done, 1 failed');
    expect(countsLine({ tasks: [] })).toBe('nothing to do');
  });

  it("gives the --events stream's run-end the counts of frames next to those of tasks", () => {
    const end = endSummary(summary({ tasks: [chunk(1, 4, 'done'), chunk(5, 12, 'failed')] }));
    expect(end.counts).toMatchObject({ done: 1, failed: 1 });
    expect(end.frameCounts).toMatchObject({ done: 4, failed: 8 });
  });
});

describe('countsLine with --tiles', () => {
  it('counts tiles, and the frames all of whose tiles are complete', () => {
    const tiles = [1, 2, 3].flatMap((frame) =>
      [0, 1].map((tile) => ({
        ...task(frame, frame === 2 && tile === 1 ? 'failed' : frame === 3 ? 'skipped' : 'done'),
        tile,
      })),
    );
    expect(countsLine({ tasks: tiles })).toBe('3 tiles done, 1 failed, 2 skipped (2 of 3 frames complete)');
  });
});

describe('finalLines', () => {
  it('counts the frames of chunks that failed the same way, and the tiles of tiles', () => {
    const chunks = [chunk(1, 4, 'failed'), chunk(5, 12, 'failed')].map((t) => ({
      ...t,
      error: 'r exited with status 2',
    }));
    expect(finalLines(summary({ exitCode: 1, tasks: chunks }))).toContain(
      'FAILED frames 1-12 (12 frames): r exited with status 2',
    );
    const tiles = [0, 1, 2].map((tile) => ({ ...task(7, 'failed', 'r exited with status 2'), tile }));
    expect(finalLines(summary({ exitCode: 1, tasks: tiles }))).toContain(
      'FAILED frame 7 (3 tiles): r exited with status 2',
    );
  });

  it('gives one line for a cause shared by every frame, with the count', () => {
    const tasks = Array.from({ length: 240 }, (_, i) => task(i + 1, 'failed', 'no host was usable'));
    const hosts = [{ name: 'h1', state: 'unreachable', tasksDone: 0, failures: 0, message: 'connection refused' }];
    const lines = finalLines(summary({ exitCode: 3, tasks, hosts }));
    expect(lines.filter((l) => l.includes('no host was usable'))).toEqual([
      'FAILED frames 1-240 (240 frames): no host was usable',
      'no host was usable:',
    ]);
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
    expect(finalLines(summary({ tasks: [task(1, 'done')], hosts: hosts.slice(0, 2) }))).toContain(
      '1 of 2 hosts was not used to the end:',
    );
    expect(finalLines(summary({ tasks: [task(1, 'done')], hosts: hosts.slice(1, 2) }))).toContain(
      '1 of 1 host was not used to the end:',
    );
    expect(lines).toContain('  h2: unreachable: connect ECONNREFUSED 127.0.0.1:22302');
    expect(lines).toContain('  h3: lost: connection lost');
    expect(lines.join('\n')).not.toContain('h1:');
  });

  it("prints a renderer's output tail once per distinct failure", () => {
    const tail = 'line a\nline b';
    const tasks = [
      task(3, 'failed', `exit 1 on h1; last output:\n${tail}`),
      task(4, 'failed', `exit 1 on h2; last output:\n${tail}`),
    ];
    const lines = finalLines(summary({ exitCode: 1, tasks }));
    expect(lines).toContain(`FAILED frame 3: exit 1 on h1; last output:\n${tail}`);
    expect(lines).toContain('FAILED frame 4: exit 1 on h2; same output as frame 3');
  });

  it('writes frames as ranges', () => {
    expect(frameRanges([1, 2, 3, 7, 9, 10])).toBe('frames 1-3, 7, 9-10');
    expect(frameRanges([5])).toBe('frame 5');
  });
});
