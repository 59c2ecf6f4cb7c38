/**
 * npm run bench: distray against the ideal and against GNU parallel, on a
 * loopback sshd farm this script starts and stops. Prints times and ratios;
 * the test suite has no timed assertions, this is where speed is measured.
 *
 *   npm run bench                 # every scenario
 *   npm run bench -- overhead     # only the named ones
 *   npm run bench -- plan         # planning a million tasks only: no hosts are started
 *   npm run bench -- sim          # the scheduler alone on a simulated farm (bench/sim.ts)
 *   npm run bench -- speculate    # speculation on vs off: uneven farm, a hung host, a host killed mid-run
 */
import { execFileSync, spawn } from 'node:child_process';
import sharp from 'sharp';
import { tilesOf } from '../src/plan/tiles.js';
import { stitchFrame } from '../src/stitch/stitch.js';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simBench } from './sim.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../test/helpers/sshd.js';

const CLI = fileURLToPath(new URL('../bin/distray.cjs', import.meta.url));

interface Row {
  scenario: string;
  tool: string;
  seconds: number;
  ideal: number;
  note?: string;
}

/** This machine's CPU time so far (all processes, user + system), in seconds: every loopback host shares it. */
function machineCpu(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]! + fields[7]!;
  return busy / 100;
}

interface Timed {
  seconds: number;
  code: number | null;
  stderr: string;
  /** CPU seconds the whole machine spent meanwhile: controller, sshd, host shells, renderers. */
  cpu: number;
}

function timeCommand(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Timed> {
  const started = performance.now();
  const cpu = machineCpu();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env, SSH_AUTH_SOCK: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) =>
      resolve({ seconds: (performance.now() - started) / 1000, code, stderr, cpu: machineCpu() - cpu }),
    );
  });
}

/**
 * The renderer of the issue: sleeps, then writes 10 kB (the frame number,
 * zero-padded). One process besides the shell: the ideal counts only the
 * sleep, and on a 2-core machine 12 slots of a renderer that forks a
 * pipeline per frame (10 ms of CPU here) already take half the cores.
 */
const RENDERER = `#!/bin/sh
# bench renderer: render.sh FRAME OUT [SECONDS], else $BENCH_SLEEP seconds
# With $BENCH_HANG its host's first frame hangs that long (builtins only: others pay nothing).
[ -z "$BENCH_HANG" ] || [ -e hung ] || { : > hung; sleep "$BENCH_HANG"; }
sleep "\${3:-$BENCH_SLEEP}"
printf '%010240d' "$1" > "$2"
`;

function workspace(farm: Farm, name: string): string {
  const dir = join(farm.dir, 'bench', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'render.sh'), RENDERER, { mode: 0o755 });
  return dir;
}

interface DistrayExtra {
  /** More options of distray (--no-speculate). */
  args?: string[];
  /** More environment for each host (by index), e.g. BENCH_HANG. */
  env?: Array<Record<string, string>>;
  /** Called as the run starts (a host killed some time in). */
  during?: () => void;
}

async function distray(
  farm: Farm,
  name: string,
  hosts: SshdHost[],
  slots: number[],
  frames: number,
  secondsPerFrame: number[],
  extra: DistrayExtra = {},
): Promise<number> {
  const cwd = workspace(farm, name);
  const entries = hosts.map((h, i) =>
    hostEntry(farm, h, {
      slots: slots[i],
      workdir: join(h.workdir, name),
      env: { BENCH_SLEEP: String(secondsPerFrame[i]), ...extra.env?.[i] },
    }),
  );
  const inv = farm.inventory(`${defaultsBlock(farm)}hosts:\n${entries.join('\n')}\n`, `${name}.yaml`);
  // The per-host sleep comes from the host's env, so one command line serves uneven hosts.
  const running = timeCommand(
    process.execPath,
    [
      CLI,
      'run',
      inv,
      `1,${frames}`,
      './render.sh',
      '%d',
      'out/%d.bin',
      '--in',
      'render.sh',
      '--out',
      'out/%d.bin=out/%d.bin',
      '--plain',
      '--report',
      'report.json',
      ...(extra.args ?? []),
    ],
    cwd,
  );
  extra.during?.();
  const r = await running;
  if (r.code !== 0) throw new Error(`distray failed in ${name}:\n${r.stderr.slice(0, 3000)}`);
  const got = readdirSync(join(cwd, 'out')).length;
  if (got !== frames) throw new Error(`${name}: ${got} of ${frames} outputs`);
  phases(name, r, join(cwd, 'report.json'));
  return r.seconds;
}

