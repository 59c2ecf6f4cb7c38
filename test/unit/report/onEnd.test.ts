import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onEndEnv, runOnEnd } from '../../../src/report/onEnd.js';
import type { RunSummary, TaskSummary } from '../../../src/fold/types.js';
import { eventually } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-onend-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function task(frame: number, status: TaskSummary['status']): TaskSummary {
  return {
    frame,
    tile: null,
    status,
    host: 'h',
    attempts: 1,
    copies: 1,
    exitCode: 0,
    signal: null,
    timedOut: false,
    stalled: false,
    lost: 0,
    cancelled: false,
    seconds: 1,
  };
}

const summary = (n = 3): RunSummary => ({
  ok: false,
  exitCode: 1,
  startedAt: '2026-11-22T10:00:00.000Z',
  seconds: 3,
  tasks: Array.from({ length: n }, (_, i) => task(i, i === 1 ? 'failed' : i === 2 ? 'skipped' : 'done')),
  hosts: [{ name: 'h', state: 'done', tasksDone: 1, failures: 1 }],
  errors: [],
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('--on-end', () => {
  it('runs the command through the shell with the summary on stdin and the counts in its environment', async () => {
    const out = join(dir, 'stdin.json');
    const env = join(dir, 'env');
    const problem = await runOnEnd(`cat > '${out}'; env | grep '^DISTRAY_' | sort > '${env}'`, summary());
    expect(problem).toBeUndefined();
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(summary());
    expect(readFileSync(env, 'utf8').trim().split('\n')).toEqual([
      'DISTRAY_CANCELLED=0',
      'DISTRAY_DONE=1',
      'DISTRAY_EXIT_CODE=1',
      'DISTRAY_FAILED=1',
      'DISTRAY_FRAMES=3',
      'DISTRAY_SKIPPED=1',
      'DISTRAY_TASKS=3',
    ]);
  });

  it('says how the command failed, without throwing', async () => {
    expect(await runOnEnd('exit 4', summary())).toBe('--on-end: "exit 4" exited with status 4');
    expect(await runOnEnd('no-such-command-distray', summary())).toMatch(/status 127 \(command not found\?\)/);
    expect(await runOnEnd('kill -TERM $$', summary())).toBe('--on-end: "kill -TERM $$" was killed by SIGTERM');
  });

  it('is not troubled by a command that does not read a large summary', async () => {
    expect(await runOnEnd('true', summary(20_000))).toBeUndefined();
  });

  it('stops a command that hangs after its time', async () => {
    expect(await runOnEnd('sleep 600', summary(), { timeoutMs: 200 })).toBe(
      '--on-end: "sleep 600" did not end within 0.2s and was stopped',
    );
  });

  it('stops the whole command, what it started in the background too', async () => {
    const pidFile = join(dir, 'pid');
    const stop = new AbortController();
    const running = runOnEnd(
      `sleep 600 & echo $! > '${pidFile}.tmp'; mv '${pidFile}.tmp' '${pidFile}'; wait`,
      summary(),
      { signal: stop.signal },
    );
    expect(await eventually(() => existsSync(pidFile), 60_000)).toBe(true);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(pid)).toBe(true);
    stop.abort();
    expect(await running).toMatch(/was stopped$/);
    expect(await eventually(() => !alive(pid), 30_000)).toBe(true);
  });

  it('names the counts as the summary has them', () => {
    expect(onEndEnv({ ...summary(0), exitCode: 130 })).toMatchObject({
      DISTRAY_EXIT_CODE: '130',
      DISTRAY_DONE: '0',
      DISTRAY_TASKS: '0',
    });
    // With --chunk the counts are of frames, DISTRAY_TASKS of tasks.
    const chunk = (frame: number, last: number, status: TaskSummary['status']): TaskSummary => ({
      ...summary().tasks[0]!,
      frame,
      last,
      count: last - frame + 1,
      label: `frames ${frame}-${last}`,
      status,
    });
    expect(onEndEnv({ ...summary(), tasks: [chunk(1, 4, 'done'), chunk(5, 12, 'failed')] })).toMatchObject({
      DISTRAY_DONE: '4',
      DISTRAY_FAILED: '8',
      DISTRAY_FRAMES: '12',
      DISTRAY_TASKS: '2',
    });
  });
});
