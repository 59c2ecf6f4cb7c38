/**
 * Nothing a host or this machine does can hang a run: a host that goes
 * silent, bytes a login prints into the protocol, a FIFO where distray
 * writes its events or reads its inventory. Every run here must end, and
 * Ctrl+C or SIGTERM must end it; the limits below are only for a test that
 * would otherwise hang, never timing claims.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { eventually } from '../helpers/wait.js';
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
      const r = await Promise.race([closed, new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), HANG_MS)))]);
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
  it('after its tasks are done does not keep the run from ending', async () => {
    const cwd = workspace();
    const mute = await farm.start('mute-after');
    const go = join(cwd, 'go');
    // mute takes one task and ends it once good has started the other, which then waits for the test.
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, mute, { workdir: join(mute.workdir, 'a') })}\n${hostEntry(farm, good, { workdir: join(good.workdir, 'a') })}\n`,
      'mute-after.yaml',
    );
    const body = `if [ "$1" = good ]; then touch '${go}.started'; while [ ! -e '${go}' ]; do sleep 0.05; done; else while [ ! -e '${go}.started' ]; do sleep 0.05; done; fi`;
    const run = start(cwd, ['run', inv, '0,1', 'sh', '-c', body, 'r', '%{host}', '--no-speculate', '--events', 'ev.ndjson', '--report', 'r.json', '--plain']);
    expect(await eventually(() => events(cwd).some((e) => e.type === 'task-done' && e.host === 'mute-after'), HANG_MS), run.stderr()).toBe(true);
    const silent = silence(mute);
    try {
      writeFileSync(go, '');
      expect(await run.ended(), run.stderr()).toBe(0);
      // It ended while the host was still silent: it did not wait for the host, nor for keepalive to give it up.
      expect(silent.stillSilent()).toBe(true);
      const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as { hosts: Array<{ name: string; state: string }> };
      expect(report.hosts.find((h) => h.name === 'mute-after')!.state).toBe('done');
    } finally {
      silent.resume();
      await mute.stop();
    }
  }, 2 * HANG_MS);

  it('while it renders does not keep SIGTERM from ending the run', async () => {
    const cwd = workspace();
    const mute = await farm.start('mute-during');
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, mute, { workdir: join(mute.workdir, 'd') })}\n`, 'mute-during.yaml');
    const run = start(cwd, ['run', inv, '0', 'sleep', '600', '--events', 'ev.ndjson', '--report', 'r.json', '--plain']);
    expect(await eventually(() => events(cwd).some((e) => e.type === 'attempt-started'), HANG_MS), run.stderr()).toBe(true);
    const silent = silence(mute);
    try {
      run.child.kill('SIGTERM');
      expect(await run.ended(), run.stderr()).toBe(130);
      expect(silent.stillSilent()).toBe(true);
      const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as { tasks: Array<{ status: string }>; hosts: Array<{ state: string }> };
      expect(report.tasks[0]!.status).toBe('cancelled');
      // Stopped with the run, not given up by keepalive.
      expect(report.hosts[0]!.state).toBe('cancelled');
      expect(run.stderr()).toMatch(/did not confirm within \d+ s that its renderer stopped/);
    } finally {
      silent.resume();
      await mute.stop();
    }
  }, 2 * HANG_MS);
});
