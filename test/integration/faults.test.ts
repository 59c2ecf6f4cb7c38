import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, processesStartingWith, RUN_MS, uniqueSleep, within } from '../helpers/wait.js';
import { CLI, runCli } from '../helpers/cli.js';
import { startProxy } from '../helpers/proxy.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

let farm: Farm;
let hosts: SshdHost[];
let n = 0;

interface Report {
  ok: boolean;
  tasks: Array<{ frame: number; status: string; host: string | null; attempts: number; error?: string }>;
  hosts: Array<{ name: string; state: string; tasksDone: number; failures: number; message?: string }>;
}

function workspace(): string {
  const dir = join(farm.dir, `f${++n}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(fixtures, 'render.sh'), join(dir, 'render.sh'));
  execFileSync('chmod', ['+x', join(dir, 'render.sh')]);
  return dir;
}

const running = (marker: string): number => processesStartingWith(marker).length;

/** Every output is present and right, and nothing temporary is left at a final path. */
function expectFrames(cwd: string, first: number, last: number): void {
  for (let f = first; f <= last; f++) {
    expect(readFileSync(join(cwd, 'f', `${f}.txt`), 'utf8')).toMatch(new RegExp(`^frame ${f} rendered by \\w+\\n$`));
  }
  expect(readdirSync(join(cwd, 'f')).filter((x) => !/^\d+\.txt$/.test(x))).toEqual([]);
}

/**
 * A shell command for a renderer's first lines: records this task (named by `who`, a shell
 * word; the frame by default) under `dir`, then waits until `count` tasks have, and says in
 * barrier.log whether they did or it gave up after 150 s (so a test fails, not hangs).
 */
function barrier(dir: string, count: number, who = '$1'): string {
  return (
    `mkdir -p ${dir}; touch ${dir}/"${who}"; i=0; ` +
    `while [ "$(ls ${dir} | wc -l)" -lt ${count} ] && [ $i -lt 1500 ]; do sleep 0.1; i=$((i+1)); done; ` +
    `if [ $i -lt 1500 ]; then echo passed >> barrier.log; else echo timed out >> barrier.log; fi`
  );
}

const RENDER = (pause: string): string[] => [
  './render.sh',
  '%d',
  'out/%d.txt',
  '%{host}',
  pause,
  '--in',
  'render.sh',
  '--out',
  'out/%d.txt=f/%d.txt',
];

beforeAll(async () => {
  farm = startFarm();
  hosts = [await farm.start('k1'), await farm.start('k2'), await farm.start('k3')];
});

afterAll(async () => {
  await farm?.stop();
});

describe('faults', () => {
  it('two controllers sharing hosts with slots: 2 never run more than 2 renderers at once on a host', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  slots: 2\n')}hosts:\n${hosts.map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'shared') })).join('\n')}\n`,
      'shared.yaml',
    );
    const [a, b] = await Promise.all([
      runCli(['run', inv, '1,18', ...RENDER('0.3'), '--log-dir', 'logs-a'], { cwd }),
      runCli(['run', inv, '101,118', ...RENDER('0.3'), '--log-dir', 'logs-b'], { cwd }),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    for (const h of hosts) {
      const counts = readFileSync(join(h.workdir, 'shared', 'concurrency.log'), 'utf8')
        .trim()
        .split('\n')
        .map(Number);
      expect(Math.max(...counts), h.name).toBeLessThanOrEqual(2);
    }
    expectFrames(cwd, 1, 18);
    expectFrames(cwd, 101, 118);
  });

  it('runs more slots than MaxSessions allows on one connection', async () => {
    const cwd = workspace();
    const tight = await farm.start('tight', 'MaxSessions 3');
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${hostEntry(farm, tight, { slots: 6 })}\n`, 'tight.yaml');
    // The first six frames wait for each other: they pass only once six run at once (or after
    // 150 s, noted as a timeout), however long a loaded machine takes to open the slots.
    const [, ...render] = RENDER('0.3');
    const r = await runCli(
      ['run', inv, '1,24', 'sh', '-c', `${barrier('started', 6)}; exec ./render.sh "$@"`, 'render', ...render],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(tight.workdir, 'barrier.log'), 'utf8')).not.toMatch(/timed out/);
    const counts = readFileSync(join(tight.workdir, 'concurrency.log'), 'utf8').trim().split('\n').map(Number);
    expect(Math.max(...counts)).toBeLessThanOrEqual(6);
    expectFrames(cwd, 1, 24);
    await tight.stop();
  });

  it('takes out a host whose renderer always fails, and the others finish the job', async () => {
    const cwd = workspace();
    // k1's renderer install is broken (the program is missing there); k2 and k3 have it.
    const entries = hosts.map((h, i) =>
      hostEntry(farm, h, {
        workdir: join(h.workdir, 'broken'),
        env: { RENDERER: i === 0 ? '/opt/missing/render' : './render.sh' },
      }),
    );
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${entries.join('\n')}\n`, 'broken.yaml');
    const r = await runCli(
      [
        'run',
        inv,
        '1,24',
        'sh',
        '-c',
        'exec "$RENDERER" "$@"',
        'render',
        '%d',
        'out/%d.txt',
        '%{host}',
        '0.2',
        '--in',
        'render.sh',
        '--out',
        'out/%d.txt=f/%d.txt',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    const k1 = report.hosts.find((h) => h.name === 'k1')!;
    expect(k1).toMatchObject({ state: 'blocked', tasksDone: 0, failures: 3 });
    expect(k1.message).toMatch(/3 different tasks in a row.*not found/s);
    expect(report.tasks.every((t) => t.status === 'done' && t.host !== 'k1')).toBe(true);
    expectFrames(cwd, 1, 24);
  });

  it('puts the frame of a host that dies mid-frame back in the queue, and the host rejoins when it is back', async () => {
    const cwd = workspace();
    const victim = await farm.start('victim');
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${[victim, hosts[1]!].map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'crash') })).join('\n')}\n`,
      'crash.yaml',
    );
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [CLI, 'run', inv, '1,24', ...RENDER('0.5'), '--report', 'r.json', '--retries', '0', '--plain'],
      { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    expect(await eventually(() => /done on victim/.test(stderr), 120_000)).toBe(true);
    await victim.crash();
    // Back only once distray has seen it go.
    expect(await eventually(() => /host victim: lost/.test(stderr), 120_000), stderr).toBe(true);
    await victim.restart();
    const code = await within(
      new Promise<number | null>((resolve) => child.on('close', resolve)),
      RUN_MS,
      'distray to exit',
    );
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/interrupted: victim was lost; it goes back to the queue/);
    expect(stderr).toMatch(/host victim is back after \d+ s/);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    // --retries 0: the frame the lost host held was not counted as a failed attempt.
    expect(report.tasks.every((t) => t.status === 'done' && t.attempts === 1)).toBe(true);
    const after = stderr.slice(stderr.indexOf('is back'));
    expect(after).toMatch(/done on victim/);
    expectFrames(cwd, 1, 24);
    await victim.stop();
  });

  it('notices a host that silently stops answering (keepalive) and renders its frame elsewhere', async () => {
    const cwd = workspace();
    const quiet = await farm.start('quiet');
    const proxy = await startProxy(quiet.port);
    // distray reaches "quiet" only through the proxy, and checks its key under the proxy's port.
    // --grace 5s: once keepalive gives up, the frame waits 5 s (not 30) for the host to come back.
    // --no-speculate: this is the path without copies (with them, frame 4 is done elsewhere before the loss is noticed).
    writeFileSync(farm.knownHosts, `[127.0.0.1]:${proxy.port} ${quiet.hostKey}\n`, { flag: 'a' });
    const entries = [
      `  - host: 127.0.0.1\n    name: quiet\n    port: ${proxy.port}\n    workdir: ${join(quiet.workdir, 'silent')}`,
      hostEntry(farm, hosts[1]!, { workdir: join(hosts[1]!.workdir, 'silent') }),
    ];
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${entries.join('\n')}\n`, 'silent.yaml');
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        '1,8',
        ...RENDER('1'),
        '--report',
        'r.json',
        '--retries',
        '0',
        '--plain',
        '--grace',
        '5s',
        '--no-speculate',
      ],
      { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    expect(await eventually(() => /done on quiet/.test(stderr), 120_000)).toBe(true);
    proxy.cut();
    const cutAt = Date.now();
    // Keepalive notices in about 30 s; without it a silent connection is never noticed (the
    // run would hang). The bounds are generous for a loaded machine, not a measure of speed.
    expect(await eventually(() => /host quiet: lost/.test(stderr), 150_000), stderr).toBe(true);
    const noticedAfter = (Date.now() - cutAt) / 1000;
    expect(noticedAfter).toBeGreaterThan(20);
    expect(noticedAfter).toBeLessThan(120);
    const code = await within(
      new Promise<number | null>((resolve) => child.on('close', resolve)),
      RUN_MS,
      'distray to exit',
    );
    // Once lost: 5 s of grace, then the frame (1 s) on the other host. Under the default 30 s
    // of grace it would take more than 30 s: 28 leaves a loaded machine 22 s for the rest.
    expect((Date.now() - cutAt) / 1000 - noticedAfter).toBeLessThan(28);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks.every((t) => t.status === 'done' && t.attempts === 1)).toBe(true);
    expectFrames(cwd, 1, 8);
    await proxy.close();
    await quiet.stop();
  });

  /**
   * A run of `frames` on one host reached through a proxy the test can reset
   * (a network blip). Each renderer logs its start on the host and runs until
   * the test writes `go` in the workdir, so the blip falls inside it however
   * slow the machine. --no-speculate: a copy elsewhere would be a second start.
   */
  async function blipRun(name: string, frames: string, slots: number) {
    const cwd = workspace();
    const blip = await farm.start(name);
    const proxy = await startProxy(blip.port);
    writeFileSync(farm.knownHosts, `[127.0.0.1]:${proxy.port} ${blip.hostKey}\n`, { flag: 'a' });
    const workdir = join(blip.workdir, name);
    const inv = farm.inventory(
      `${defaultsBlock(farm, `  slots: ${slots}\n`)}hosts:\n  - host: 127.0.0.1\n    name: ${name}\n    port: ${proxy.port}\n    workdir: ${workdir}\n`,
      `${name}.yaml`,
    );
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const script = `echo "$0" >> starts.log; while [ ! -e go ]; do sleep 0.05; done; echo "frame $0 rendered by ${name}" > "out/$0.txt"`;
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        inv,
        frames,
        'sh',
        '-c',
        script,
        '%d',
        '--out',
        'out/%d.txt=f/%d.txt',
        '--report',
        'r.json',
        '--plain',
        '--no-speculate',
      ],
      {
        cwd,
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    return {
      cwd,
      proxy,
      get stderr(): string {
        return stderr;
      },
      /** The frames whose renderer has started on the host, in order. */
      starts: (): string[] =>
        existsSync(join(workdir, 'starts.log'))
          ? readFileSync(join(workdir, 'starts.log'), 'utf8').trim().split('\n')
          : [],
      go: (): void => writeFileSync(join(workdir, 'go'), ''),
      exited: new Promise<number | null>((resolve) => child.on('close', resolve)),
      async stop(): Promise<void> {
        await proxy.close();
        await blip.stop();
      },
    };
  }

  it('picks up the result of a frame that ran on through a short network blip, instead of rendering it again', async () => {
    const run = await blipRun('blip', '1,2', 2);
    expect(await eventually(() => run.starts().length === 2, 120_000)).toBe(true);
    run.proxy.reset();
    expect(await eventually(() => /host blip is back/.test(run.stderr), 120_000), run.stderr).toBe(true);
    run.go();
    const code = await within(run.exited, RUN_MS, 'distray to exit');
    expect(code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/host blip: lost/);
    expect(run.stderr).toMatch(/frame 1: picked up its result on blip after the connection came back/);
    // Each frame was rendered exactly once.
    expect(run.starts().sort()).toEqual(['1', '2']);
    const report = JSON.parse(readFileSync(join(run.cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks.map((t) => [t.status, t.attempts])).toEqual([
      ['done', 1],
      ['done', 1],
    ]);
    expectFrames(run.cwd, 1, 2);
    await run.stop();
  });

  it('picks up the result of a frame that ended while the connection was down', async () => {
    const run = await blipRun('blip2', '1', 1);
    expect(await eventually(() => run.starts().length === 1, 120_000)).toBe(true);
    run.proxy.reset();
    // The frame ends while no controller is there.
    expect(await eventually(() => /host blip2: lost/.test(run.stderr), 120_000), run.stderr).toBe(true);
    run.go();
    const code = await within(run.exited, RUN_MS, 'distray to exit');
    expect(code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/frame 1: picked up its result on blip2 after the connection came back/);
    expect(run.starts()).toEqual(['1']);
    expectFrames(run.cwd, 1, 1);
    await run.stop();
  });

  it('opens many hosts on a server with a small MaxStartups without losing any', async () => {
    const cwd = workspace();
    const busy = await farm.start('busy', 'MaxStartups 3');
    const entries = Array.from(
      { length: 12 },
      (_, i) =>
        `  - host: 127.0.0.1\n    name: b${i}\n    port: ${busy.port}\n    workdir: ${join(busy.workdir, `b${i}`)}`,
    );
    const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${entries.join('\n')}\n`, 'startups.yaml');
    // Each host's first frame waits until every host has started one (or 150 s, noted as a
    // timeout): on a loaded machine the quick ones would otherwise finish all 48 frames
    // before the throttled ones are in, and a host that never made it would go unseen.
    const [, ...render] = RENDER('0.5');
    const r = await runCli(
      [
        'run',
        inv,
        '1,48',
        'sh',
        '-c',
        `${barrier('../joined', 12, '$3')}; exec ./render.sh "$@"`,
        'render',
        ...render,
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(busy.log, 'utf8')).toMatch(
      /drop connection #\d+ .*past MaxStartups|beginning MaxStartups throttling/,
    );
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    // Dropped handshakes were tried again: no host was given up as unreachable.
    expect(
      report.hosts.filter((h) => h.state === 'unreachable'),
      JSON.stringify(report.hosts),
    ).toEqual([]);
    expect(
      report.hosts
        .filter((h) => h.tasksDone > 0)
        .map((h) => h.name)
        .sort(),
    ).toEqual(entries.map((_, i) => `b${i}`).sort());
    for (let i = 0; i < 12; i++)
      expect(readFileSync(join(busy.workdir, `b${i}`, 'barrier.log'), 'utf8')).not.toMatch(/timed out/);
    expectFrames(cwd, 1, 48);
    await busy.stop();
  });

  it('stops the renderers by themselves when the controller is killed outright', async () => {
    const cwd = workspace();
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  slots: 2\n')}hosts:\n${hosts.map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'sigkill') })).join('\n')}\n`,
      'sigkill.yaml',
    );
    const marker = uniqueSleep(43);
    expect(running(marker)).toBe(0);
    const env = { ...process.env };
    delete env.SSH_AUTH_SOCK;
    const child = spawn(
      process.execPath,
      [CLI, 'run', inv, '1,6', 'sh', '-c', `${marker}; echo x > out$0`, '%d', '--out', 'out%d=f%d', '--grace', '2s'],
      { cwd, env, stdio: 'ignore' },
    );
    expect(await eventually(() => running(marker) === 6, 120_000)).toBe(true);
    child.kill('SIGKILL');
    // sshd closes the sessions; each host shell sees end of input, waits out --grace, and stops its renderers.
    // About 2 s (--grace) once sshd has closed the sessions; generous for a loaded machine.
    expect(await eventually(() => running(marker) === 0, 60_000)).toBe(true);
  });
});
