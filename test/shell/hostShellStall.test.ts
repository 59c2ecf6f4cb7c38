import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, processesStartingWith, uniqueSleep, WAIT_MS, within } from '../helpers/wait.js';
import { LocalSession } from '../../src/hosts/localSession.js';
import type { TaskExit } from '../../src/hostShell/hostShell.js';
import { protocolLine, runLine, stallWatch } from '../../src/hostShell/protocol.js';
import { SHELLS, talkToHostShell } from '../helpers/shells.js';

// --stall on the host: the host shell watches a task's log and outputs with its own clock and stops it
// once nothing has changed for the whole duration. Every test waits for events (a stall, a start, a
// file), never for a guessed time.

let dir: string;
const sessions: LocalSession[] = [];

const never = new AbortController().signal;

/** The shortest --stall distray accepts: the tests wait for it, so the shorter the better. */
const STALL_MS = 1000;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-stall-'));
});
afterEach(async () => {
  // Whatever a failed test left running ends with its file.
  writeFileSync(join(dir, 'go'), '');
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

describe('the --stall watch word', () => {
  it.each([
    [1000, '0.125,8'],
    [90_000, '11.25,8'],
    [300_000, '37.5,8'],
    [1001, '0.125,9'],
    [3_600_000, '450,8'],
  ])('%d ms is checked as %s (ticks of seconds, ticks without a change)', (ms, word) => {
    expect(stallWatch(ms)).toBe(word);
    // Never less than the duration: a stall is not declared early.
    const [tick, n] = word.split(',').map(Number) as [number, number];
    expect(tick * 1000 * n).toBeGreaterThanOrEqual(ms);
  });

  it('is `-` in a run line without --stall', () => {
    expect(runLine(0, 'a', ['true'], ['o.png'])).toBe('run 0 a 1 - o.png true\n');
    expect(runLine(1, 'b', ['true'], [], 2000)).toBe('run 1 b 0 0.25,8 true\n');
  });
});

describe.each(SHELLS)('--stall in the host shell under $name', ({ argv: sh }) => {
  async function shellOf(slots: number): Promise<Awaited<ReturnType<LocalSession['shell']>>> {
    const s = await LocalSession.open('local', dir, {}, slots, 0, sh);
    sessions.push(s);
    return s.shell();
  }

  it('stops a renderer that goes quiet, its whole process group, and says it stalled', async () => {
    const shell = await shellOf(1);
    const marker = uniqueSleep(600);
    // Prints once, then hangs in a child of its own (a plain kill of the renderer would leave it).
    const exit = await within(
      shell.run(0, 'quiet', ['sh', '-c', `echo rendering; ${marker}`], {
        outputs: ['out.png'],
        onStart: undefined,
        stallMs: STALL_MS,
        signal: never,
      }),
      WAIT_MS,
      'the quiet renderer to be stopped as stalled',
    );
    expect(exit).toMatchObject({ code: 143, stalled: true });
    expect(await eventually(() => processesStartingWith(marker).length === 0, 60_000)).toBe(true);
  });

  it('leaves alone renderers that keep printing, or keep writing an output file or into an output directory', async () => {
    const shell = await shellOf(4);
    // Each runs until the test creates `go`, writing every 50 ms meanwhile.
    const loop = (write: string): string[] => ['sh', '-c', `while [ ! -e go ]; do ${write}; sleep 0.05; done`];
    const busy: Array<{ name: string; exit: Promise<TaskExit> }> = [];
    const starts: Array<Promise<void>> = [];
    const start = (lane: number, name: string, write: string, outputs: string[]): void => {
      let started!: () => void;
      starts.push(new Promise<void>((r) => (started = r)));
      busy.push({
        name,
        exit: shell.run(lane, name, loop(write), {
          outputs,
          onStart: () => started(),
          stallMs: STALL_MS,
          signal: never,
        }),
      });
    };
    start(0, 'printing', 'echo frame progress', ['a.png']);
    start(1, 'writing', 'echo x >> b.png', ['b.png']);
    start(2, 'into-dir', 'echo x >> frames/c.png', ['frames']);
    await within(Promise.all(starts), WAIT_MS, 'the three renderers to start');
    // A quiet renderer started after them, with the same --stall: once it is found stalled, the
    // busy ones have been watched at least as long, and would have been stopped if they were quiet.
    const quiet = await within(
      shell.run(3, 'quiet', ['sh', '-c', 'while [ ! -e go ]; do sleep 0.05; done'], {
        outputs: ['d.png'],
        onStart: undefined,
        stallMs: STALL_MS,
        signal: never,
      }),
      WAIT_MS,
      'the quiet renderer to be stopped as stalled',
    );
    expect(quiet).toMatchObject({ code: 143, stalled: true });
    writeFileSync(join(dir, 'go'), '');
    for (const b of busy) {
      const e = await within(b.exit, WAIT_MS, `task ${b.name} to end once go exists`);
      expect({ name: b.name, code: e.code, stalled: e.stalled }).toEqual({ name: b.name, code: 0, stalled: undefined });
    }
  });

  it('leaves a quiet renderer alone without --stall', async () => {
    const shell = await shellOf(2);
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const unwatched = shell.run(0, 'unwatched', ['sh', '-c', 'while [ ! -e go ]; do sleep 0.05; done'], {
      onStart: () => started(),
      signal: never,
    });
    await within(running, WAIT_MS, 'the first task to start');
    const watched = await within(
      shell.run(1, 'watched', ['sh', '-c', 'while [ ! -e go ]; do sleep 0.05; done'], {
        onStart: undefined,
        stallMs: STALL_MS,
        signal: never,
      }),
      WAIT_MS,
      'the watched renderer to be stopped as stalled',
    );
    expect(watched.stalled).toBe(true);
    writeFileSync(join(dir, 'go'), '');
    const ended = await within(unwatched, WAIT_MS, 'the unwatched renderer to end once go exists');
    expect(ended).toMatchObject({ code: 0 });
    expect(ended.stalled).toBeUndefined();
  });

  it('says a task stalled to the shell that adopted it', async () => {
    const first = await shellOf(1);
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const marker = uniqueSleep(600);
    void first.run(0, 'quiet', ['sh', '-c', marker], { onStart: () => started(), stallMs: STALL_MS, signal: never });
    await within(running, WAIT_MS, 'the first task to start');
    // Another shell (as after a reconnect) takes it over, and hears how it ended.
    const second = await shellOf(1);
    expect(await second.adopt('quiet', first.token, { signal: never })).toMatchObject({ code: 143, stalled: true });
    expect(await eventually(() => processesStartingWith(marker).length === 0, 60_000)).toBe(true);
  });

  it('reports the stall on a line of its own, before the exit', async () => {
    const said = await talkToHostShell(
      sh,
      dir,
      [runLine(0, 'one', ['sh', '-c', 'while [ ! -e go ]; do sleep 0.05; done'], ['o.png'], STALL_MS)],
      (lines) => lines.some((l) => l.startsWith(protocolLine('tok-1', 'exit '))),
    );
    expect(said).toEqual(['ready', 'start one', 'stalled one', 'exit one 143 0-'].map((w) => protocolLine('tok-1', w)));
  });
});
