import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, WAIT_MS, within } from '../helpers/wait.js';
import { LocalSession } from '../../src/hosts/localSession.js';
import { EXIT_NOT_STARTED, protocolLine, runLine } from '../../src/hostShell/protocol.js';
import { SHELLS, talkToHostShell } from '../helpers/shells.js';

// The host shell's protocol (the header of hostShell/hostShell.sh) run by the local sh: lanes, leases, adoption, retirement.

let dir: string;
const sessions: LocalSession[] = [];

let sh: readonly string[] = ['sh'];

async function session(slots: number): Promise<LocalSession> {
  const s = await LocalSession.open('local', dir, {}, slots, 0, sh);
  sessions.push(s);
  return s;
}

const never = new AbortController().signal;

/** A shell command that waits until `file` (relative to the workdir) exists: tasks end when the test says, not after a guessed time. */
const untilExists = (file: string): string => `while [ ! -e ${file} ]; do sleep 0.02; done`;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-hostshell-'));
});
afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  // A host shell may still be ending, removing its run directory meanwhile.
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

describe.each(SHELLS)('host shell under $name', ({ argv }) => {
  beforeEach(() => {
    sh = argv;
  });

  it('runs a lane’s tasks one after another, the queued one starting as the first ends', async () => {
    const shell = await (await session(1)).shell();
    const events: string[] = [];
    const script = 'echo "$0 begin" >> order.log; sleep 0.3; echo "$0 end" >> order.log';
    const a = shell.run(0, 'a', ['sh', '-c', script, 'a'], { onStart: () => events.push('start a'), signal: never });
    const b = shell.run(0, 'b', ['sh', '-c', script, 'b'], {
      outputs: ['out/b.txt'],
      onStart: () => events.push('start b'),
      signal: never,
    });
    const [ea, eb] = await Promise.all([a, b]);
    expect(ea).toMatchObject({ code: 0, wrote: false, outputs: [] });
    expect(eb).toMatchObject({ code: 0, wrote: false, outputs: ['missing'] });
    expect(events).toEqual(['start a', 'start b']);
    expect(readFileSync(join(dir, 'order.log'), 'utf8')).toBe('a begin\na end\nb begin\nb end\n');
    // The output's directory was made before b started.
    expect(existsSync(join(dir, 'out'))).toBe(true);
  });

  it('takes a lease per task, so a second shell on the host waits while the first runs one', async () => {
    const first = await (await session(1)).shell();
    const second = await (await session(1)).shell();
    // x holds the lease from its start until the test lets it end: no race with y, however slow the machine.
    let xStarted!: () => void;
    const started = new Promise<void>((resolve) => (xStarted = resolve));
    const x = first.run(0, 'x', ['sh', '-c', `${untilExists('go')}; echo x >> order.log`], {
      onStart: () => xStarted(),
      signal: never,
    });
    await within(started, WAIT_MS, 'task x to start');
    const y = second.run(0, 'y', ['sh', '-c', 'echo y >> order.log'], { signal: never });
    // y is queued on the lease now (it cannot have started: x has not ended). Let x end.
    writeFileSync(join(dir, 'go'), '');
    expect((await x).code).toBe(0);
    expect((await y).code).toBe(0);
    // The host's only lease was the first shell's until its task ended; its idle lane then holds none.
    expect(readFileSync(join(dir, 'order.log'), 'utf8')).toBe('x\ny\n');
  });

  it('passes a lease straight to a task queued behind, and gives it up when the lane is idle', async () => {
    // A flock that notes each time it is run, ahead of the real one on the PATH.
    const real = execFileSync('sh', ['-c', 'command -v flock']).toString().trim();
    mkdirSync(join(dir, 'bin'));
    writeFileSync(
      join(dir, 'bin', 'flock'),
      `#!/bin/sh\n${real} "$@"\ns=$?\necho "flock $* $s" >> "${join(dir, 'flock.log')}"\nexit $s\n`,
      { mode: 0o755 },
    );
    // Leases taken: successful locks on fd 9 (the shell's own lifelong shared lock, on fd 7, is not one;
    // a try while another shell still holds the lease, as on a busy machine, is not one either).
    const leases = (): number =>
      readFileSync(join(dir, 'flock.log'), 'utf8')
        .split('\n')
        .filter((l) => l === 'flock -n 9 0').length;
    const s = await LocalSession.open('local', dir, { PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}` }, 1, 0);
    sessions.push(s);
    const shell = await s.shell();
    const runs = ['a', 'b', 'c'].map((id) => shell.run(0, id, ['sleep', '0.1'], { signal: never }));
    expect((await Promise.all(runs)).map((e) => e.code)).toEqual([0, 0, 0]);
    expect(leases()).toBe(1);
    // Idle now, the lane holds nothing: another shell's task takes the host's only lease at once.
    const other = await (await session(1)).shell();
    expect((await other.run(0, 'd', ['true'], { signal: never })).code).toBe(0);
    const d = await shell.run(0, 'e', ['true'], { signal: never });
    expect(d.code).toBe(0);
    expect(leases()).toBe(2);
  });

  it('ends, lanes and all, when its workdir was removed under it', async () => {
    const s = await session(2);
    const shell = await s.shell();
    await Promise.all([shell.run(0, 'a', ['true'], { signal: never }), shell.run(1, 'b', ['true'], { signal: never })]);
    rmSync(dir, { recursive: true, force: true });
    await s.close();
    const alive = (): boolean => {
      try {
        return (
          execFileSync('pgrep', ['-f', `distray-host ${dir}`])
            .toString()
            .trim() !== ''
        );
      } catch {
        return false;
      }
    };
    // Generous: the shell notices on its next look at the workdir, which a loaded machine may delay by seconds.
    expect(await eventually(() => !alive(), 60_000)).toBe(true);
  });

  it('retires a shell: its lane starts nothing more', async () => {
    const s = await session(1);
    const old = await s.shell();
    const fresh = await (await session(1)).shell();
    // a runs until the test lets it end, so b is still queued behind it when the shell is retired.
    let aStarted!: () => void;
    const started = new Promise<void>((resolve) => (aStarted = resolve));
    const a = old.run(0, 'a', ['sh', '-c', untilExists('go')], { onStart: () => aStarted(), signal: never });
    const b = old.run(0, 'b', ['sh', '-c', 'echo ran > b.txt'], { signal: never });
    await within(started, WAIT_MS, 'task a to start');
    fresh.retire(old.token);
    // The other shell has retired it once it marked the old run directory (retire() in hostShell.sh).
    expect(await eventually(() => existsSync(join(dir, '.distray', 'run', old.token, 'eof')), 60_000)).toBe(true);
    writeFileSync(join(dir, 'go'), '');
    expect((await a).code).toBe(0);
    // b would have started at once as a ended; a second is ample for that even on a loaded machine
    // (a slower machine can only make this pass wrongly, never fail).
    await new Promise((r) => setTimeout(r, 1000));
    expect(existsSync(join(dir, 'b.txt'))).toBe(false);
    void b;
  });

  it('gives back a queued task that an adopting shell claims first, and never runs it', async () => {
    const s = await session(1);
    const old = await s.shell();
    // Counts its starts; with an argument, runs until that file exists (the test says when).
    writeFileSync(join(dir, 'count.sh'), `echo ran >> runs.log; [ -z "$1" ] || ${untilExists('"$1"')}\n`);
    let busyStarted!: () => void;
    const started = new Promise<void>((resolve) => (busyStarted = resolve));
    const busy = old.run(0, 'busy', ['sh', 'count.sh', 'go'], { onStart: () => busyStarted(), signal: never });
    const queued = old.run(0, 'queued', ['sh', 'count.sh'], { signal: never });
    await within(started, WAIT_MS, 'task busy to start');
    // Another shell (as after a reconnect) adopts both: the running one is picked up, the queued one given back.
    const fresh = await (await session(1)).shell();
    const adoptingBusy = fresh.adopt('busy', old.token, { signal: never });
    const adoptQueued = await fresh.adopt('queued', old.token, { signal: never });
    expect(adoptQueued.code).toBe(EXIT_NOT_STARTED);
    // Only now may the busy task end (and the old lane move on to the claimed one).
    writeFileSync(join(dir, 'go'), '');
    expect((await adoptingBusy).code).toBe(0);
    await busy;
    // The old lane reached the queued task after it was claimed: it did not run it.
    expect((await queued).code).toBe(143);
    expect(readFileSync(join(dir, 'runs.log'), 'utf8')).toBe('ran\n');
  });
});

describe.each(SHELLS)('the host shell script run directly by $name', ({ argv: shell }) => {
  /** The script's lines for `lines`, its input closed once it has said `expect` of them. */
  const talk = (lines: string[], expect: number): Promise<string[]> =>
    talkToHostShell(shell, dir, lines, (said) => said.length >= expect);

  it('says it is ready, runs a task, and reports each output without following links', async () => {
    mkdirSync(join(dir, 'elsewhere'));
    writeFileSync(join(dir, 'elsewhere', 'x'), 'x');
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'lnk'));
    const make = [
      'echo data > f.txt', // a file
      ': > e.txt', // an empty file
      'mkdir -p d.txt', // a directory
      'ln -s elsewhere/x l.txt', // a link
      'mkfifo s.txt', // a FIFO
    ].join('; ');
    const outputs = ['f.txt', 'e.txt', 'd.txt', 'l.txt', 's.txt', 'm.txt'];
    const said = await talk(
      [runLine(0, 'one', ['sh', '-c', make], outputs), runLine(0, 'two', ['sh', '-c', 'echo no > lnk/x'], ['lnk/x'])],
      4,
    );
    expect(said).toEqual(
      ['ready', 'start one', 'exit one 0 0fedls-', 'refused two 0'].map((w) => protocolLine('tok-1', w)),
    );
    // The task refused for a path through a link neither ran nor cleared the file there.
    expect(readFileSync(join(dir, 'elsewhere', 'x'), 'utf8')).toBe('x');
  });

  it('refuses to start when its own directory is a link', async () => {
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, '.distray'));
    const said = await talk([runLine(0, 'one', ['true'])], 0);
    expect(said).toEqual([]);
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual([]);
  });
});

describe('HostShell.ready', () => {
  it('answers every caller waiting at once (each slot of a host asks)', async () => {
    const s = await session(2);
    const [a, b, c] = await Promise.all([s.shell(), s.shell(), s.shell()]);
    expect(a).toBe(b);
    expect(b).toBe(c);
    expect(a.alive).toBe(true);
    // Its end (removing its run directory) is over before the test's directory is removed.
    await s.close();
    const gone = (): boolean => {
      try {
        return (
          execFileSync('pgrep', ['-f', `distray-host ${dir}`])
            .toString()
            .trim() === ''
        );
      } catch {
        return true;
      }
    };
    for (let i = 0; i < 600 && !gone(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(gone()).toBe(true);
  });
});

describe('HostShell.command', () => {
  it('stops a command still waiting for a lease when its signal is aborted, and never runs it', async () => {
    const first = await (await session(1)).shell();
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    // The host's only lease, held until the file go exists.
    const busy = first.run(0, 'busy', ['sh', '-c', 'while [ ! -e go ]; do sleep 0.05; done'], {
      onStart: () => holding(),
      signal: never,
    });
    await within(held, WAIT_MS, 'task busy to take the lease');
    const s2 = await session(1);
    const stop = new AbortController();
    const cmd = s2.command(['sh', '-c', 'echo ran > cmd.txt'], { signal: stop.signal });
    stop.abort();
    await expect(cmd).rejects.toThrow(/stopped/);
    writeFileSync(join(dir, 'go'), '');
    expect((await busy).code).toBe(0);
    expect(existsSync(join(dir, 'cmd.txt'))).toBe(false);
  });
});
