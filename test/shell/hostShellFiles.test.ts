import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostShell } from '../../src/hostShell/hostShell.js';
import { EXIT_NO_LEASE, runDir } from '../../src/hostShell/protocol.js';
import { SHELLS, spawnHostShell } from '../helpers/shells.js';
import { eventually, WAIT_MS, within } from '../helpers/wait.js';

// The host shell's removals and writes (rm, mkdir, mv, and clearing a task's outputs): each checks the
// way to its path for links at the moment it acts, so a directory swapped for a link at any moment
// before (by a renderer, during a lease wait) is never followed.

let root: string;
/** The workdir, and a directory outside it that must never be touched. */
let wd: string;
let outside: string;
const shells: HostShell[] = [];
/** Each shell's end (its process exited). */
const ended = new Map<HostShell, Promise<Error>>();
const never = new AbortController().signal;

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'distray-files-')));
  wd = join(root, 'wd');
  outside = join(root, 'outside');
  mkdirSync(wd);
  mkdirSync(outside);
  writeFileSync(join(outside, 'f'), 'keep me\n');
});
afterEach(async () => {
  for (const s of shells.splice(0)) s.close();
  // A host shell may still be ending, removing its run directory meanwhile.
  await new Promise((r) => setTimeout(r, 50));
  rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

/**
 * A host shell under `sh` in the workdir, with `prelude` (shell code) run before the script: the
 * tests define functions there that stand in for builtins, to act at an exact moment.
 */
async function hostShell(sh: readonly string[], prelude = '', slots = 1): Promise<HostShell> {
  const token = `t${shells.length}-${Date.now().toString(36)}`;
  const { shell, closed } = spawnHostShell(sh, wd, { token, slots, prelude });
  shells.push(shell);
  ended.set(shell, closed);
  await shell.ready(60_000);
  return shell;
}

const outsideIntact = (): void => {
  expect(readdirSync(outside)).toEqual(['f']);
  expect(readFileSync(join(outside, 'f'), 'utf8')).toBe('keep me\n');
};

/** A `cd` that, the first time it is asked to enter `name`, swaps that directory for a link to the outside first: as if it were swapped just after its check. */
const swapOnCd = (name: string): string =>
  `cd() { if [ "$3" = ${name} ] && [ ! -e "${root}/swapped" ]; then : >"${root}/swapped"; mv ${name} ${name}.real && ln -s "${outside}" ${name}; fi; command cd "$@"; }`;

describe.each(SHELLS)('file operations of the host shell under $name', ({ argv: sh }) => {
  it('removes files, trees and links (not what they point to), and says what it did', async () => {
    const shell = await hostShell(sh);
    mkdirSync(join(wd, 'a', 'tree', 'sub'), { recursive: true });
    writeFileSync(join(wd, 'a', 'file'), 'x');
    writeFileSync(join(wd, 'a', 'tree', 'sub', 'g'), 'x');
    symlinkSync(join(outside, 'f'), join(wd, 'a', 'link-to-file'));
    symlinkSync(outside, join(wd, 'a', 'link-to-dir'));
    symlinkSync(outside, join(wd, 'via'));
    const states = await shell.fileOp('rm', [
      'a/file',
      'a/tree',
      'a/link-to-file',
      'a/link-to-dir',
      'a/missing',
      'gone/x',
      'via/f',
    ]);
    expect(states).toEqual(['done', 'done', 'done', 'done', 'done', 'done', 'through-link']);
    expect(readdirSync(join(wd, 'a'))).toEqual([]);
    outsideIntact();
  });

  it('answers each of many removals asked at once with its own paths’ states (sent together, by directory)', async () => {
    const shell = await hostShell(sh);
    mkdirSync(join(wd, 'a'));
    mkdirSync(join(wd, 'b'));
    symlinkSync(outside, join(wd, 'via'));
    const asks = Array.from({ length: 30 }, (_, i) => {
      writeFileSync(join(wd, 'a', `${i}`), 'x');
      if (i % 3 !== 1) writeFileSync(join(wd, 'b', `${i}`), 'x');
      // Each ask mixes directories, so that grouping them by directory reorders the paths sent.
      return i % 3 === 0 ? [`b/${i}`, 'via/f', `a/${i}`] : i % 3 === 1 ? [`a/${i}`, `gone/${i}`] : [`b/${i}`, `a/${i}`];
    });
    const states = await Promise.all(asks.map((paths) => shell.fileOp('rm', paths)));
    states.forEach((st, i) => expect(st).toEqual(i % 3 === 0 ? ['done', 'through-link', 'done'] : ['done', 'done']));
    expect(readdirSync(join(wd, 'a'))).toEqual([]);
    expect(readdirSync(join(wd, 'b'))).toEqual([]);
    outsideIntact();
  });

  it('never removes through a directory swapped for a link between its check and the moment it enters it', async () => {
    mkdirSync(join(wd, 'out'));
    writeFileSync(join(wd, 'out', 'f'), 'stale\n');
    const shell = await hostShell(sh, swapOnCd('out'));
    expect(await shell.fileOp('rm', ['out/f'])).toEqual(['through-link']);
    // The swap did happen, at the worst moment: the check before the cd saw a directory.
    expect(lstatSync(join(wd, 'out')).isSymbolicLink()).toBe(true);
    outsideIntact();
  });

  it('makes directories and moves a file into place, never through a link', async () => {
    const shell = await hostShell(sh);
    const run = join(wd, runDir(shell.token));
    expect(await shell.fileOp('mkdir', ['x/y/z'])).toEqual(['done']);
    expect(lstatSync(join(wd, 'x', 'y', 'z')).isDirectory()).toBe(true);
    writeFileSync(join(run, 'up1'), 'new\n');
    expect(await shell.fileOp('mv', ['up1', 'in/deep/a.txt'])).toEqual(['done']);
    expect(readFileSync(join(wd, 'in', 'deep', 'a.txt'), 'utf8')).toBe('new\n');
    // A link at the final name is replaced, not written through; one on the way refuses.
    symlinkSync(outside, join(wd, 'in', 'deep', 'b.txt'));
    writeFileSync(join(run, 'up2'), 'new\n');
    expect(await shell.fileOp('mv', ['up2', 'in/deep/b.txt'])).toEqual(['done']);
    expect(lstatSync(join(wd, 'in', 'deep', 'b.txt')).isFile()).toBe(true);
    symlinkSync(outside, join(wd, 'via'));
    writeFileSync(join(run, 'up3'), 'new\n');
    expect(await shell.fileOp('mv', ['up3', 'via/f'])).toEqual(['through-link']);
    expect(await shell.fileOp('mkdir', ['via/sub'])).toEqual(['through-link']);
    // A directory in the way is not moved into.
    mkdirSync(join(wd, 'adir'));
    expect(await shell.fileOp('mv', ['up3', 'adir'])).toEqual(['failed']);
    expect(readdirSync(join(wd, 'adir'))).toEqual([]);
    outsideIntact();
  });

  it('says a directory it cannot make failed, not that a link is on its way (which would refuse the host, naming no link)', async () => {
    const shell = await hostShell(sh);
    const run = join(wd, runDir(shell.token));
    // mkdir fails on a name too long for the file system (as on a directory without write permission, but even as root).
    const long = 'n'.repeat(300);
    expect(await shell.fileOp('mkdir', [`${long}/sub`, 'ok/sub'])).toEqual(['failed', 'done']);
    writeFileSync(join(run, 'up'), 'new\n');
    expect(await shell.fileOp('mv', ['up', `in/${long}/f`])).toEqual(['failed']);
    // Nor is a task whose output directory cannot be made refused as if a link were on its way.
    expect(
      (await shell.run(0, 'a', ['sh', '-c', 'true'], { outputs: [`${long}/f.png`], signal: never })).refused,
    ).toBeUndefined();
    outsideIntact();
  });

  it('never moves a file through a directory swapped for a link just before it enters it', async () => {
    mkdirSync(join(wd, 'in'));
    const shell = await hostShell(sh, swapOnCd('in'));
    writeFileSync(join(wd, runDir(shell.token), 'up'), 'new\n');
    expect(await shell.fileOp('mv', ['up', 'in/f'])).toEqual(['through-link']);
    expect(lstatSync(join(wd, 'in')).isSymbolicLink()).toBe(true);
    outsideIntact();
  });

  it('clears a task’s outputs only once it has its lease, checking them for links then', async () => {
    // A flock that notes each try, ahead of the real one: a failed try shows a task waiting for its lease.
    const real = execFileSync('sh', ['-c', 'command -v flock']).toString().trim();
    mkdirSync(join(root, 'bin'));
    writeFileSync(
      join(root, 'bin', 'flock'),
      `#!/bin/sh\n${real} "$@"\ns=$?\necho "flock $* $s" >> "${join(root, 'flock.log')}"\nexit $s\n`,
      { mode: 0o755 },
    );
    const path = `PATH='${join(root, 'bin')}':$PATH`;
    const first = await hostShell(sh, path);
    const second = await hostShell(sh, path);
    mkdirSync(join(wd, 'out'));
    writeFileSync(join(wd, 'out', 'f'), 'stale\n');
    // The first shell holds the host's only lease until the file go exists.
    let holding!: () => void;
    const held = new Promise<void>((r) => (holding = r));
    const busy = first.run(0, 'busy', ['sh', '-c', 'while [ ! -e go ]; do sleep 0.02; done'], {
      onStart: () => holding(),
      signal: never,
    });
    await within(held, WAIT_MS, 'task busy to take the lease');
    // The second shell's task waits for the lease; meanwhile its output directory becomes a link.
    const waiting = second.run(0, 'waits', ['sh', '-c', 'echo ran >ran.txt'], { outputs: ['out/f'], signal: never });
    // Once it has tried for the lease and failed, it is waiting.
    const tried = (): boolean =>
      existsSync(join(root, 'flock.log')) && readFileSync(join(root, 'flock.log'), 'utf8').includes('flock -n 9 1');
    expect(await eventually(tried, 60_000)).toBe(true);
    rmSync(join(wd, 'out'), { recursive: true });
    symlinkSync(outside, join(wd, 'out'));
    writeFileSync(join(wd, 'go'), '');
    expect((await busy).code).toBe(0);
    expect(await waiting).toMatchObject({ refused: 0 });
    expect(existsSync(join(wd, 'ran.txt'))).toBe(false);
    outsideIntact();
  });

  it('removes its own run directory at its end only from inside the workdir', async () => {
    const shell = await hostShell(sh);
    // Its .distray becomes a link to a directory outside that has a run directory of the same name.
    mkdirSync(join(outside, 'run', shell.token), { recursive: true });
    writeFileSync(join(outside, 'run', shell.token, 'keep'), 'keep me\n');
    renameSync(join(wd, '.distray'), join(wd, 'moved'));
    symlinkSync(outside, join(wd, '.distray'));
    shell.close();
    await ended.get(shell);
    expect(readFileSync(join(outside, 'run', shell.token, 'keep'), 'utf8')).toBe('keep me\n');
  });

  it('refuses to start when a lease file is a link, and says which', async () => {
    mkdirSync(join(wd, '.distray', 'leases'), { recursive: true });
    symlinkSync(join(outside, 'f'), join(wd, '.distray', 'leases', '0.lock'));
    await expect(hostShell(sh)).rejects.toThrow(
      /\.distray\/leases\/0\.lock in the workdir is a symbolic link .*remove it/,
    );
    outsideIntact();
  });

  it('fails a task at once, instead of waiting for ever, when every lease file became a link', async () => {
    const shell = await hostShell(sh);
    rmSync(join(wd, '.distray', 'leases', '0.lock'), { force: true });
    symlinkSync(join(outside, 'f'), join(wd, '.distray', 'leases', '0.lock'));
    expect((await shell.run(0, 'a', ['sh', '-c', 'echo ran >ran.txt'], { signal: never })).code).toBe(EXIT_NO_LEASE);
    expect(existsSync(join(wd, 'ran.txt'))).toBe(false);
    outsideIntact();
  });
});