/** Where a run's time went, from its report: start-up, rendering, and what came after. */
function phases(name: string, r: Timed, reportPath: string): void {
  const wall = r.seconds;
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as {
    seconds: number;
    tasks: Array<{ start?: number; end?: number; host: string }>;
  };
  const starts = report.tasks.flatMap((t) => (t.start === undefined ? [] : [t.start]));
  const ends = report.tasks.flatMap((t) => (t.end === undefined ? [] : [t.end]));
  const first = Math.min(...starts);
  const last = Math.max(...ends);
  const perHost = new Map<string, number>();
  for (const t of report.tasks) perHost.set(t.host, (perHost.get(t.host) ?? 0) + 1);
  console.error(
    `${name}: wall ${wall.toFixed(2)} s = node start ${(wall - report.seconds).toFixed(2)} + first task after ${first.toFixed(2)} + tasks ${(last - first).toFixed(2)} + after ${(report.seconds - last).toFixed(2)}; frames per host ${[...perHost.values()].join('/')}; machine CPU ${r.cpu.toFixed(1)} s (${((100 * r.cpu) / wall).toFixed(0)}%)`,
  );
}

async function gnuParallel(
  farm: Farm,
  name: string,
  hosts: SshdHost[],
  slots: number,
  frames: number,
  seconds: number,
): Promise<number> {
  const cwd = workspace(farm, name);
  mkdirSync(join(cwd, 'out'));
  const logins = hosts.flatMap((h) => [
    '-S',
    `${slots}/ssh -p ${h.port} -i ${farm.clientKey} -o UserKnownHostsFile=${farm.knownHosts} -o BatchMode=yes -o ControlMaster=no ${farm.user}@127.0.0.1`,
  ]);
  const seq = Array.from({ length: frames }, (_, i) => String(i + 1)).join('\n');
  writeFileSync(join(cwd, 'frames.txt'), seq + '\n');
  const r = await timeCommand(
    'parallel',
    [
      ...logins,
      '--workdir',
      '...',
      '--transferfile',
      'render.sh',
      '--return',
      'out/{}.bin',
      '--cleanup',
      '-a',
      'frames.txt',
      `mkdir -p out && ./render.sh {} out/{}.bin ${seconds}`,
    ],
    cwd,
    { PARALLEL_HOME: join(cwd, '.parallel') },
  );
  if (r.code !== 0) throw new Error(`parallel failed in ${name}:\n${r.stderr.slice(-2000)}`);
  const got = readdirSync(join(cwd, 'out')).length;
  if (got !== frames) throw new Error(`${name} (parallel): ${got} of ${frames} outputs`);
  return r.seconds;
}

/** Per-host inputs: the time distray reports for sending them (the slowest host), and how many files it sent. */
async function distrayInputs(
  farm: Farm,
  name: string,
  hosts: SshdHost[],
  src: string,
  cwd: string,
): Promise<{ seconds: number; sent: number }> {
  const inv = farm.inventory(
    `${defaultsBlock(farm)}hosts:\n${hosts.map((h) => hostEntry(farm, h, { workdir: join(h.workdir, name) })).join('\n')}\n`,
    `${name}.yaml`,
  );
  // A run ends once its tasks are done, stopping hosts still receiving inputs: each task lasts long
  // enough for every host to have joined (the time measured is each host's own inputs line).
  const r = await timeCommand(
    process.execPath,
    [CLI, 'run', inv, `1,${hosts.length}`, 'sleep', '4', '--in', src, '--plain', '--force'],
    cwd,
  );
  if (r.code !== 0) throw new Error(`distray failed in ${name}:\n${r.stderr.slice(0, 3000)}`);
  const lines = [...r.stderr.matchAll(/inputs: sent (\d+) of \d+ files \([\d.]+ MB\) in ([\d.]+) s/g)];
  if (lines.length !== hosts.length) throw new Error(`${name}: expected an inputs line per host:\n${r.stderr}`);
  return { seconds: Math.max(...lines.map((m) => Number(m[2]))), sent: lines.reduce((n, m) => n + Number(m[1]), 0) };
}

