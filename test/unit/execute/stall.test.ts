import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostRunner } from '../../../src/execute/attempt.js';
import type { HostShell, TaskExit } from '../../../src/hostShell/hostShell.js';
import { LocalSession } from '../../../src/hosts/localSession.js';
import type { HostSession } from '../../../src/hosts/session.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import type { AttemptSlot, AttemptOutcome } from '../../../src/scheduler/scheduler.js';
import { parseRunArgs } from '../../../src/cli/runArgs.js';
import { runConfig, type RunConfig } from '../../../src/config.js';

// The controller's part of --stall: the option's checks, and an attempt the host shell stopped as
// stalled becoming a failure with `stalled` set. The watching itself, and its clock, are the host's
// (test/shell/hostShellStall.test.ts): the controller runs no timer for it, so there is no time
// here to fake.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-stall-attempt-'));
});
afterEach(() => {
  writeFileSync(join(dir, 'go'), '');
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

const slot: AttemptSlot = { lane: 0, started: () => {} };

function planOf(args: string[], outs: string[] = []): Plan {
  return new Plan({ frames: parseFrameSpec('1'), exec: 'sh', args, ins: [], outs, hostNames: ['local'] });
}

describe('an attempt stopped by --stall', () => {
  it('fails with stalled set, a message naming the host and the duration, and its log kept', async () => {
    const plan = planOf(['-c', 'echo loading scene; while [ ! -e go ]; do sleep 0.05; done'], ['f%d.png']);
    const session = await LocalSession.open('local', join(dir, 'work'), {}, 1, 0);
    try {
      const runner = new HostRunner(session, 1, { plan, stallMs: 1000, logDir: join(dir, 'logs'), graceMs: 0 });
      const outcome = await runner.run(plan.tasks[0]!, 1, new AbortController().signal, slot);
      expect(outcome).toMatchObject({
        kind: 'failed',
        failure: {
          stage: 'render',
          stalled: true,
          timedOut: false,
          exitCode: null,
          signal: 'SIGTERM',
          notFound: false,
        },
      });
      const failed = outcome as Extract<AttemptOutcome, { kind: 'failed' }>;
      expect(failed.message).toMatch(
        /^sh stalled on local: no output and no change to its output files for 1s \(--stall\), so it was stopped; last output:\nloading scene$/,
      );
      expect(readFileSync(failed.log!, 'utf8')).toContain('loading scene');
    } finally {
      await session.close();
    }
  });

  it('counts as done when the renderer ended by itself just as it was found stalled', async () => {
    const plan = planOf(['-c', 'true']);
    const exit: TaskExit = { code: 0, wrote: false, outputs: [], stalled: true };
    const shell = {
      token: 'tok',
      run: (): Promise<TaskExit> => Promise.resolve(exit),
      forget: () => {},
    } as unknown as HostShell;
    const session = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () => Promise.resolve(shell),
    } as unknown as HostSession;
    const runner = new HostRunner(session, 1, { plan, stallMs: 1000, logDir: join(dir, 'logs'), graceMs: 0 });
    expect(await runner.run(plan.tasks[0]!, 1, new AbortController().signal, slot)).toEqual({
      kind: 'done',
      bytes: { in: 0, out: 0 },
    });
  });
});

describe('--stall DURATION', () => {
  const inventory = (): string => {
    const path = join(dir, 'farm.yaml');
    writeFileSync(path, 'hosts:\n  - local: true\n');
    return path;
  };
  const config = (stall: string): RunConfig =>
    parseRunArgs({ inventory: inventory(), frames: '1', exec: 'true', args: [], stall });

  it.each([
    ['5m', 300_000],
    ['90', 90_000],
    ['1s', 1000],
  ])('takes %s as %d ms', (text, ms) => {
    expect(config(text).stallMs).toBe(ms);
  });

  it.each([
    ['soon', /--stall "soon": expected a duration such as 90s, 30m or 2h/],
    ['0', /--stall "0" must be more than zero/],
    ['500ms', /--stall "500ms" is too short: at least 1s/],
    ['597h', /--stall "597h" is too long/],
  ])('refuses %s with a usage error', (text, message) => {
    expect(() => config(text)).toThrow(message);
  });

  it('refuses the same from code, in the same words', () => {
    const frames = { first: 1, last: 1, step: 1 };
    expect(() => runConfig({ inventory: inventory(), frames, exec: 'true', stallMs: 500 })).toThrow(
      /--stall "500ms" is too short: at least 1s/,
    );
    expect(() => runConfig({ inventory: inventory(), frames, exec: 'true', stallMs: 0 })).toThrow(
      /--stall "0ms" must be more than zero/,
    );
  });
});
