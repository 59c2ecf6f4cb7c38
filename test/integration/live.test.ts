import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';
import { eventually, RUN_MS, within } from '../helpers/wait.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

let farm: Farm;
let n = 0;

interface Report {
  ok: boolean;
  tasks: Array<{
    frame: number;
    status: string;
    host: string | null;
    attempts: number;
    copies: number;
    won?: { host: string; attempt: number };
  }>;
  hosts: Array<{ name: string; state: string; tasksDone: number; failures: number; message?: string }>;
}

/**
 * A renderer that keeps its own log of what ran where: each start is a line
 * in started.log in the host's workdir, and the output names its host.
 */
const RENDER = (seconds: number): string[] => [
  'sh',
  '-c',
  `echo "$0" >> started.log; sleep ${seconds}; mkdir -p out; echo "frame $0 rendered by $1" > "out/$0.txt"`,
  '%d',
  '%{host}',
  '--out',
  'out/%d.txt=f/%d.txt',
];

function workspace(): string {
  const dir = join(farm.dir, `l${++n}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Frames started in a workdir, in order (the renderer's own log). */
function started(workdir: string): number[] {
  const log = join(workdir, 'started.log');
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map(Number) : [];
}

function expectFrames(cwd: string, first: number, last: number): void {
  for (let f = first; f <= last; f++)
    expect(readFileSync(join(cwd, 'f', `${f}.txt`), 'utf8')).toMatch(new RegExp(`^frame ${f} rendered by \\w+\\n$`));
}

/** The CLI in the background, its stderr kept as it comes (to wait for lines) until it exits. */
function background(args: string[], cwd: string): { stderr: () => string; exit: Promise<number | null> } {
  const env = { ...process.env };
  delete env.SSH_AUTH_SOCK;
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return { stderr: () => stderr, exit: new Promise((resolve) => child.on('close', resolve)) };
}

beforeAll(() => {
  farm = startFarm();
});

afterAll(async () => {
  await farm?.stop();
});

describe('hosts that go away and come during a run', () => {
  it('copies the frames of a host killed mid-run to the others at once: the run ends without waiting out a 10-minute grace', async () => {
    const cwd = workspace();
    const hosts = [await farm.start('x1'), await farm.start('x2'), await farm.start('victim')];
    const victim = hosts[2]!;
    const workdir = (h: SshdHost): string => join(h.workdir, 'killed');
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hosts.map((h) => hostEntry(farm, h, { workdir: workdir(h) })).join('\n')}\n`,
      'killed.yaml',
    );
    // --grace 10m: renderers of a lost host would be waited for 10 minutes; the test's own timeout (2 minutes) is far shorter,
    // so the run finishing at all shows that no slot waited for the dead host.
    const run = background(
      ['run', inv, '1,12', ...RENDER(1.5), '--grace', '10m', '--report', 'r.json', '--plain'],
      cwd,
    );
    // The victim has finished one frame and started its next: it dies in the middle of that one.
    expect(await eventually(() => started(workdir(victim)).length >= 2, 30_000)).toBe(true);
    await victim.crash();
    const code = await within(run.exit, RUN_MS, 'distray to exit');
    expect(code, run.stderr()).toBe(0);
    expect(run.stderr()).toMatch(/host victim: lost/);
    expectFrames(cwd, 1, 12);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks.every((t) => t.status === 'done')).toBe(true);
    expect(report.hosts.find((h) => h.name === 'victim')?.state).toMatch(/lost|reconnecting/);
    // The frames the victim started and did not finish were done elsewhere, by a copy started for them.
    const wonByVictim = new Set(report.tasks.filter((t) => t.won?.host === 'victim').map((t) => t.frame));
    const lostFrames = started(workdir(victim)).filter((f) => !wonByVictim.has(f));
    expect(lostFrames.length).toBeGreaterThanOrEqual(1);
    for (const f of lostFrames) {
      const t = report.tasks.find((x) => x.frame === f)!;
      expect(t.won?.host, `frame ${f}`).not.toBe('victim');
      expect(t.copies, `frame ${f}`).toBeGreaterThanOrEqual(2);
      expect(readFileSync(join(cwd, 'f', `${f}.txt`), 'utf8')).toBe(`frame ${f} rendered by ${t.won!.host}\n`);
    }
  }, 120_000);

  it('follows an edited inventory: a host added takes tasks, a host removed finishes its running one and leaves, a broken edit is ignored', async () => {
    const cwd = workspace();
    const [e1, e2, e3] = [await farm.start('e1'), await farm.start('e2'), await farm.start('e3')];
    const wd = (h: SshdHost, name = h.name): string => join(h.workdir, `edited-${name}`);
    const entry = (h: SshdHost, name = h.name): string => hostEntry(farm, h, { name, workdir: wd(h, name) });
    // e4 (e1's server, another workdir) is excluded, and --exclude keeps applying to the re-read inventory.
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${[entry(e1), entry(e2), entry(e1, 'e4')].join('\n')}\n`,
      'edited.yaml',
    );
    const run = background(['run', inv, '1,16', ...RENDER(1), '--exclude', 'e4', '--report', 'r.json', '--plain'], cwd);
    expect(await eventually(() => started(wd(e2)).length >= 1 && /done on e2/.test(run.stderr()), 30_000)).toBe(true);

    writeFileSync(inv, `${defaultsBlock(farm)}hosts:\n${entry(e1)}\n  - host: 127.0.0.1\n    slots: many\n`);
    expect(
      await eventually(
        () => /edited\.yaml \(changed\): .*edited\.yaml:\d+.*slots.*edit ignored/.test(run.stderr()),
        20_000,
      ),
    ).toBe(true);

    writeFileSync(inv, `${defaultsBlock(farm)}hosts:\n${[entry(e1), entry(e3), entry(e1, 'e4')].join('\n')}\n`);
    expect(await eventually(() => /edited\.yaml re-read \(changed\): \+e3, -e2/.test(run.stderr()), 20_000)).toBe(true);
    // What e2 had been given when it was removed: the frame it renders, and at most one queued behind it.
    const e2AtEdit = started(wd(e2)).length;

    const code = await within(run.exit, RUN_MS, 'distray to exit');
    expect(code, run.stderr()).toBe(0);
    expectFrames(cwd, 1, 16);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks.every((t) => t.status === 'done')).toBe(true);
    const host = (name: string): Report['hosts'][number] | undefined => report.hosts.find((h) => h.name === name);

    // e3 joined and took tasks: the renderer's log on e3 and the report agree.
    const onE3 = started(wd(e3));
    expect(onE3.length).toBeGreaterThanOrEqual(1);
    expect(host('e3')?.tasksDone).toBe(report.tasks.filter((t) => t.won?.host === 'e3').length);
    expect(host('e3')!.tasksDone).toBeGreaterThanOrEqual(1);
    for (const f of onE3)
      expect(readFileSync(join(cwd, 'f', `${f}.txt`), 'utf8')).toMatch(/^frame \d+ rendered by e[13]\n$/);

    // e2 started nothing new after the edit but what it held then, finished it (not cancelled), and left.
    const onE2 = started(wd(e2));
    expect(onE2.length).toBeLessThanOrEqual(e2AtEdit + 1);
    expect(host('e2')).toMatchObject({ state: 'removed' });
    const last = onE2[onE2.length - 1]!;
    expect(report.tasks.find((t) => t.frame === last)?.won?.host).toBe('e2');
    expect(host('e2')?.tasksDone).toBe(onE2.length);
    expect(run.stderr()).toMatch(/host e2 left the run/);

    // Excluded by --exclude: never connected, never ran anything.
    expect(host('e4')).toBeUndefined();
    expect(started(wd(e1, 'e4'))).toEqual([]);
  }, 120_000);

  it('takes a changed slots: at the next task, and never runs more than the new count at once', async () => {
    const cwd = workspace();
    copyFileSync(join(fixtures, 'render.sh'), join(cwd, 'render.sh'));
    const h = await farm.start('grow');
    const workdir = join(h.workdir, 'grow');
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h, { workdir })}\n`, 'grow.yaml');
    // render.sh notes in concurrency.log how many copies of itself run at once in the workdir. --no-speculate: a copy
    // stopped as the loser of a race would leave its mark there (render.sh does not clean up when killed).
    const args = [
      'run',
      inv,
      '1,12',
      'sh',
      'render.sh',
      '%d',
      'out/%d.txt',
      '%{host}',
      '1',
      '--in',
      'render.sh',
      '--out',
      'out/%d.txt=f/%d.txt',
      '--report',
      'r.json',
      '--plain',
      '--no-speculate',
    ];
    const run = background(args, cwd);
    expect(await eventually(() => /done on grow/.test(run.stderr()), 30_000)).toBe(true);
    writeFileSync(inv, `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h, { workdir, slots: 3 })}\n`);
    expect(
      await eventually(() => /grow\.yaml re-read \(changed\): grow \(slots 1 -> 3\)/.test(run.stderr()), 20_000),
    ).toBe(true);
    const code = await within(run.exit, RUN_MS, 'distray to exit');
    expect(code, run.stderr()).toBe(0);
    expectFrames(cwd, 1, 12);
    const counts = readFileSync(join(workdir, 'concurrency.log'), 'utf8').trim().split('\n').map(Number);
    // One at a time before the edit; three at once after it, and never more (the old connection's lease counts).
    expect(counts[0]).toBe(1);
    expect(Math.max(...counts)).toBe(3);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.hosts).toEqual([expect.objectContaining({ name: 'grow', state: 'done', tasksDone: 12 })]);
  }, 120_000);
});