/** OpenSSH's scp (SFTP underneath in OpenSSH 9) to every host at once, as a user would script it. */
async function scpInputs(farm: Farm, hosts: SshdHost[], src: string, cwd: string, name: string): Promise<number> {
  const started = performance.now();
  await Promise.all(
    hosts.map(async (h) => {
      const dest = join(h.workdir, name);
      mkdirSync(dest, { recursive: true });
      const r = await timeCommand(
        'scp',
        [
          '-q',
          '-r',
          '-P',
          String(h.port),
          '-i',
          farm.clientKey,
          '-o',
          `UserKnownHostsFile=${farm.knownHosts}`,
          '-o',
          'BatchMode=yes',
          src,
          `${farm.user}@127.0.0.1:${dest}/`,
        ],
        cwd,
      );
      if (r.code !== 0) throw new Error(`scp failed: ${r.stderr}`);
    }),
  );
  return (performance.now() - started) / 1000;
}

/**
 * The makespan pull scheduling reaches with no overhead at all: whichever
 * slot is free first takes the next frame (the faster one on a tie).
 */
function pullSchedule(frames: number, slots: number[], seconds: number[]): { makespan: number; lanes: Lane[] } {
  const free = slots.flatMap((n, h) => Array.from({ length: n }, () => ({ at: 0, takes: seconds[h]!, frames: 0 })));
  let end = 0;
  for (let i = 0; i < frames; i++) {
    free.sort((a, b) => a.at - b.at || a.takes - b.takes);
    const slot = free[0]!;
    slot.at += slot.takes;
    slot.frames++;
    end = Math.max(end, slot.at);
  }
  return { makespan: end, lanes: free.map((f) => ({ frames: f.frames, seconds: f.takes })) };
}

interface Lane {
  frames: number;
  seconds: number;
}

/**
 * The host-loss scenario's own bound: pull scheduling of `frames` frames of
 * 1 s on `slots` equal slots, `lostSlots` of them dying at `at` seconds with
 * the frames they were rendering started again at once elsewhere (a loss
 * noticed instantly, no overhead). No scheduler can beat it; the run's
 * start and logins come on top.
 */
function lossBound(frames: number, slots: number, lostSlots: number, at: number): number {
  const free = Array.from({ length: slots }, (_, i) => ({ at: 0, dies: i < lostSlots }));
  let fresh = frames;
  let redo = 0;
  let end = 0;
  while (fresh + redo > 0 && free.length > 0) {
    free.sort((a, b) => a.at - b.at);
    const slot = free[0]!;
    // From the loss on, its frames go first; before it there are none.
    const start = fresh > 0 && (redo === 0 || slot.at < at) ? slot.at : Math.max(slot.at, at);
    if (redo > 0 && start >= at) redo--;
    else fresh--;
    if (slot.dies && start + 1 > at) {
      redo++;
      free.shift();
      continue;
    }
    slot.at = start + 1;
    end = Math.max(end, slot.at);
  }
  return end;
}

/** What this machine itself costs: the same renders by local shell loops, one per slot, no SSH, no copies. */
async function localFloor(cwd: string, lanes: Lane[]): Promise<number> {
  mkdirSync(join(cwd, 'floor'), { recursive: true });
  const started = performance.now();
  let first = 1;
  await Promise.all(
    lanes.map((lane) => {
      const from = first;
      first += lane.frames;
      return timeCommand(
        'sh',
        [
          '-c',
          `i=${from}; while [ $i -lt ${first} ]; do ./render.sh $i floor/$i.bin ${lane.seconds}; i=$((i + 1)); done`,
        ],
        cwd,
      );
    }),
  );
  return (performance.now() - started) / 1000;
}

