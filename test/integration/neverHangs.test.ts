/**
 * Nothing a host or this machine does can hang a run: a host that goes
 * silent, bytes a login prints into the protocol, a FIFO where distray
 * writes its events or reads its inventory. Every run here must end, and
 * Ctrl+C or SIGTERM must end it; the limits below are only for a test that
 * would otherwise hang, never timing claims.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { eventually, processesStartingWith, uniqueSleep } from '../helpers/wait.js';
import { defaultsBlock, descendants, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

let farm: Farm;
let good: SshdHost;
let n = 0;

/** Long enough for a loaded machine at a quarter of its speed: a limit for a run that would hang, not a timing claim. */
const HANG_MS = 150_000;

beforeAll(async () => {
  farm = startFarm();
  good = await farm.start('good');
});

afterAll(async () => {
  await farm?.stop();
});

function workspace(): string {
  const dir = join(farm.dir, `w${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface Running {
  child: ChildProcess;
  /** The exit status, or 'hung' if the run had not ended within HANG_MS. */
  ended: () => Promise<number | null | 'hung'>;
  stderr: () => string;
}

function start(cwd: string, args: string[]): Running {
  const env = { ...process.env };
  delete env.SSH_AUTH_SOCK;
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    stderr: () => stderr,
    ended: async () => {
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        closed,
        new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS))),
      ]);
      clearTimeout(timer);
      if (r === 'hung') child.kill('SIGKILL');
      return r;
    },
  };
}

function events(cwd: string): Array<Record<string, unknown>> {
  const file = join(cwd, 'ev.ndjson');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The host goes silent: every sshd process serving its sessions is stopped (its TCP stays open, nothing answers). */
function silence(h: SshdHost): { stillSilent(): boolean; resume(): void } {
  const sessions = descendants(h.process.pid!).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sshd';
    } catch {
      return false;
    }
  });
  expect(sessions.length).toBeGreaterThan(0);
  for (const pid of sessions) process.kill(pid, 'SIGSTOP');
  const state = (pid: number): string | undefined => {
    try {
      return /\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
    } catch {
      return undefined;
    }
  };
  return {
    stillSilent: () => sessions.every((pid) => state(pid) === 'T'),
    resume: () => {
      for (const pid of sessions) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Gone.
        }
      }
    },
  };
}

describe('a host that goes silent', () => {
  it(
    'after its tasks are done does not keep the run from ending',
    async () => {
      const cwd = workspace();
      const mute = await farm.start('mute-after');
      const go = join(cwd, 'go');
      // mute takes one task and ends it once good has started the other, which then waits for the test.
      const inv = farm.inventory(
        `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, mute, { workdir: join(mute.workdir, 'a') })}\n${hostEntry(farm, good, { workdir: join(good.workdir, 'a') })}\n`,
        'mute-after.yaml',
      );
      const body = `if [ "$1" = good ]; then touch '${go}.started'; while [ ! -e '${go}' ]; do sleep 0.05; done; else while [ ! -e '${go}.started' ]; do sleep 0.05; done; fi`;
      const run = start(cwd, [
        'run',
        inv,
        '0,1',
        'sh',
        '-c',
        body,
        'r',
        '%{host}',
        '--no-speculate',
        '--events',
        'ev.ndjson',
        '--report',
        'r.json',
        '--plain',
      ]);
      expect(
        await eventually(() => events(cwd).some((e) => e.type === 'task-done' && e.host === 'mute-after'), HANG_MS),
        run.stderr(),
      ).toBe(true);
      const silent = silence(mute);
      try {
        writeFileSync(go, '');
        expect(await run.ended(), run.stderr()).toBe(0);
        // It ended while the host was still silent: it did not wait for the host, nor for keepalive to give it up.
        expect(silent.stillSilent()).toBe(true);
        const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
          hosts: Array<{ name: string; state: string }>;
        };
        expect(report.hosts.find((h) => h.name === 'mute-after')!.state).toBe('done');
      } finally {
        silent.resume();
        await mute.stop();
      }
    },
    2 * HANG_MS,
  );

  it(
    'while it renders does not keep SIGTERM from ending the run',
    async () => {
      const cwd = workspace();
      const mute = await farm.start('mute-during');
      const inv = farm.inventory(
        `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, mute, { workdir: join(mute.workdir, 'd') })}\n`,
        'mute-during.yaml',
      );
      // --grace 0: once the host is back, its shell stops the renderer at once rather than keep it for adoption.
      const run = start(cwd, [
        'run',
        inv,
        '0',
        'sleep',
        '600',
        '--grace',
        '0',
        '--events',
        'ev.ndjson',
        '--report',
        'r.json',
        '--plain',
      ]);
      expect(await eventually(() => events(cwd).some((e) => e.type === 'attempt-started'), HANG_MS), run.stderr()).toBe(
        true,
      );
      const silent = silence(mute);
      try {
        run.child.kill('SIGTERM');
        expect(await run.ended(), run.stderr()).toBe(130);
        expect(silent.stillSilent()).toBe(true);
        const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
          tasks: Array<{ status: string }>;
          hosts: Array<{ state: string }>;
        };
        expect(report.tasks[0]!.status).toBe('cancelled');
        // Stopped with the run, not given up by keepalive.
        expect(report.hosts[0]!.state).toBe('cancelled');
        expect(run.stderr()).toMatch(/did not confirm within \d+ s that its renderer stopped/);
      } finally {
        silent.resume();
        await mute.stop();
      }
    },
    2 * HANG_MS,
  );
});

/**
 * An sshd whose sessions run `prelude` before the command (as a user's
 * ~/.bashrc would), without touching this machine's real rc files. SFTP
 * goes to sftp-server untouched.
 */
function loginPrelude(prelude: string): string {
  return `ForceCommand case "$SSH_ORIGINAL_COMMAND" in internal-sftp) exec /usr/lib/openssh/sftp-server ;; esac; ${prelude}; eval "$SSH_ORIGINAL_COMMAND"`;
}

describe('what a login prints', () => {
  it(
    'a byte printed after the ready line, glued to the next protocol line, costs a warning, not the run',
    async () => {
      const cwd = workspace();
      const [running, printed] = [join(cwd, 'running'), join(cwd, 'printed')];
      // Something the login leaves running prints one byte, without a newline, once the task runs (the host shell has started).
      const stray = await farm.start(
        'stray',
        loginPrelude(`(while [ ! -e '${running}' ]; do sleep 0.05; done; printf x; touch '${printed}') & true`),
      );
      const inv = farm.inventory(
        `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, stray, { workdir: join(stray.workdir, 's') })}\n`,
        'stray.yaml',
      );
      // The task ends only after the byte, so its exit line comes after it.
      const task = `touch '${running}'; while [ ! -e '${printed}' ]; do sleep 0.05; done`;
      const r = await runCli(['run', inv, '0', 'sh', '-c', task, '--plain'], { cwd, timeoutMs: HANG_MS });
      expect(r.code, r.stderr).toBe(0);
      const warnings = r.stderr.split('\n').filter((l) => l.includes('its login printed'));
      expect(warnings).toEqual([
        'distray: host stray: its login printed "x" while distray ran (ignored: it is not distray\'s); make its rc files (such as ~/.bashrc) print nothing for a non-interactive shell',
      ]);
      await stray.stop();
    },
    2 * HANG_MS,
  );
});

describe('this machine', () => {
  it(
    'an --events FIFO that nobody reads is given up with a warning, and the run ends',
    async () => {
      const cwd = workspace();
      execFileSync('mkfifo', [join(cwd, 'ev.fifo')]);
      const inv = farm.inventory(`hosts:\n  - local: true\n    workdir: ${join(cwd, 'wd')}\n`, 'events-fifo.yaml');
      const r = await runCli(['run', inv, '0,1', 'true', '--events', 'ev.fifo', '--report', 'r.json', '--plain'], {
        cwd,
        timeoutMs: HANG_MS,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /--events ev\.fifo: cannot write the event stream: no reader opened the FIFO within \d+ s; the run goes on without it/,
      );
      expect(existsSync(join(cwd, 'r.json'))).toBe(true);
    },
    2 * HANG_MS,
  );

  it(
    '--events - whose reader takes nothing is given up with a warning, and the run ends',
    async () => {
      const cwd = workspace();
      // stdout is a FIFO that this test holds open for reading and never reads: it fills up.
      const fifo = join(cwd, 'stdout.fifo');
      execFileSync('mkfifo', [fifo]);
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        const inv = farm.inventory(
          `hosts:\n  - local: true\n    slots: 4\n    workdir: ${join(cwd, 'wd')}\n`,
          'events-stdout.yaml',
        );
        const env = { ...process.env };
        delete env.SSH_AUTH_SOCK;
        // Far more events than the pipe holds.
        const child = spawn(process.execPath, [CLI, 'run', inv, '0,299', 'true', '--events', '-', '--quiet'], {
          cwd,
          env,
          stdio: ['ignore', writer, 'pipe'],
        });
        let stderr = '';
        child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
        let timer: NodeJS.Timeout | undefined;
        const code = await Promise.race([
          new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c))),
          new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS))),
        ]);
        clearTimeout(timer);
        if (code === 'hung') child.kill('SIGKILL');
        expect(code, stderr).toBe(0);
        expect(stderr).toMatch(
          /--events stdout: cannot write the event stream: its reader took nothing for \d+ s; the run goes on without it/,
        );
      } finally {
        closeSync(writer);
        closeSync(reader);
      }
    },
    2 * HANG_MS,
  );

  it(
    'Ctrl+C ends a run whose --events FIFO nobody reads',
    async () => {
      const cwd = workspace();
      execFileSync('mkfifo', [join(cwd, 'ev.fifo')]);
      const inv = farm.inventory(`hosts:\n  - local: true\n    workdir: ${join(cwd, 'wd')}\n`, 'events-fifo-int.yaml');
      const marker = uniqueSleep(600);
      const run = start(cwd, [
        'run',
        inv,
        '0',
        'sh',
        '-c',
        marker,
        '--events',
        'ev.fifo',
        '--report',
        'r.json',
        '--plain',
      ]);
      expect(await eventually(() => processesStartingWith(marker).length > 0, HANG_MS), run.stderr()).toBe(true);
      run.child.kill('SIGINT');
      expect(await run.ended(), run.stderr()).toBe(130);
      const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as { tasks: Array<{ status: string }> };
      expect(report.tasks[0]!.status).toBe('cancelled');
      expect(await eventually(() => processesStartingWith(marker).length === 0, HANG_MS)).toBe(true);
    },
    2 * HANG_MS,
  );

  it(
    'an input that is a FIFO is refused at once with exit 2',
    async () => {
      const cwd = workspace();
      execFileSync('mkfifo', [join(cwd, 'scene.pov')]);
      const inv = farm.inventory(`hosts:\n  - local: true\n    workdir: ${join(cwd, 'wd')}\n`, 'input-fifo.yaml');
      const r = await runCli(['run', inv, '0', 'true', '--in', 'scene.pov'], { cwd, timeoutMs: HANG_MS });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/distray: --in scene\.pov is not a regular file or a directory/);
    },
    2 * HANG_MS,
  );

  it(
    'an identity file that is a FIFO is not read: the host cannot log in, and the run ends',
    async () => {
      const cwd = workspace();
      const key = join(cwd, 'id_fifo');
      execFileSync('mkfifo', [key]);
      const inv = farm.inventory(
        `hosts:\n  - host: 127.0.0.1\n    name: good\n    port: ${good.port}\n    user: ${farm.user}\n    knownHosts: ${farm.knownHosts}\n    identityFile: ${key}\n    workdir: ${join(good.workdir, 'k')}\n`,
        'key-fifo.yaml',
      );
      const r = await runCli(['run', inv, '0', 'true', '--report', 'r.json'], { cwd, timeoutMs: HANG_MS });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/cannot read .*id_fifo: .*id_fifo is not a regular file/);
    },
    2 * HANG_MS,
  );

  it(
    'a known_hosts that is a FIFO is not read: the host is refused, and the run ends',
    async () => {
      const cwd = workspace();
      const known = join(cwd, 'known_fifo');
      execFileSync('mkfifo', [known]);
      const inv = farm.inventory(
        `hosts:\n  - host: 127.0.0.1\n    name: good\n    port: ${good.port}\n    user: ${farm.user}\n    knownHosts: ${known}\n    identityFile: ${farm.clientKey}\n    workdir: ${join(good.workdir, 'kh')}\n`,
        'known-fifo.yaml',
      );
      const r = await runCli(['run', inv, '0', 'true', '--report', 'r.json'], { cwd, timeoutMs: HANG_MS });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/known_fifo is a FIFO, not a regular file/);
    },
    2 * HANG_MS,
  );

  it(
    'an inventory that is a FIFO is refused at once with exit 2',
    async () => {
      const cwd = workspace();
      // Nothing ever writes to it: reading it would wait for ever.
      execFileSync('mkfifo', [join(cwd, 'farm.yaml')]);
      const r = await runCli(['run', 'farm.yaml', '0', 'true', '--report', 'r.json'], { cwd, timeoutMs: HANG_MS });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(
        /distray: the inventory farm\.yaml is a FIFO, not a regular file; name the inventory's YAML file itself/,
      );
    },
    2 * HANG_MS,
  );
});
