import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import type { Progress } from '../../../src/views/progress.js';
import type { RunSummary, TaskSummary } from '../../../src/fold/types.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import { run } from '../../../src/run.js';
import { runConfig } from '../../../src/config.js';
import type { RunEvent } from '../../../src/index.js';
import type { SchedulerEvent } from '../../../src/scheduler/events.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const quiet: Progress = { attach: () => {}, note: () => {}, stop: () => Promise.resolve() };

/** A task without `start` and `end`: the stream's reader knows the clock only from run-start on. */
const untimed = ({ start: _s, end: _e, ...rest }: TaskSummary): Omit<TaskSummary, 'start' | 'end'> => rest;

describe('the report of a run, on this machine (no SSH)', () => {
  it('lists the tasks its --events stream folds to, a failed one with the log file of its last attempt', async () => {
    dir = mkdtempSync(join(tmpdir(), 'distray-fold-run-'));
    const inventory = join(dir, 'hosts.yaml');
    writeFileSync(inventory, `hosts:\n  - local: true\n    workdir: ${join(dir, 'wd')}\n`);
    const [report, events, logDir] = [join(dir, 'r.json'), join(dir, 'e.ndjson'), join(dir, 'logs')];
    // Frame 2 fails, saying why; frame 3 was complete already (its output is here).
    writeFileSync(join(dir, 'o3.txt'), 'done before\n');
    const script = 'if [ "$0" = 2 ]; then echo "no scene for frame 2" >&2; exit 3; fi; echo "$0" > "o$0.txt"';
    const config = runConfig({
      inventory,
      frames: { first: 1, last: 4, step: 1 },
      exec: 'sh',
      args: ['-c', script, '%d'],
      outs: [`o%d.txt=${join(dir, 'o%d.txt')}`],
      retries: 1,
      report,
      events,
      logDir,
    });
    const heard: RunEvent[] = [];
    const summary = await run(config, { progress: quiet, onEvent: (e) => heard.push(e) });
    expect(summary.exitCode).toBe(1);
    const written = JSON.parse(readFileSync(report, 'utf8')) as RunSummary;
    expect(written.tasks.map((t) => [t.frame, t.status, t.attempts])).toEqual([
      [1, 'done', 1],
      [2, 'failed', 2],
      [3, 'skipped', 0],
      [4, 'done', 1],
    ]);
    const failed = written.tasks[1]!;
    expect(failed).toMatchObject({
      exitCode: 3,
      stage: 'render',
      error: expect.stringContaining('no scene for frame 2') as unknown,
    });
    expect(failed.log).toBeDefined();
    expect(readFileSync(failed.log!, 'utf8')).toContain('no scene for frame 2');

    // A reader of the stream folds the same list from the plan's tasks and the events alone.
    const lines = readFileSync(events, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SchedulerEvent & { v: number });
    // A program's onEvent heard every line of the stream, in its order: the same events, without the version.
    expect(lines.map(({ v: _v, ...e }) => e)).toEqual(JSON.parse(JSON.stringify(heard)));
    expect(heard.at(-1)).toMatchObject({ type: 'run-end', summary: { counts: { done: 2, failed: 1, skipped: 1 } } });
    const ended = lines.filter((e) => e.type === 'attempt-ended' && e.outcome === 'failed');
    expect(ended.map((e) => e.type === 'attempt-ended' && e.log)).toEqual([
      expect.stringContaining('frame-2'),
      failed.log,
    ]);
    const plan = new Plan({
      frames: parseFrameSpec('1,4'),
      exec: 'sh',
      args: [],
      ins: [],
      outs: ['o%d.txt'],
      hostNames: ['local'],
    });
    const fold = new TaskFold();
    fold.begin(plan.tasks.map((task) => ({ task, status: task.frame === 3 ? 'skipped' : 'pending' })));
    for (const e of lines) fold.add(e);
    expect(fold.list().tasks).toEqual(written.tasks.map(untimed));
    expect(existsSync(join(dir, 'o2.txt'))).toBe(false);
  });
});