/** An SSH login to each of `hosts` and back (`ssh host true`), all at once as a run opens them. */
async function loginSeconds(farm: Farm, hosts: SshdHost[]): Promise<number> {
  const started = performance.now();
  await Promise.all(
    hosts.map((h) =>
      timeCommand(
        'ssh',
        [
          '-p',
          String(h.port),
          '-i',
          farm.clientKey,
          '-o',
          `UserKnownHostsFile=${farm.knownHosts}`,
          '-o',
          'BatchMode=yes',
          `${farm.user}@127.0.0.1`,
          'true',
        ],
        farm.dir,
      ),
    ),
  );
  return (performance.now() - started) / 1000;
}

/** A start of the command itself, doing nothing (`distray --version`): the part of every run no scheduler can save. */
async function nodeStartSeconds(cwd: string): Promise<number> {
  const started = performance.now();
  await timeCommand(process.execPath, [CLI, '--version'], cwd);
  return (performance.now() - started) / 1000;
}

/**
 * The machine's floor for a run, in the same run of the bench: the command's
 * start, the hosts' logins (all at once, as a run opens them) and the same
 * renders in local loops. What distray adds on top is its own cost.
 */
function floorRow(
  scenario: string,
  parts: { start: number; logins: number; renders: number; loginsLabel: string },
): Row {
  return {
    scenario,
    tool: `floor: start + ${parts.loginsLabel} + renders`,
    seconds: parts.start + parts.logins + parts.renders,
    ideal: parts.start + parts.logins + parts.renders,
  };
}

