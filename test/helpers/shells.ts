import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { HostShell } from '../../src/hostShell/hostShell.js';
import { hostShellArgv } from '../../src/hostShell/protocol.js';

/** The host shell script runs under any POSIX sh: its tests run under each of these (Debian's dash, bash, busybox). */
export const SHELLS: ReadonlyArray<{ name: string; argv: string[] }> = [
  { name: 'dash', argv: ['dash'] },
  { name: 'bash', argv: ['bash', '--posix'] },
  { name: 'busybox sh', argv: ['busybox', 'sh'] },
];

/**
 * Starts the host shell script directly under `shell`, as a host would, in
 * `workdir`; feeds it `lines`, closes its input once what it said satisfies
 * `enough` (end of input means the controller is gone: nothing new starts),
 * and returns all it said until it exited.
 */
export function talkToHostShell(
  shell: readonly string[],
  workdir: string,
  lines: readonly string[],
  enough: (said: string[]) => boolean,
): Promise<string[]> {
  const [program, ...before] = shell;
  const argv = [...before, ...hostShellArgv({ workdir, env: {}, token: 'tok-1', slots: 1, graceSeconds: 0 })];
  const child: ChildProcessByStdio<Writable, Readable, null> = spawn(program!, argv, {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const said = (): string[] => out.split('\n').filter(Boolean);
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (enough(said())) child.stdin.end();
  });
  child.stdin.on('error', () => {}); // a shell that refused to start reads nothing
  child.stdin.write(lines.join(''));
  if (enough([])) child.stdin.end();
  return new Promise((resolve) => child.on('close', () => resolve(said())));
}

/**
 * A host shell started directly under `shell` in `workdir`, as the local host
 * starts one, with the controller's side attached: `prelude` runs before the
 * script (to plant a race, say). Not yet ready: await `shell.ready()`. It runs
 * in a process group of its own: `process.kill(-child.pid, 'SIGKILL')` ends it
 * with its lanes.
 */
export function spawnHostShell(
  shell: readonly string[],
  workdir: string,
  opts: { token: string; slots?: number; prelude?: string },
): { shell: HostShell; child: ChildProcessByStdio<Writable, Readable, Readable>; closed: Promise<Error> } {
  const [program, ...before] = shell;
  const argv = hostShellArgv({ workdir, env: {}, token: opts.token, slots: opts.slots ?? 1, graceSeconds: 0 });
  if (opts.prelude) argv[1] = `${opts.prelude}\n${argv[1]}`;
  // Its own process group: killing the group (-pid) takes its lanes too, which a kill of the shell alone leaves running.
  const child = spawn(program!, [...before, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const closed = new Promise<Error>((resolve) =>
    child.on('close', (code) => resolve(new Error(`the host shell exited (status ${code})`))),
  );
  const io = {
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    closed,
    end: () => child.stdin.end(),
    kill: () => child.kill(),
  };
  return { shell: new HostShell(io, opts.token, 'test'), child, closed };
}
