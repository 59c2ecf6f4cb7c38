import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, processesStartingWith, RUN_MS, uniqueSleep, within } from '../helpers/wait.js';
import { CLI, runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

let farm: Farm;
let hosts: SshdHost[];

const running = processesStartingWith;

beforeAll(async () => {
  farm = startFarm();
  hosts = [await farm.start('s1'), await farm.start('s2')];
});

afterAll(async () => {
  await farm?.stop();
});

describe('stopping renderers', () => {
  it('stops an attempt past --timeout on the host and counts it as failed', async () => {
    const cwd = join(farm.dir, 'timeout');
    mkdirSync(cwd);
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hosts.map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'timeout') })).join('\n')}\n`,
      'timeout.yaml',
    );
    // Far longer than any limit below: a run that waited for it could not pass.
    const marker = uniqueSleep(600);
    // Frame 2 hangs (and forks a child that would outlive a plain kill); the others finish.
    const script = `if [ "$0" = 2 ]; then (${marker}) & ${marker}; fi; echo done > out$0`;
    const started = Date.now();
    const r = await runCli(
      [
        'run',
        inv,
        '1,3',
        'sh',
        '-c',
        script,
        '%d',
        '--out',
        'out%d=f%d',
        '--timeout',
        '2s',
        '--retries',
        '1',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code).toBe(1);
    // Not a speed claim: the hung renderer sleeps 600 s, so a run that waited for it (instead of
    // stopping it at --timeout) would take far longer. Generous for a loaded machine.
    expect(Date.now() - started).toBeLessThan(150_000);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
      tasks: Array<{ frame: number; status: string; attempts: number; error?: string }>;
    };
    expect(report.tasks.find((t) => t.frame === 2)).toMatchObject({ status: 'failed', attempts: 2 });
    expect(report.tasks.find((t) => t.frame === 2)!.error).toContain('timed out after 2s');
    expect(report.tasks.filter((t) => t.status === 'done')).toHaveLength(2);
    expect(running(marker)).toEqual([]);
  });

  it('on SIGINT stops every remote renderer, writes the report and exits 130', async () => {
    const cwd = join(farm.dir, 'sigint');
    mkdirSync(cwd);
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  slots: 2\n')}hosts:\n${hosts.map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'sigint') })).join('\n')}\n`,
      'sigint.yaml',
    );
    const marker = uniqueSleep(600);
    expect(running(marker)).toEqual([]);
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        '1,8',
        'sh',
        '-c',
        `${marker}; echo x > out$0`,
        '%d',
        '--out',
        'out%d=f%d',
        '--report',
        'r.json',
      ],
      { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    expect(await eventually(() => running(marker).length === 4, 120_000)).toBe(true);
    child.kill('SIGINT');
    const code = await within(
      new Promise<number | null>((resolve) => child.on('close', resolve)),
      RUN_MS,
      'distray to exit',
    );
    expect(code, stderr).toBe(130);
    expect(await eventually(() => running(marker).length === 0, 60_000)).toBe(true);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
      ok: boolean;
      tasks: Array<{ status: string }>;
    };
    expect(report.ok).toBe(false);
    expect(report.tasks.every((t) => t.status === 'cancelled')).toBe(true);
    // No partial output reached a final path.
    expect(readdirSync(cwd).filter((f) => f.startsWith('f') || f.includes('.part'))).toEqual([]);
  });

  /**
   * A chunked renderer writing a frame at a time (a Blender -s/-e/-a): it writes frames 1-3, then blocks
   * before frame 4 until the test stops the run. `ext` decides whether the frames can be checked (PNGs
   * decode) or not (text: the last one written may be cut short by the stop, so it is not kept).
   */
  async function stopChunk(name: string, ext: 'png' | 'txt') {
    const cwd = join(farm.dir, name);
    mkdirSync(cwd);
    const workdir = join(hosts[0]!.workdir, name);
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, hosts[0]!, { workdir })}\n`,
      `${name}.yaml`,
    );
    const marker = uniqueSleep(600);
    // A real image for the PNG frames, sent with the task (the test needs no image tool on the host).
    writeFileSync(
      join(cwd, 'seed.png'),
      await sharp({ create: { width: 8, height: 8, channels: 3, background: '#c00' } })
        .png()
        .toBuffer(),
    );
    const write = ext === 'png' ? 'cp seed.png out/f$f.png' : 'echo "frame $f" > out/f$f.txt';
    const script = `mkdir -p out; f=$0; while [ $f -le $1 ]; do if [ $f = 4 ] && [ ! -e go ]; then ${marker}; fi; ${write}; f=$((f+1)); done`;
    const args = [
      'run',
      inv,
      '1,8',
      'sh',
      '-c',
      script,
      '%{first}',
      '%{last}',
      '--chunk',
      '8',
      '--in',
      'seed.png',
      '--out',
      `out/f%d.${ext}=f%d.${ext}`,
      '--report',
      'r.json',
    ];
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // Frames 1-3 are written once the renderer blocks before frame 4.
    expect(await eventually(() => running(marker).length === 1, 120_000)).toBe(true);
    child.kill('SIGINT');
    const code = await within(
      new Promise<number | null>((resolve) => child.on('close', resolve)),
      RUN_MS,
      'distray to exit',
    );
    expect(code, stderr).toBe(130);
    expect(await eventually(() => running(marker).length === 0, 60_000)).toBe(true);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as {
      tasks: Array<{ frame: number; last?: number; status: string }>;
      missingFrames?: number[];
    };
    // Nothing is left half-kept: no temporary file here, and what was not kept is gone from the host.
    expect(readdirSync(cwd).filter((f) => f.includes('.part'))).toEqual([]);
    const rerun = await runCli(
      [
        'run',
        inv,
        '1,8',
        'sh',
        '-c',
        `touch go; ${script}`,
        '%{first}',
        '%{last}',
        '--chunk',
        '8',
        '--in',
        'seed.png',
        '--out',
        `out/f%d.${ext}=f%d.${ext}`,
        '--report',
        'r2.json',
      ],
      { cwd },
    );
    expect(rerun.code, rerun.stderr).toBe(0);
    const again = JSON.parse(readFileSync(join(cwd, 'r2.json'), 'utf8')) as {
      tasks: Array<{ frame: number; last?: number; status: string }>;
    };
    return { cwd, stderr, report, again, workdir };
  }

  it('keeps the frames a chunk finished when the run is stopped, and a rerun renders only the rest', async () => {
    const { cwd, report, again } = await stopChunk('stop-chunk-png', 'png');
    expect(report.tasks.map((t) => [t.frame, t.last, t.status])).toEqual([
      [1, 3, 'done'],
      [4, 8, 'cancelled'],
    ]);
    expect(report.missingFrames).toEqual([4, 5, 6, 7, 8]);
    expect(again.tasks.map((t) => [t.frame, t.last, t.status])).toEqual([
      [1, 3, 'skipped'],
      [4, 8, 'done'],
    ]);
    expect(
      readdirSync(cwd)
        .filter((f) => /^f\d+\.png$/.test(f))
        .sort(),
    ).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((f) => `f${f}.png`));
  });

  it('on a stop, does not keep the last frame a chunk wrote when it cannot be checked (it may be cut short)', async () => {
    const { report, again } = await stopChunk('stop-chunk-txt', 'txt');
    expect(report.tasks.map((t) => [t.frame, t.last, t.status])).toEqual([
      [1, 2, 'done'],
      [3, 8, 'cancelled'],
    ]);
    expect(again.tasks.map((t) => [t.frame, t.last, t.status])).toEqual([
      [1, 2, 'skipped'],
      [3, 8, 'done'],
    ]);
  });

  it('exits 2 on a usage error without connecting', async () => {
    const cwd = join(farm.dir, 'usage');
    mkdirSync(cwd);
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, hosts[0]!)}\n`, 'usage.yaml');
    const before = readFileSync(hosts[0]!.log, 'utf8').split('Accepted publickey').length;
    for (const args of [
      ['run', inv, '1,10,0', 'r'],
      ['run', inv, '1,3', 'r', '%{nope}'],
      ['run', inv, '1,3', 'r', '--out', '/etc/x%d'],
      ['run', inv, '1,3', 'r', '--in', 'missing-file'],
      ['run', inv, '1,3', 'r', '--timeout', 'soon'],
      ['run', join(cwd, 'no-such.yaml'), '1', 'r'],
      ['run', inv],
    ]) {
      const r = await runCli(args, { cwd });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^distray: /);
    }
    expect(readFileSync(hosts[0]!.log, 'utf8').split('Accepted publickey').length).toBe(before);
  });

  it('prints the plan with --dry-run and connects to nothing', async () => {
    const cwd = join(farm.dir, 'dry');
    mkdirSync(cwd);
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, hosts[0]!)}\n`, 'dry.yaml');
    const r = await runCli(
      ['run', inv, '1,2', 'povray', '+Ia b.pov', '+Of%04d.png', '--out', 'f%04d.png=anim/f%04d.png', '--dry-run'],
      { cwd },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("frame 1: povray '+Ia b.pov' +Of0001.png");
    expect(r.stdout).toContain('out: <host>:f0002.png -> anim/f0002.png');
  });
});