function hasParallel(): boolean {
  try {
    execFileSync('parallel', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface PlanMeasure {
  tasks: number;
  seconds: number;
  markSeconds: number;
  reportSeconds: number;
  /** Peak memory once planned and marked, and at the very end. */
  planPeakMB: number;
  peakMB: number;
}

/** bench/plan.ts in a process of its own, so the peak memory is planning's alone. */
function measurePlan(args: string[]): Promise<PlanMeasure> {
  const script = fileURLToPath(new URL('./plan.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as PlanMeasure)
        : reject(new Error(`bench/plan.ts ${args.join(' ')} exited ${code}`)),
    );
  });
}

/**
 * What a run of a million tasks costs before it connects (plan, paths,
 * complete tasks on a first run) and besides its renders (scheduling them,
 * the progress view, the report). Target of issue 16: a few seconds and a
 * few hundred MB.
 */
async function planRows(rows: Row[]): Promise<void> {
  const cases: Array<[string, string[]]> = [
    ['plan: 1,000,000 frames', ['0,999999']],
    ['plan: 1,000,000 frames, per-task --out', ['0,999999', '--out', 'out/%04d.png=anim/%04d.png']],
    [
      'plan: 100 x 10,000 tiles, --out',
      ['0,99', '--tiles', '100x100', '--size', '1000x1000', '--out', 't%{tile}.png=tiles/f%04d-t%{tile}.png'],
    ],
    ['plan: 1,000,000, --out needing a collision check', ['0,999999', '--out', 'o%d=anim/%{frame*2}.png']],
  ];
  for (const [scenario, args] of cases) {
    const m = await measurePlan(args);
    const total = m.seconds + m.markSeconds;
    rows.push({
      scenario,
      tool: `plan, mark (peak ${m.planPeakMB.toFixed(0)} MB)`,
      seconds: total,
      ideal: 3,
      note: 'target: a few s, a few hundred MB',
    });
    // Renders of no time on 4 slots: what remains is distray's own cost; 10 µs a task is the ideal set here.
    rows.push({
      scenario,
      tool: `schedule, report (peak ${m.peakMB.toFixed(0)} MB)`,
      seconds: m.reportSeconds,
      ideal: m.tasks * 10e-6,
    });
  }
}

/**
 * Speculation on and off, side by side (issue 11): the uneven farm, a farm
 * where one host's first frame hangs for 20 s, and the host-loss scenario
 * (24 frames of 1 s on 3 hosts x 2 slots, one host killed 2.5 s in; ideal
 * 4 s; default --grace of 30 s).
 */
async function speculationRows(farm: Farm, hosts: SshdHost[], rows: Row[]): Promise<void> {
  const modes: Array<[string, string[]]> = [
    ['speculation on', []],
    ['--no-speculate', ['--no-speculate']],
  ];
  const pull = pullSchedule(240, [4, 4, 4], [0.1, 0.1, 0.4]);
  for (const [tool, args] of modes) {
    const s = await distray(farm, `uneven-${args.length}`, hosts, [4, 4, 4], 240, [0.1, 0.1, 0.4], { args });
    rows.push({
      scenario: 'speculate: 240 frames, one host 4x slower',
      tool,
      seconds: s,
      ideal: pull.makespan,
      note: 'vs pull, no overhead',
    });
  }
  for (const [tool, args] of modes) {
    const s = await distray(farm, `hang-${args.length}`, hosts, [4, 4, 4], 240, [0.1, 0.1, 0.1], {
      args,
      env: [{}, {}, { BENCH_HANG: '20' }],
    });
    rows.push({ scenario: 'speculate: 240 x 0.1 s, one frame hangs 20 s', tool, seconds: s, ideal: 2.0 });
  }
  const victim = await farm.start('victim', 'MaxStartups 100');
  const three = [hosts[0]!, hosts[1]!, victim];
  let withSpeculation = NaN;
  for (const [tool, args] of modes) {
    let killed: Promise<void> | undefined;
    const s = await distray(farm, `loss-${args.length}`, three, [2, 2, 2], 24, [1, 1, 1], {
      args,
      during: () => void setTimeout(() => (killed = victim.crash()), 2500),
    });
    await killed;
    rows.push({ scenario: 'host loss: 24 x 1 s, 3x2 slots, one killed at 2.5 s', tool, seconds: s, ideal: 4.0 });
    if (args.length === 0) withSpeculation = s;
    await victim.restart();
  }
  // What the machine and the loss itself cost: the scenario's bound (a loss noticed at once, its frames
  // started again elsewhere, nothing else), plus the command's start and the three logins.
  const bound = lossBound(24, 6, 2, 2.5);
  const f = floorRow('host loss: 24 x 1 s, 3x2 slots, one killed at 2.5 s', {
    start: await nodeStartSeconds(farm.dir),
    logins: await loginSeconds(farm, three.slice(0, 2)),
    renders: bound,
    loginsLabel: '2 logins',
  });
  f.tool = `floor: start + logins + ${bound.toFixed(1)} s bound`;
  rows.push(f, { scenario: f.scenario, tool: 'speculation on vs floor', seconds: withSpeculation, ideal: f.seconds });
  await victim.stop();
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const want = (s: string): boolean => only.length === 0 || only.includes(s);
  // The simulated farm needs no sshd: `npm run bench -- sim` runs it alone.
  if (want('sim')) await simBench();
  const rows: Row[] = [];
  if (want('plan')) await planRows(rows);
  // Planning and the simulated farm need no hosts: `npm run bench -- plan sim` starts none.
  const farmless = only.length > 0 && only.every((s) => s === 'plan' || s === 'sim');
  if (!farmless) {
    const farm = startFarm();
    try {
      const hosts = [
        await farm.start('b1', 'MaxStartups 100'),
        await farm.start('b2', 'MaxStartups 100'),
        await farm.start('b3', 'MaxStartups 100'),
      ];
      if (want('small')) {
        // The first measure: 120 frames of 0.1 s on 3 hosts x 4 slots; ideal 120 * 0.1 / 12 = 1.0 s.
        const s = await distray(farm, 'small', hosts, [4, 4, 4], 120, [0.1, 0.1, 0.1]);
        rows.push({ scenario: '120 frames x 0.1 s, 3 hosts x 4 slots', tool: 'distray', seconds: s, ideal: 1.0 });
      }
      if (want('overhead')) {
        const s = await distray(farm, 'overhead', hosts, [4, 4, 4], 240, [0.1, 0.1, 0.1]);
        rows.push({
          scenario: 'overhead: 240 x 0.1 s, 3x4 slots, 10 kB back',
          tool: 'distray',
          seconds: s,
          ideal: 2.0,
        });
        // Context for the ratio: the renders alone on this machine, and what a login costs here.
        const floor = await localFloor(
          workspace(farm, 'floor'),
          Array.from({ length: 12 }, () => ({ frames: 20, seconds: 0.1 })),
        );
        rows.push({
          scenario: 'overhead: 240 x 0.1 s, 3x4 slots, 10 kB back',
          tool: 'same renders, 12 local loops',
          seconds: floor,
          ideal: 2.0,
        });
        const login = await loginSeconds(farm, hosts);
        rows.push({
          scenario: 'overhead: 240 x 0.1 s, 3x4 slots, 10 kB back',
          tool: '3 logins at once (ssh true)',
          seconds: login,
          ideal: 2.0,
        });
        const start = await nodeStartSeconds(farm.dir);
        const f = floorRow('overhead: 240 x 0.1 s, 3x4 slots, 10 kB back', {
          start,
          logins: login,
          renders: floor,
          loginsLabel: '3 logins',
        });
        rows.push(f, {
          scenario: f.scenario,
          tool: 'distray vs floor',
          seconds: s,
          ideal: f.seconds,
          note: 'target 1.05',
        });
        if (hasParallel()) {
          const p = await gnuParallel(farm, 'overhead-parallel', hosts, 4, 240, 0.1);
          rows.push({
            scenario: 'overhead: 240 x 0.1 s, 3x4 slots, 10 kB back',
            tool: 'GNU parallel -S --return',
            seconds: p,
            ideal: 2.0,
          });
        }
      }
      if (want('inputs')) {
        const cwd = workspace(farm, 'inputs');
        execFileSync('head', ['-c', String(200 * 1024 * 1024), '/dev/urandom'], {
          stdio: ['ignore', openSync(join(cwd, 'big.bin'), 'w'), 'ignore'],
        });
        mkdirSync(join(cwd, 'tex'));
        for (let i = 0; i < 500; i++)
          writeFileSync(join(cwd, 'tex', `t${i}.dat`), randomBytes(2048 + ((i * 997) % 8192)));
        const mb = 3 * 200 * 1.048576;
        const d = await distrayInputs(farm, 'in-big', hosts, 'big.bin', cwd);
        const s = await scpInputs(farm, hosts, 'big.bin', cwd, 'scp-big');
        rows.push({
          scenario: 'inputs: 200 MB to 3 hosts',
          tool: `distray (${(mb / d.seconds).toFixed(0)} MB/s)`,
          seconds: d.seconds,
          ideal: s,
          note: 'vs scp',
        });
        rows.push({
          scenario: 'inputs: 200 MB to 3 hosts',
          tool: `scp (${(mb / s).toFixed(0)} MB/s)`,
          seconds: s,
          ideal: s,
        });
        const again = await distrayInputs(farm, 'in-big', hosts, 'big.bin', cwd);
        rows.push({
          scenario: 'inputs: 200 MB again, unchanged',
          tool: `distray (sent ${again.sent} files)`,
          seconds: again.seconds,
          ideal: s,
        });
        const dt = await distrayInputs(farm, 'in-tex', hosts, 'tex', cwd);
        const st = await scpInputs(farm, hosts, 'tex', cwd, 'scp-tex');
        rows.push({ scenario: 'inputs: 500 small files to 3 hosts', tool: 'distray', seconds: dt.seconds, ideal: st });
        rows.push({ scenario: 'inputs: 500 small files to 3 hosts', tool: 'scp -r', seconds: st, ideal: st });
        const againTex = await distrayInputs(farm, 'in-tex', hosts, 'tex', cwd);
        rows.push({
          scenario: 'inputs: 500 files again, unchanged',
          tool: `distray (sent ${againTex.sent} files)`,
          seconds: againTex.seconds,
          ideal: st,
        });
      }
      if (want('scale')) {
        // 64 hosts of 1 slot; ideal 640 * 0.05 / 64 = 0.5 s. Every host here shares this machine's 2 cores.
        const many: SshdHost[] = [];
        for (let i = 0; i < 64; i++) many.push(await farm.start(`s${i}`, 'MaxStartups 100'));
        const cwd = workspace(farm, 'scale');
        const inv = farm.inventory(
          `${defaultsBlock(farm)}hosts:\n${many.map((h) => hostEntry(farm, h, { workdir: join(h.workdir, 'scale') })).join('\n')}\n`,
          'scale.yaml',
        );
        const started = performance.now();
        const cpuBefore = machineCpu();
        let firstDone = 0;
        const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(
            '/usr/bin/time',
            [
              '-f',
              'maxrss %M cpu %U %S',
              process.execPath,
              CLI,
              'run',
              inv,
              '1,640',
              'sleep',
              '0.05',
              '--plain',
              '--report',
              'report.json',
            ],
            {
              cwd,
              env: { ...process.env, SSH_AUTH_SOCK: '' },
              stdio: ['ignore', 'ignore', 'pipe'],
            },
          );
          let stderr = '';
          child.stderr.on('data', (c: Buffer) => {
            stderr += c.toString();
            if (!firstDone && / done on /.test(stderr)) firstDone = performance.now();
          });
          child.on('close', (code) => resolve({ code, stderr }));
        });
        const seconds = (performance.now() - started) / 1000;
        if (r.code !== 0) throw new Error(`scale failed:\n${r.stderr.slice(-2000)}`);
        phases(
          'scale',
          { seconds, code: r.code, stderr: r.stderr, cpu: machineCpu() - cpuBefore },
          join(cwd, 'report.json'),
        );
        const rss = Number(/maxrss (\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024;
        const own = /cpu ([\d.]+) ([\d.]+)/.exec(r.stderr);
        console.error(
          `scale: the controller itself used ${own ? (Number(own[1]) + Number(own[2])).toFixed(1) : '?'} s of CPU`,
        );
        const firstStart = (firstDone - started) / 1000 - 0.05;
        rows.push({
          scenario: 'scale: 64 hosts x 1, 640 x 0.05 s',
          tool: `distray (peak ${rss.toFixed(0)} MB)`,
          seconds,
          ideal: 0.5,
        });
        rows.push({
          scenario: 'scale: first frame started after',
          tool: 'distray',
          seconds: firstStart,
          ideal: 3,
          note: 'target: within 3 s',
        });
        // What the 64 logins alone cost on this machine's 2 cores, with no work at all.
        const logins = await loginSeconds(farm, many);
        rows.push({
          scenario: 'scale: 64 hosts x 1, 640 x 0.05 s',
          tool: '64 logins at once (ssh true)',
          seconds: logins,
          ideal: 0.5,
        });
        const renders = await localFloor(
          workspace(farm, 'floor-scale'),
          Array.from({ length: 64 }, () => ({ frames: 10, seconds: 0.05 })),
        );
        const f = floorRow('scale: 64 hosts x 1, 640 x 0.05 s', {
          start: await nodeStartSeconds(farm.dir),
          logins,
          renders,
          loginsLabel: '64 logins',
        });
        rows.push(f, {
          scenario: f.scenario,
          tool: 'distray vs floor',
          seconds,
          ideal: f.seconds,
          note: 'target 1.15',
        });
        await Promise.all(many.map((h) => h.stop()));
      }
      if (want('stitch')) {
        // 16 tiles of 3840x2160, region-only PNGs, stitched into one PNG; the same composite by ImageMagick.
        const cwd = workspace(farm, 'stitch');
        const size = { width: 3840, height: 2160 };
        const tiles = tilesOf({ cols: 4, rows: 4 }, size);
        const noise = randomBytes(size.width * size.height * 3);
        const parts = await Promise.all(
          tiles.map(async (t) => {
            const path = join(cwd, `t${t.index}.png`);
            await sharp(noise, { raw: { ...size, channels: 3 } })
              .extract({ left: t.x0, top: t.y0, width: t.x1 - t.x0, height: t.y1 - t.y0 })
              .png({ compressionLevel: 1 })
              .toFile(path);
            return { tile: t, path };
          }),
        );
        let started = performance.now();
        await stitchFrame(parts, size, join(cwd, 'frame.png'));
        const ours = (performance.now() - started) / 1000;
        const args = ['-size', `${size.width}x${size.height}`, 'xc:black'];
        for (const p of parts) args.push(p.path, '-geometry', `+${p.tile.x0}+${p.tile.y0}`, '-composite');
        args.push(join(cwd, 'frame-im.png'));
        started = performance.now();
        execFileSync('/usr/bin/convert', args);
        const im = (performance.now() - started) / 1000;
        rows.push({
          scenario: 'stitch: 16 tiles of 3840x2160 to PNG',
          tool: 'distray (sharp)',
          seconds: ours,
          ideal: im,
          note: 'vs ImageMagick',
        });
        rows.push({
          scenario: 'stitch: 16 tiles of 3840x2160 to PNG',
          tool: 'ImageMagick convert',
          seconds: im,
          ideal: im,
        });
      }
      if (want('uneven')) {
        // One host 4x slower. The measure is the best makespan for pull scheduling (2.8 s,
        // simulated with no overhead); no schedule at all beats 240 / (8 + 1) * 0.1 = 2.67 s.
        const s = await distray(farm, 'uneven', hosts, [4, 4, 4], 240, [0.1, 0.1, 0.4]);
        const pull = pullSchedule(240, [4, 4, 4], [0.1, 0.1, 0.4]);
        rows.push({
          scenario: 'uneven: 240 frames, one host 4x slower',
          tool: 'distray',
          seconds: s,
          ideal: pull.makespan,
          note: 'vs pull, no overhead',
        });
        // The machine's own floor: the same renders by 12 local loops, each given the frames pull scheduling gives its slot.
        const floor = await localFloor(workspace(farm, 'floor-uneven'), pull.lanes);
        rows.push({
          scenario: 'uneven: 240 frames, one host 4x slower',
          tool: 'same renders, 12 local loops',
          seconds: floor,
          ideal: pull.makespan,
        });
        const f = floorRow('uneven: 240 frames, one host 4x slower', {
          start: await nodeStartSeconds(farm.dir),
          logins: await loginSeconds(farm, hosts),
          renders: floor,
          loginsLabel: '3 logins',
        });
        rows.push(f, {
          scenario: f.scenario,
          tool: 'distray vs floor',
          seconds: s,
          ideal: f.seconds,
          note: 'target 1.05',
        });
        rows.push({
          scenario: 'uneven: 240 frames, one host 4x slower',
          tool: 'distray vs any schedule',
          seconds: s,
          ideal: (240 / 9) * 0.1,
        });
      }
      if (want('speculate')) await speculationRows(farm, hosts, rows);
    } finally {
      await farm.stop();
    }
  }
  const w = Math.max(...rows.map((r) => r.scenario.length));
  console.log(
    `${'scenario'.padEnd(w)}  ${'tool'.padEnd(26)} ${'seconds'.padStart(8)} ${'ideal'.padStart(7)} ${'ratio'.padStart(6)}`,
  );
  console.log(
    '(for inputs and stitch, "ideal" is the baseline tool\'s time on the same data: a ratio under 1 beats it)',
  );
  for (const r of rows) {
    console.log(
      `${r.scenario.padEnd(w)}  ${r.tool.padEnd(26)} ${r.seconds.toFixed(2).padStart(8)} ${r.ideal.toFixed(2).padStart(7)} ${(r.seconds / r.ideal).toFixed(2).padStart(6)}`,
    );
  }
}

await main();
