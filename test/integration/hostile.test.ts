/**
 * Hosts that are not under the user's control: what is in their workdir,
 * what their login prints, how their sshd behaves. distray must never touch
 * anything outside the workdir, never hang, and never leak a secret.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { eventually, processesStartingWith, RUN_MS, within } from '../helpers/wait.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';
import { LISTED_AS } from '../helpers/hostileSftp.js';

let farm: Farm;
let good: SshdHost;
let n = 0;

interface Report {
  ok: boolean;
  tasks: Array<{ frame: number; status: string; host: string | null; attempts: number; lost?: number; error?: string }>;
  hosts: Array<{ name: string; state: string; tasksDone: number; failures: number; message?: string }>;
}

function workspace(): string {
  const dir = join(farm.dir, `w${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A renderer script in the workspace, uploaded with --in. */
function script(cwd: string, name: string, body: string): string {
  writeFileSync(join(cwd, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(cwd, name), 0o755);
  return name;
}

function report(cwd: string): Report {
  return JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
}

/** Every file under `dir` whose name marks it temporary. */
function partFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.part'));
}

function inventoryFor(entries: string[], file: string, extraDefaults = ''): string {
  return farm.inventory(`${defaultsBlock(farm, extraDefaults)}hosts:\n${entries.join('\n')}\n`, file);
}

