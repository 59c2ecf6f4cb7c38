import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseFrameSpec } from '../../src/plan/frames.js';
import { Plan } from '../../src/plan/plan.js';
import { MAX_DURATION_MS, markComplete, parseDuration, run } from '../../src/run.js';
import { parseRunArgs, type RunArgs } from '../../src/cli/runArgs.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['90', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['250ms', 250],
    ['596h', 596 * 3_600_000],
    [`${MAX_DURATION_MS}ms`, MAX_DURATION_MS],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  // Past 2^31-1 ms a Node.js timer fires at once: every attempt would time out at its start.
  it.each(['597h', `${MAX_DURATION_MS + 1}ms`, '100000000h', '99999999999999999999999999h'])(
    'refuses %s, longer than a timer can wait',
    (text) => {
      expect(() => parseDuration(text)).toThrow(UsageError);
      expect(() => parseDuration(text, '--grace', true)).toThrow(/--grace "[^"]+" is too long: at most 596h/);
    },
  );

  it('refuses zero unless allowed', () => {
    expect(() => parseDuration('0s')).toThrow(/more than zero/);
    expect(parseDuration('0s', '--grace', true)).toBe(0);
  });
});

describe('markComplete', () => {
  it('skips the tasks whose outputs are all present and complete, and only those', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distray-mark-'));
    try {
      mkdirSync(join(dir, 'a'));
      writeFileSync(join(dir, 'a', '1.txt'), 'x');
      writeFileSync(join(dir, 'a', '2.txt'), 'x');
      writeFileSync(join(dir, 'a', '3.txt'), '');
      mkdirSync(join(dir, 'b'));
      writeFileSync(join(dir, 'b', '1.log'), 'x');
      const plan = new Plan({
        frames: parseFrameSpec('1,5'),
        exec: 'r',
        args: [],
        ins: [],
        outs: [`o%d=${dir}/a/%d.txt`, `l%d=${dir}/b/%d.log`],
        hostNames: ['h'],
      });
      const records = plan.tasks.map((t) => Scheduler.record(t));
      await markComplete(plan, records);
      // Frame 1 has both outputs; 2 lacks its log; 3's output is empty; 4 and 5 have nothing.
      expect(records.map((r) => r.status)).toEqual(['skipped', 'pending', 'pending', 'pending', 'pending']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('task records', () => {
  it('share one empty failedOn until a failure, so a million of them cost no million sets', () => {
    const plan = new Plan({ frames: parseFrameSpec('1,2'), exec: 'r', args: [], ins: [], outs: [], hostNames: ['h'] });
    const [a, b] = plan.tasks.map((t) => Scheduler.record(t));
    expect(a!.failedOn).toBe(b!.failedOn);
    expect(a!.failedOn.size).toBe(0);
    // A task keeps its frame and tile; its label and values are made when asked for.
    expect(Object.keys(plan.tasks[0]!).sort()).toEqual(['frame', 'index', 'size', 'tile']);
    expect(plan.tasks[1]!.label).toBe('frame 2');
    expect(plan.tasks[1]!.vars).toEqual({ frame: 2 });
  });
});

describe('--dry-run', () => {
  const quiet = { attach: () => {}, note: () => {}, stop: () => Promise.resolve() };
  async function dryRun(frames: string, more: Partial<RunArgs> = {}): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'distray-dry-'));
    try {
      writeFileSync(join(dir, 'hosts.yaml'), 'hosts:\n  - local: true\n');
      const lines: string[] = [];
      await run(
        parseRunArgs({ inventory: join(dir, 'hosts.yaml'), frames, exec: 'r', args: ['%d'], dryRun: true, ...more }),
        { print: (l) => lines.push(l), progress: quiet },
      );
      return lines;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('lists the tasks in the order they will start, and counts them in words that agree', async () => {
    const preview = await dryRun('1,5', { order: 'preview', outs: ['f%d.png'] });
    const order = preview.filter((l) => l.startsWith('frame ')).map((l) => Number(/^frame (\d+):/.exec(l)![1]));
    expect(order).toHaveLength(5);
    expect(order).not.toEqual([1, 2, 3, 4, 5]);
    expect([...order].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(preview.at(-1)).toBe('5 tasks on 1 host (local x1)');
    expect((await dryRun('1', { outs: ['f%d.png'] })).at(-1)).toBe('1 task on 1 host (local x1)');
  });

  it('says once that the results stay on the hosts when nothing is copied back', async () => {
    const lines = await dryRun('1,2');
    expect(lines.filter((l) => l.includes('stays on the hosts'))).toEqual([
      "no --out given: what the renderers write stays on the hosts, in each one's workdir (add --out FILE to copy results back here)",
    ]);
    expect((await dryRun('1,2', { outs: ['f%d.png'] })).some((l) => l.includes('stays on the hosts'))).toBe(false);
  });
});