/** A TCP server on loopback that does something unhelpful with each connection. */
async function badServer(onConnection: (s: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * An sshd whose sessions run `prelude` before the command (as a user's
 * ~/.bashrc would), without touching this machine's real rc files. SFTP
 * goes to sftp-server untouched.
 */
function loginPrelude(prelude: string): string {
  return `ForceCommand case "$SSH_ORIGINAL_COMMAND" in internal-sftp) exec /usr/lib/openssh/sftp-server ;; esac; ${prelude}; eval "$SSH_ORIGINAL_COMMAND"`;
}

/**
 * An sshd whose SFTP subsystem is test/helpers/hostileSftp.ts in front of
 * the real sftp-server: its listings give some entries names no honest
 * server gives. Other commands run as they are.
 */
function hostileSftpCommand(): string {
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  return `case "$SSH_ORIGINAL_COMMAND" in internal-sftp) cd ${repo} && exec ${process.execPath} --import tsx test/helpers/hostileSftp.ts ;; esac; eval "$SSH_ORIGINAL_COMMAND"`;
}

beforeAll(async () => {
  farm = startFarm();
  good = await farm.start('good');
});

afterAll(async () => {
  await farm?.stop();
});

/** The CLI in the background, for a test that stops it (SIGINT) at a moment of its choosing. */
function background(
  cwd: string,
  args: string[],
): { child: ReturnType<typeof spawn>; closed: Promise<number | null>; stderr: () => string } {
  const env = { ...process.env };
  delete env.SSH_AUTH_SOCK;
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return { child, closed: new Promise((resolve) => child.on('close', resolve)), stderr: () => stderr };
}

describe('data outside the workdir', () => {
  it('an output directory that is a symbolic link fails the attempt; its target is neither copied nor emptied', async () => {
    const cwd = workspace();
    const outside = join(farm.dir, 'outside-dir');
    mkdirSync(outside);
    writeFileSync(join(outside, 'precious.txt'), 'keep me\n');
    const mk = script(cwd, 'mk.sh', 'rm -rf "d$1"; ln -s "$2" "d$1"');
    const inv = inventoryFor([hostEntry(farm, good, { workdir: join(good.workdir, 'dirlink') })], 'dirlink.yaml');
    const r = await runCli(
      [
        'run',
        inv,
        '0',
        `./${mk}`,
        '%d',
        outside,
        '--in',
        mk,
        '--out',
        'd%d/=got/d%d/',
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/d0 .*symbolic link/);
    expect(readFileSync(join(outside, 'precious.txt'), 'utf8')).toBe('keep me\n');
    expect(existsSync(join(cwd, 'got', 'd0'))).toBe(false);
    expect(partFiles(join(cwd, 'got'))).toEqual([]);
  });

  it('an output file that is a symbolic link is not copied back', async () => {
    const cwd = workspace();
    const secret = join(farm.dir, 'secret.txt');
    writeFileSync(secret, 'not for the controller\n');
    const mk = script(cwd, 'mk.sh', 'rm -f "o$1.txt"; ln -s "$2" "o$1.txt"');
    const inv = inventoryFor([hostEntry(farm, good, { workdir: join(good.workdir, 'filelink') })], 'filelink.yaml');
    const r = await runCli(
      [
        'run',
        inv,
        '0',
        `./${mk}`,
        '%d',
        secret,
        '--in',
        mk,
        '--out',
        'o%d.txt=got/o%d.txt',
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/o0\.txt .*symbolic link/);
    expect(existsSync(join(cwd, 'got', 'o0.txt'))).toBe(false);
    expect(readFileSync(secret, 'utf8')).toBe('not for the controller\n');
  });

  it('a directory listing whose names lead elsewhere (a hostile SFTP server) fails the attempt naming host and entry; nothing is written outside the output', async () => {
    const cwd = workspace();
    const liar = await farm.start('liar', `ForceCommand ${hostileSftpCommand()}`);
    const names = Object.keys(LISTED_AS);
    // Frame i makes d<i>/ with a.txt and the i-th entry the server lists under another name; and the file
    // that "../../x" in d0/ names on the host, which the controller would otherwise fetch to ../../x.
    const mk = script(
      cwd,
      'mk.sh',
      'n=$1; shift $((n + 1)); mkdir -p "d$n" && echo a >"d$n/a.txt" && echo evil >"d$n/$1" && echo from-the-host >../x',
    );
    const inv = inventoryFor([hostEntry(farm, liar, { workdir: join(liar.workdir, 'names') })], 'names.yaml');
    const shown = ['"../../x"', '"forged\\nline"', '"sub/x"', '"\\x1b[2Jcleared"'];
    // Two frames a run: a host that fails three different tasks in a row is taken out of the run.
    for (const frames of [
      [0, 1],
      [2, 3],
    ]) {
      const r = await runCli(
        [
          'run',
          inv,
          frames.join(','),
          `./${mk}`,
          '%d',
          ...names,
          '--in',
          mk,
          '--out',
          'd%d/=got/d%d/',
          '--retries',
          '1',
          '--report',
          'r.json',
          '--plain',
        ],
        { cwd },
      );
      expect(r.code, r.stderr).toBe(1);
      const rep = report(cwd);
      for (const [i, t] of rep.tasks.entries()) {
        const frame = frames[i]!;
        // A failed attempt, which uses a retry, on a host that stays: not a lost connection.
        expect(t, r.stderr).toMatchObject({ frame, status: 'failed', attempts: 2, lost: 0 });
        expect(t.error).toContain(`d${frame}/ on liar lists an entry named ${shown[frame]}`);
      }
      expect(rep.hosts[0]).toMatchObject({ name: 'liar', state: 'done' });
      // Shown escaped: no forged line, no escape reaching the terminal.
      expect(r.stderr).not.toMatch(/^line/m);
      expect(r.stderr).not.toContain('\x1b[2J');
    }
    // Nothing of any output was kept, inside or outside it.
    expect(existsSync(join(cwd, 'x'))).toBe(false);
    expect(readdirSync(cwd).sort()).toEqual(
      ['.distray', 'mk.sh', 'r.json'].concat(existsSync(join(cwd, 'got')) ? ['got'] : []).sort(),
    );
    expect(existsSync(join(cwd, 'got')) ? readdirSync(join(cwd, 'got')) : []).toEqual([]);
    await liar.stop();
  });

  it('never writes an input through a directory link planted in the workdir', async () => {
    const cwd = workspace();
    const wd = join(good.workdir, 'planted-in');
    const outside = join(farm.dir, 'outside-in');
    mkdirSync(wd);
    mkdirSync(outside);
    writeFileSync(join(outside, 'x.txt'), 'original\n');
    symlinkSync(outside, join(wd, 'in'));
    writeFileSync(join(cwd, 'x.txt'), 'new\n');
    const inv = inventoryFor([hostEntry(farm, good, { workdir: wd })], 'planted-in.yaml');
    // Once per host, and per task.
    const once = await runCli(['run', inv, '0', 'true', '--in', 'x.txt=in/x.txt', '--report', 'r.json'], { cwd });
    expect(once.code, once.stderr).toBe(3);
    expect(report(cwd).hosts[0]!.message).toMatch(/in .*symbolic link/);
    const perTask = await runCli(
      ['run', inv, '0', 'true', '--in', 'x.txt=in/x%d.txt', '--retries', '0', '--report', 'r.json'],
      { cwd },
    );
    expect(perTask.code, perTask.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/in .*symbolic link/);
    expect(readdirSync(outside)).toEqual(['x.txt']);
    expect(readFileSync(join(outside, 'x.txt'), 'utf8')).toBe('original\n');
  });

  it('never removes a stale output through a directory link planted in the workdir', async () => {
    const cwd = workspace();
    const wd = join(good.workdir, 'planted-out');
    const outside = join(farm.dir, 'outside-out');
    mkdirSync(wd);
    mkdirSync(outside);
    writeFileSync(join(outside, '0.txt'), 'keep me\n');
    symlinkSync(outside, join(wd, 'out'));
    const inv = inventoryFor([hostEntry(farm, good, { workdir: wd })], 'planted-out.yaml');
    const r = await runCli(
      ['run', inv, '0', 'true', '--out', 'out/%d.txt=got/%d.txt', '--retries', '0', '--report', 'r.json'],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/out\/0\.txt .*symbolic link/);
    expect(readFileSync(join(outside, '0.txt'), 'utf8')).toBe('keep me\n');
    expect(existsSync(join(cwd, 'got', '0.txt'))).toBe(false);
  });

  it('sends a per-task input into directories that do not exist yet', async () => {
    const cwd = workspace();
    writeFileSync(join(cwd, 'in0.txt'), 'zero\n');
    writeFileSync(join(cwd, 'in1.txt'), 'one\n');
    const wd = join(good.workdir, 'nested-in');
    const inv = inventoryFor([hostEntry(farm, good, { workdir: wd })], 'nested-in.yaml');
    const r = await runCli(
      [
        'run',
        inv,
        '0,1',
        'sh',
        '-c',
        'cat "a/b/in$0.txt" > "o$0.txt"',
        '%d',
        '--in',
        'in%d.txt=a/b/in%d.txt',
        '--out',
        'o%d.txt=got/o%d.txt',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'got', 'o1.txt'), 'utf8')).toBe('one\n');
  });

  it('warns when the workdir is writable by other users', async () => {
    const cwd = workspace();
    const wd = join(good.workdir, 'open');
    mkdirSync(wd);
    chmodSync(wd, 0o777);
    const inv = inventoryFor([hostEntry(farm, good, { workdir: wd })], 'open.yaml');
    const r = await runCli(['run', inv, '0', 'true', '--plain'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/good: .*workdir .* is writable by other users/);
  });
});

describe('links that appear while a task runs', () => {
  it('Ctrl+C after a renderer swapped its output directory for a link removes nothing outside the workdir', async () => {
    const cwd = workspace();
    const wd = join(good.workdir, 'swap-stop');
    const outside = join(farm.dir, 'outside-swap-stop');
    mkdirSync(outside);
    writeFileSync(join(outside, 'x.txt'), 'keep me\n');
    // Writes its output, then puts a link to the outside in its directory's place, and hangs until stopped.
    const mk = script(
      cwd,
      'mk.sh',
      `mkdir -p "out$1" && echo partial >"out$1/x.txt" && rm -rf "out$1" && ln -s '${outside}' "out$1" && touch swapped && exec sleep 900`,
    );
    const inv = inventoryFor([hostEntry(farm, good, { workdir: wd })], 'swap-stop.yaml');
    const run = background(cwd, [
      'run',
      inv,
      '0',
      `./${mk}`,
      '%d',
      '--in',
      mk,
      '--out',
      'out%d/x.txt=got/%d.txt',
      '--report',
      'r.json',
      '--plain',
    ]);
    expect(await eventually(() => existsSync(join(wd, 'swapped')), 120_000), run.stderr()).toBe(true);
    run.child.kill('SIGINT');
    expect(await within(run.closed, RUN_MS, 'distray to exit'), run.stderr()).toBe(130);
    expect(report(cwd).tasks[0]!.status).toBe('cancelled');
    // The stopped attempt's output was not removed through the link: it is said instead.
    expect(readFileSync(join(outside, 'x.txt'), 'utf8')).toBe('keep me\n');
    expect(run.stderr()).toMatch(/out0\/x\.txt was not removed: .*symbolic link/);
  });

  it('an output directory swapped for a link while its task waits for a lease is not cleared through it', async () => {
    const cwd = workspace();
    const wd = join(good.workdir, 'swap-lease');
    const outside = join(farm.dir, 'outside-swap-lease');
    mkdirSync(join(wd, 'out'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(wd, 'out', '0.txt'), 'stale\n');
    writeFileSync(join(outside, '0.txt'), 'keep me\n');
    // A flock that notes each try, ahead of the real one on the host's PATH: a failed try shows a task waiting for its lease.
    const real = execFileSync('sh', ['-c', 'command -v flock']).toString().trim();
    const bin = join(farm.dir, 'swap-lease-bin');
    mkdirSync(bin);
    const log = join(farm.dir, 'swap-lease-flock.log');
    writeFileSync(join(bin, 'flock'), `#!/bin/sh\n${real} "$@"\ns=$?\necho "flock $* $s" >> "${log}"\nexit $s\n`, {
      mode: 0o755,
    });
    const entry = hostEntry(farm, good, {
      workdir: wd,
      slots: 1,
      env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin` },
    });
    const inv = inventoryFor([entry], 'swap-lease.yaml');
    // A first run holds the host's only lease until the file go exists.
    const holder = runCli(
      ['run', inv, '9', 'sh', '-c', 'touch held; while [ ! -e go ]; do sleep 0.05; done', '--report', 'held.json'],
      { cwd },
    );
    expect(await eventually(() => existsSync(join(wd, 'held')), 120_000)).toBe(true);
    const waiting = runCli(
      [
        'run',
        inv,
        '0',
        'sh',
        '-c',
        'echo new >out/$0.txt',
        '%d',
        '--out',
        'out/%d.txt=got/%d.txt',
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(await eventually(() => existsSync(log) && readFileSync(log, 'utf8').includes('flock -n 9 1'), 120_000)).toBe(
      true,
    );
    // The second run's task is waiting for the lease: its output directory becomes a link to the outside.
    execFileSync('rm', ['-rf', join(wd, 'out')]);
    symlinkSync(outside, join(wd, 'out'));
    writeFileSync(join(wd, 'go'), '');
    expect((await holder).code).toBe(0);
    const r = await waiting;
    expect(r.code, r.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/out\/0\.txt .*symbolic link/);
    expect(readFileSync(join(outside, '0.txt'), 'utf8')).toBe('keep me\n');
    expect(readdirSync(outside)).toEqual(['0.txt']);
  });

  it('a lease file that is a link is said, naming the file, instead of a wait for ever', async () => {
    const cwd = workspace();
    const wd = join(good.workdir, 'lease-link');
    const target = join(farm.dir, 'lease-target');
    writeFileSync(target, 'keep me\n');
    mkdirSync(join(wd, '.distray', 'leases'), { recursive: true });
    symlinkSync(target, join(wd, '.distray', 'leases', '0.lock'));
    const inv = inventoryFor([hostEntry(farm, good, { workdir: wd, slots: 1 })], 'lease-link.yaml');
    const r = await runCli(['run', inv, '0', 'true', '--report', 'r.json'], { cwd });
    expect(r.code, r.stderr).toBe(3);
    expect(report(cwd).hosts[0]!.message).toMatch(
      /\.distray\/leases\/0\.lock in the workdir is a symbolic link .*remove it/,
    );
    expect(readFileSync(target, 'utf8')).toBe('keep me\n');
  });
});

describe('wrong results', () => {
  it('a directory where a file output is expected fails the attempt, and is not complete locally', async () => {
    const cwd = workspace();
    const mk = script(cwd, 'mk.sh', 'mkdir -p "o$1.txt" && echo x >"o$1.txt/inside"');
    const inv = inventoryFor([hostEntry(farm, good, { workdir: join(good.workdir, 'dirout') })], 'dirout.yaml');
    const r = await runCli(
      [
        'run',
        inv,
        '0',
        `./${mk}`,
        '%d',
        '--in',
        mk,
        '--out',
        'o%d.txt=got/o%d.txt',
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/o0\.txt .*is a directory/);
    // A directory left at a file output's local path is not a finished output: the task runs again.
    mkdirSync(join(cwd, 'got', 'o1.txt'), { recursive: true });
    writeFileSync(join(cwd, 'got', 'o1.txt', 'x'), 'x');
    const again = await runCli(
      [
        'run',
        inv,
        '1',
        'sh',
        '-c',
        'echo one >o1.txt',
        '--out',
        'o%d.txt=got/o%d.txt',
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(report(cwd).tasks[0]!.status).not.toBe('skipped');
    expect(again.code).toBe(1);
  });

  it('a directory output (trailing slash) is copied back whole', async () => {
    const cwd = workspace();
    const mk = script(cwd, 'mk.sh', 'mkdir -p "d$1/sub" && echo a >"d$1/a.txt" && echo b >"d$1/sub/b.txt"');
    const inv = inventoryFor([hostEntry(farm, good, { workdir: join(good.workdir, 'dirs') })], 'dirs.yaml');
    const r = await runCli(['run', inv, '0,1', `./${mk}`, '%d', '--in', mk, '--out', 'd%d/=got/d%d/'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'got', 'd1', 'sub', 'b.txt'), 'utf8')).toBe('b\n');
    const rerun = await runCli(
      ['run', inv, '0,1', `./${mk}`, '%d', '--in', mk, '--out', 'd%d/=got/d%d/', '--report', 'r.json'],
      { cwd },
    );
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(report(cwd).tasks.map((t) => t.status)).toEqual(['skipped', 'skipped']);
  });
});

describe('hangs', () => {
  it('a FIFO inside an output directory fails the attempt instead of blocking the download', async () => {
    const cwd = workspace();
    const mk = script(cwd, 'mk.sh', 'mkdir -p "d$1" && echo a >"d$1/a.txt" && mkfifo "d$1/pipe"');
    const inv = inventoryFor([hostEntry(farm, good, { workdir: join(good.workdir, 'fifo') })], 'fifo.yaml');
    const r = await runCli(
      ['run', inv, '0', `./${mk}`, '%d', '--in', mk, '--out', 'd%d/=got/d%d/', '--retries', '0', '--report', 'r.json'],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/d0\/pipe .*not a regular file/);
    expect(existsSync(join(cwd, 'got', 'd0'))).toBe(false);
    expect(partFiles(join(cwd, 'got'))).toEqual([]);
  });

  it('gives up a host that accepts TCP and closes at once', async () => {
    const cwd = workspace();
    const closer = await badServer((s) => s.destroy());
    const inv = inventoryFor(
      [`  - host: 127.0.0.1\n    name: closer\n    port: ${closer.port}\n    workdir: /tmp/never`],
      'closer.yaml',
    );
    const r = await runCli(['run', inv, '0,3', 'true', '--report', 'r.json'], { cwd });
    await closer.close();
    expect(r.code, r.stderr).toBe(3);
    expect(report(cwd).hosts[0]).toMatchObject({ name: 'closer', state: 'unreachable' });
  });

  it('ends the run when its tasks are done, whatever a host whose login hangs is doing; a login deadline gives such a host up', async () => {
    const cwd = workspace();
    const hung = await farm.start('hung', loginPrelude('sleep 600'));
    const entries = [
      hostEntry(farm, hung, { workdir: join(hung.workdir, 'h') }),
      hostEntry(farm, good, { workdir: join(good.workdir, 'h') }),
    ];
    const inv = inventoryFor(entries, 'hung.yaml');
    const r = await runCli(
      ['run', inv, '0,3', 'sh', '-c', 'echo $0 >f$0.txt', '%d', '--out', 'f%d.txt=got/f%d.txt', '--report', 'r.json'],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const rep = report(cwd);
    expect(rep.tasks.every((t) => t.status === 'done' && t.host === 'good')).toBe(true);
    expect(rep.hosts.find((h) => h.name === 'hung')!.state).toBe('cancelled');
    // Alone, with a short login deadline: given up, no host usable.
    const alone = inventoryFor(
      [hostEntry(farm, hung, { workdir: join(hung.workdir, 'h'), loginTimeout: '2s' })],
      'hung-alone.yaml',
    );
    const a = await runCli(['run', alone, '0', 'true', '--report', 'r.json'], { cwd });
    expect(a.code, a.stderr).toBe(3);
    expect(report(cwd).hosts[0]).toMatchObject({ name: 'hung', state: 'timeout' });
    expect(report(cwd).hosts[0]!.message).toMatch(/login .* 2 s/);
    await hung.stop();
  });

  it('a silent host (TCP open, no banner) does not keep the run alive once its tasks are done', async () => {
    const cwd = workspace();
    const silent = await badServer(() => {});
    const entries = [
      `  - host: 127.0.0.1\n    name: silent\n    port: ${silent.port}\n    workdir: /tmp/never`,
      hostEntry(farm, good, { workdir: join(good.workdir, 's') }),
    ];
    const inv = inventoryFor(entries, 'silent.yaml');
    const r = await runCli(['run', inv, '0,1', 'true', '--report', 'r.json'], { cwd });
    await silent.close();
    expect(r.code, r.stderr).toBe(0);
    // Not 'timeout': the run did not wait out the handshake's 20 s.
    expect(report(cwd).hosts.find((h) => h.name === 'silent')!.state).toBe('cancelled');
  });

  it('login output of any shape does not shift the host shell protocol', async () => {
    const cwd = workspace();
    const noisy = await farm.start(
      'noisy',
      loginPrelude(
        `printf '\\033[2J\\033]0;title\\007welcome, no newline'; printf 'start x\\nexit y 0\\ncpus 999\\nworkdir bad\\n\\001\\377'; printf 'on stderr\\n' >&2`,
      ),
    );
    const inv = inventoryFor([hostEntry(farm, noisy, { workdir: join(noisy.workdir, 'n') })], 'noisy.yaml');
    const ok = await runCli(['run', inv, '0,1', 'sh', '-c', 'echo $0 >f$0.txt', '%d', '--out', 'f%d.txt=got/f%d.txt'], {
      cwd,
    });
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(cwd, 'got', 'f1.txt'), 'utf8')).toBe('1\n');
    // --timeout is applied from the very first task.
    const slow = await runCli(
      ['run', inv, '0', 'sleep', '30', '--timeout', '1s', '--retries', '0', '--report', 'r.json'],
      { cwd },
    );
    expect(slow.code, slow.stderr).toBe(1);
    expect(report(cwd).tasks[0]!.error).toMatch(/timed out/);
    // check reads only its own probe's lines, not the login's look-alikes.
    const checked = await runCli(['check', inv, '--json'], { cwd });
    expect(checked.code, checked.stderr).toBe(0);
    const rows = JSON.parse(checked.stdout) as Array<{ state: string; cpus: number }>;
    expect(rows[0]).toMatchObject({ state: 'ok', cpus: availableParallelism() });
    await noisy.stop();
  });
});

describe('leaks', () => {
  it('a local host renderer never sees DISTRAY_ secrets', async () => {
    const cwd = workspace();
    const inv = farm.inventory(`hosts:\n  - local: true\n    workdir: ${join(cwd, 'local-wd')}\n`, 'local.yaml');
    const r = await runCli(['run', inv, '0', 'sh', '-c', 'env >env$0.txt', '%d', '--out', 'env%d.txt=got/env%d.txt'], {
      cwd,
      env: { DISTRAY_PASSWORD: 'hunter2-secret', DISTRAY_KEY_PASSPHRASE: 'passphrase-secret' },
    });
    expect(r.code, r.stderr).toBe(0);
    const env = readFileSync(join(cwd, 'got', 'env0.txt'), 'utf8');
    expect(env).toMatch(/^PATH=/m);
    expect(env).not.toMatch(/hunter2-secret|passphrase-secret/);
  });

  it('--on-end, and the scripts check and clean start on a local host, never see DISTRAY_ secrets', async () => {
    const cwd = workspace();
    const secrets = { DISTRAY_PASSWORD: 'hunter2-secret', DISTRAY_KEY_PASSPHRASE: 'passphrase-secret' };
    const inv = farm.inventory(`hosts:\n  - local: true\n    workdir: ${join(cwd, 'local-wd')}\n`, 'local-end.yaml');
    const r = await runCli(['run', inv, '0', 'true', '--on-end', 'env > on-end-env.txt'], { cwd, env: secrets });
    expect(r.code, r.stderr).toBe(0);
    const env = readFileSync(join(cwd, 'on-end-env.txt'), 'utf8');
    expect(env).toMatch(/^DISTRAY_DONE=1$/m);
    expect(env).not.toMatch(/hunter2-secret|passphrase-secret/);
    // check's probe runs df, clean's script runs find: each, found first in PATH, writes down what it was given.
    const bin = join(cwd, 'bin');
    mkdirSync(bin);
    for (const tool of ['df', 'find']) {
      const real = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
      writeFileSync(join(bin, tool), `#!/bin/sh\nenv > "${join(cwd, `${tool}-env.txt`)}"\nexec ${real} "$@"\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const withBin = { ...secrets, PATH: `${bin}:${process.env.PATH ?? ''}` };
    const checked = await runCli(['check', inv], { cwd, env: withBin });
    expect(checked.code, checked.stderr).toBe(0);
    const cleaned = await runCli(['clean', inv], { cwd, env: withBin });
    expect(cleaned.code, cleaned.stderr).toBe(0);
    for (const tool of ['df', 'find']) {
      const seen = readFileSync(join(cwd, `${tool}-env.txt`), 'utf8');
      expect(seen, tool).toMatch(/^PATH=/m);
      expect(seen, tool).not.toMatch(/hunter2-secret|passphrase-secret/);
    }
  });

  it('offers the password only to hosts marked password: true, and only after their keys failed', async () => {
    const cwd = workspace();
    // Its authorized keys are elsewhere: the client key fails, the server then asks for a password.
    const pw = await farm.start(
      'pw',
      `AuthorizedKeysFile ${join(farm.dir, 'nobody_keys')}\nPasswordAuthentication yes`,
    );
    const env = { DISTRAY_PASSWORD: 'wrong-password' };
    const inv = inventoryFor([hostEntry(farm, pw, { workdir: join(pw.workdir, 'p') })], 'pw.yaml');
    const r = await runCli(['run', inv, '0', 'true', '--report', 'r.json'], { cwd, env });
    expect(r.code, r.stderr).toBe(3);
    expect(report(cwd).hosts[0]!.message).toMatch(/password: true/);
    expect(readFileSync(pw.log, 'utf8')).not.toMatch(/Failed password/);
    // Allowed: offered after the key, and refused (it is wrong).
    const allowed = inventoryFor(
      [hostEntry(farm, pw, { workdir: join(pw.workdir, 'p'), password: true })],
      'pw-ok.yaml',
    );
    const r2 = await runCli(['run', allowed, '0', 'true', '--report', 'r.json'], { cwd, env });
    expect(r2.code, r2.stderr).toBe(3);
    expect(readFileSync(pw.log, 'utf8')).toMatch(/Failed password/);
    // A host whose key works is never offered the password.
    const before = readFileSync(good.log, 'utf8').length;
    const inv3 = inventoryFor(
      [hostEntry(farm, good, { workdir: join(good.workdir, 'p'), password: true })],
      'pw-good.yaml',
    );
    const r3 = await runCli(['run', inv3, '0', 'true'], { cwd, env });
    expect(r3.code, r3.stderr).toBe(0);
    expect(readFileSync(good.log, 'utf8').slice(before)).not.toMatch(/password/i);
    await pw.stop();
  });
});

describe('size and time', () => {
  /** Starts a run whose output is a 2 GB (sparse) file, and waits until its download is under way. */
  async function bigDownload(
    cwd: string,
    name: string,
  ): Promise<{ child: ReturnType<typeof spawn>; closed: Promise<number | null>; stderr: () => string }> {
    const inv = inventoryFor([hostEntry(farm, good, { workdir: join(good.workdir, name) })], `${name}.yaml`);
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        '0',
        'truncate',
        '-s',
        '2G',
        'big%d.bin',
        '--out',
        'big%d.bin=got/big%d.bin',
        '--report',
        'r.json',
        '--plain',
      ],
      {
        cwd,
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(await eventually(() => partFiles(join(cwd, 'got')).length > 0, 120_000), stderr).toBe(true);
    return { child, closed, stderr: () => stderr };
  }

  it('Ctrl+C during a large download of a finished frame: kept if it comes in within the bound, else stopped; never a partial file, and the report says which', async () => {
    const cwd = workspace();
    const run = await bigDownload(cwd, 'big1');
    run.child.kill('SIGINT');
    const code = await within(run.closed, RUN_MS, 'distray to exit');
    expect(code, run.stderr()).toBe(130);
    expect(partFiles(join(cwd, 'got'))).toEqual([]);
    // The renderer had finished: a stopped run brings its frame back for a few seconds more (how far it gets
    // depends on this machine's speed), and whichever way it went, the report and the file agree.
    const status = report(cwd).tasks[0]!.status;
    expect(['done', 'cancelled']).toContain(status);
    expect(existsSync(join(cwd, 'got', 'big0.bin'))).toBe(status === 'done');
  });

  it('a second Ctrl+C exits at once and still leaves no partial file', async () => {
    const cwd = workspace();
    const run = await bigDownload(cwd, 'big2');
    run.child.kill('SIGINT');
    run.child.kill('SIGINT');
    const code = await within(run.closed, RUN_MS, 'distray to exit');
    expect(code, run.stderr()).toBe(130);
    expect(partFiles(join(cwd, 'got'))).toEqual([]);
  });
});

describe('stopping at any moment', () => {
  it('Ctrl+C while a host is still connecting writes the report, the host cancelled', async () => {
    const cwd = workspace();
    let connected!: () => void;
    const arrived = new Promise<void>((resolve) => (connected = resolve));
    const silent = await badServer(() => connected());
    const inv = inventoryFor(
      [`  - host: 127.0.0.1\n    name: silent\n    port: ${silent.port}\n    workdir: /tmp/never`],
      'connecting.yaml',
    );
    const run = background(cwd, ['run', inv, '0,3', 'true', '--report', 'r.json', '--plain']);
    await within(arrived, RUN_MS, 'distray to connect to the silent server');
    run.child.kill('SIGINT');
    const code = await within(run.closed, RUN_MS, 'distray to exit');
    await silent.close();
    expect(code, run.stderr()).toBe(130);
    const rep = report(cwd);
    expect(rep.hosts[0]!.state).toBe('cancelled');
    expect(rep.tasks.every((t) => t.status === 'cancelled')).toBe(true);
  });

  it('Ctrl+C while frames are being stitched leaves no partial frame, and every stitched frame whole', async () => {
    const cwd = workspace();
    copyFileSync(fileURLToPath(new URL('../../examples/ray.mjs', import.meta.url)), join(cwd, 'ray.mjs'));
    const inv = farm.inventory(
      `hosts:\n  - local: true\n    slots: 2\n    workdir: ${join(cwd, 'wd')}\n`,
      'stitch-local.yaml',
    );
    const run = background(cwd, [
      'run',
      inv,
      '0,39',
      'node',
      'ray.mjs',
      '%d',
      't%d-%{tile}.png',
      '--res',
      '640x360',
      '--region',
      '%{x0},%{y0},%{x1},%{y1}',
      '--in',
      'ray.mjs',
      '--out',
      't%d-%{tile}.png=tiles/%d-%{tile}.png',
      '--tiles',
      '2x2',
      '--size',
      '640x360',
      '--stitch',
      'anim/%04d.png',
      '--report',
      'r.json',
      '--plain',
    ]);
    expect(await eventually(() => /frame \d+ stitched/.test(run.stderr()), 120_000), run.stderr()).toBe(true);
    run.child.kill('SIGINT');
    expect(await within(run.closed, RUN_MS, 'distray to exit'), run.stderr()).toBe(130);
    expect(partFiles(join(cwd, 'anim'))).toEqual([]);
    const frames = (
      JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
        frames: Array<{ frame: number; status: string; output: string }>;
      }
    ).frames;
    const stitched = frames.filter((f) => f.status === 'stitched');
    expect(stitched.length).toBeGreaterThan(0);
    expect(frames.length).toBe(40);
    // Whatever is at a final path is a whole frame.
    for (const name of readdirSync(join(cwd, 'anim'))) {
      const meta = await sharp(join(cwd, 'anim', name)).metadata();
      expect([meta.width, meta.height]).toEqual([640, 360]);
    }
  });

  it('Ctrl+C during a large upload stops it and leaves no temporary file on the host', async () => {
    const cwd = workspace();
    const wd = join(good.workdir, 'upload');
    execFileSync('truncate', ['-s', '2G', join(cwd, 'big.bin')]);
    const inv = inventoryFor([hostEntry(farm, good, { workdir: wd })], 'upload.yaml');
    const run = background(cwd, ['run', inv, '0', 'true', '--in', 'big.bin', '--report', 'r.json', '--plain']);
    expect(await eventually(() => partFiles(wd).length > 0, 30_000), run.stderr()).toBe(true);
    run.child.kill('SIGINT');
    expect(await within(run.closed, RUN_MS, 'distray to exit'), run.stderr()).toBe(130);
    expect(partFiles(wd)).toEqual([]);
    expect(existsSync(join(wd, 'big.bin'))).toBe(false);
    expect(report(cwd).tasks[0]!.status).toBe('cancelled');
  });
});

describe('speculation', () => {
  it('a hung renderer is overtaken by a copy: the loser is stopped and its files removed on its host, the winner kept', async () => {
    const cwd = workspace();
    const slow = await farm.start('slowpoke');
    const marker = `sleep ${900 + Math.floor(Math.random() * 99)}.5`;
    const flag = join(cwd, 'slowpoke-started');
    // Whatever slowpoke takes, it writes part of its output and hangs; good renders only once slowpoke
    // has started one (both hosts are this machine), so slowpoke surely holds a task to overtake.
    const mk = script(
      cwd,
      'mk.sh',
      `mkdir -p out; if [ "$2" = slowpoke ]; then echo partial >"out/$1.txt"; touch '${flag}'; exec ${marker}; fi\n` +
        `while [ ! -e '${flag}' ]; do sleep 0.05; done; echo "$1 by $2" >"out/$1.txt"`,
    );
    const wd = (h: SshdHost): string => join(h.workdir, 'spec');
    const inv = inventoryFor(
      [hostEntry(farm, slow, { workdir: wd(slow) }), hostEntry(farm, good, { workdir: wd(good) })],
      'spec.yaml',
    );
    const r = await runCli(
      [
        'run',
        inv,
        '0,3',
        `./${mk}`,
        '%d',
        '%{host}',
        '--in',
        mk,
        '--out',
        'out/%d.txt=got/%d.txt',
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    for (let f = 0; f <= 3; f++) expect(readFileSync(join(cwd, 'got', `${f}.txt`), 'utf8')).toBe(`${f} by good\n`);
    const rep = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
      tasks: Array<{ frame: number; host: string; copies: number; won?: { host: string } }>;
    };
    const overtaken = rep.tasks.filter((t) => t.copies === 2);
    expect(overtaken.length).toBeGreaterThan(0);
    for (const t of overtaken) expect(t).toMatchObject({ host: 'good', won: { host: 'good' } });
    // The losers' renderers are gone, and so is what they wrote.
    expect(await eventually(() => processesStartingWith(marker).length === 0, 30_000)).toBe(true);
    expect(readdirSync(join(wd(slow), 'out'))).toEqual([]);
    await slow.stop();
  });
});
