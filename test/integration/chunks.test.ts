/**
 * --chunk on real sshd hosts: a renderer given a range of frames that dies
 * half-way keeps the frames it finished, and only the missing ones are
 * rendered again, as a smaller chunk; a rerun renders only the frames
 * missing locally. Which frames each attempt rendered is read back from a
 * log the renderer writes (every host here is this machine).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

interface Task {
  frame: number;
  last?: number;
  count?: number;
  label?: string;
  status: string;
  attempts: number;
  host: string | null;
}

interface Report {
  tasks: Task[];
  missingFrames?: number[];
  hosts: Array<{ name: string; bytesOut?: number }>;
}

let farm: Farm;
let h1: SshdHost;
let h2: SshdHost;
let n = 0;

beforeAll(async () => {
  farm = startFarm();
  [h1, h2] = [await farm.start('c1'), await farm.start('c2')];
});

afterAll(async () => {
  await farm?.stop();
});

/**
 * A renderer of frames $0 to $1 (step 1) that logs "START first-last" and a
 * "FRAME f" line per frame it writes to `log`; it dies (exit 5) just before
 * frame $DIE the first time it gets there (or hangs there, for $HANG), and never writes frame $SKIP
 * (exiting 0 all the same: a frame a renderer skipped).
 */
function renderer(log: string, marker: string): string {
  return [
    `echo "START $0-$1" >> ${log}`,
    'f=$0',
    'while [ "$f" -le "$1" ]; do',
    `  if [ "$f" = "$DIE" ] && [ ! -e ${marker} ]; then touch ${marker}; echo "died before frame $f" >&2; exit 5; fi`,
    `  if [ "$f" = "$HANG" ] && [ ! -e ${marker} ]; then touch ${marker}; echo "hangs before frame $f" >&2; exec sleep 600; fi`,
    '  if [ "$f" != "$SKIP" ]; then',
    '    mkdir -p out',
    '    echo "frame $f" > out/f$f.txt',
    `    echo "FRAME $f" >> ${log}`,
    '  fi',
    '  f=$((f + 1))',
    'done',
  ].join('\n');
}

/** The frame ranges the attempts were given, from their START lines. */
function starts(log: string): string[] {
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('START '))
    .map((l) => l.slice(6))
    .sort();
}

describe('--chunk', () => {
  it('renders again only the frames a chunk that died half-way did not produce', async () => {
    const cwd = join(farm.dir, `chunks${++n}`);
    mkdirSync(cwd);
    const log = join(cwd, 'render.log');
    const script = renderer(log, join(cwd, 'died'));
    // One host, one slot: the order of attempts is the queue's.
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  env: { DIE: "4", SKIP: "11" }\n')}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, `c${n}`) })}\n`,
      `c${n}.yaml`,
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,12',
        'sh',
        '-c',
        script,
        '%{first}',
        '%{last}',
        '--chunk',
        '6',
        '--out',
        'out/f%d.txt=frames/f%d.txt',
        '--retries',
        '1',
        '--report',
        'r.json',
        '--plain',
      ],
      { cwd },
    );
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    // Frame 11 is never written: it fails after its retry; every other frame is done.
    expect(r.code, r.stderr).toBe(1);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    const frameLines = lines.filter((l) => l.startsWith('FRAME ')).map((l) => Number(l.slice(6)));
    // Each frame was rendered exactly once: the chunk that died at frame 4 kept 1-3, and only 4-6 ran again.
    expect([...frameLines].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]);
    expect(starts(log)).toEqual(['1-6', '11-11', '11-11', '4-6', '7-12'].sort());
    for (const f of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12])
      expect(readFileSync(join(cwd, 'frames', `f${f}.txt`), 'utf8')).toBe(`frame ${f}\n`);
    expect(readdirSync(join(cwd, 'frames')).sort()).toHaveLength(11);
    const byLabel = new Map(report.tasks.map((t) => [t.label, t]));
    expect([...byLabel.keys()]).toEqual(['frames 1-3', 'frames 4-6', 'frames 7-10', 'frame 11', 'frame 12']);
    expect(byLabel.get('frames 1-3')).toMatchObject({ frame: 1, last: 3, count: 3, status: 'done', attempts: 1 });
    expect(byLabel.get('frames 4-6')).toMatchObject({ frame: 4, last: 6, count: 3, status: 'done', attempts: 2 });
    expect(byLabel.get('frames 7-10')).toMatchObject({ status: 'done', attempts: 1 });
    expect(byLabel.get('frame 11')).toMatchObject({ status: 'failed' });
    expect(byLabel.get('frame 12')).toMatchObject({ status: 'done', attempts: 1 });
    expect(report.missingFrames).toEqual([11]);
    expect(r.stderr).toMatch(
      /frames 1-6 failed on c1 \(attempt 1, will retry\): .*exited with status 5.*frames 1-3 done, frames 4-6 to render again/,
    );
    expect(r.stderr).toMatch(/frames 1-3 done on c1 \(of frames 1-6, whose attempt failed\)/);
    expect(r.stderr).toMatch(/1 frame not done: frame 11 \(run the same command again/);

    // A rerun renders only what is missing here: frame 11 again, and 2-3 removed since, as one chunk.
    rmSync(join(cwd, 'frames', 'f2.txt'));
    rmSync(join(cwd, 'frames', 'f3.txt'));
    writeFileSync(log, '');
    const again = await runCli(
      [
        'run',
        inv,
        '1,12',
        'sh',
        '-c',
        script,
        '%{first}',
        '%{last}',
        '--chunk',
        '6',
        '--out',
        'out/f%d.txt=frames/f%d.txt',
        '--retries',
        '0',
        '--report',
        'r.json',
        '--plain',
      ],
      {
        cwd,
        env: {},
      },
    );
    expect(again.code, again.stderr).toBe(1);
    const rerun = readFileSync(log, 'utf8').trim().split('\n');
    expect(starts(log)).toEqual(['11-11', '2-3']);
    expect(rerun.filter((l) => l.startsWith('FRAME ')).map((l) => Number(l.slice(6)))).toEqual([2, 3]);
  });

  it('counts frames, and the bytes of the frames it brings back; a rerun says how many frames it skips', async () => {
    const cwd = join(farm.dir, `chunks${++n}`);
    mkdirSync(cwd);
    const log = join(cwd, 'render.log');
    const script = renderer(log, join(cwd, 'died'));
    const inv = farm.inventory(
      `${defaultsBlock(farm)}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, `c${n}`) })}\n`,
      `c${n}.yaml`,
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,12',
        'sh',
        '-c',
        script,
        '%{first}',
        '%{last}',
        '--chunk',
        '4',
        '--out',
        'out/f%d.txt=frames/f%d.txt',
        '--report',
        'r.json',
        '--plain',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    const bytes = readdirSync(join(cwd, 'frames')).reduce(
      (sum, f) => sum + readFileSync(join(cwd, 'frames', f)).length,
      0,
    );
    expect(bytes).toBeGreaterThan(0);
    expect(report.hosts.find((h) => h.name === 'c1')?.bytesOut).toBe(bytes);
    expect(r.stderr).toMatch(/^distray: 12 frames done \(3 chunks\) in [\d.]+s \(exit 0\)$/m);
    const again = await runCli(
      [
        'run',
        inv,
        '1,12',
        'sh',
        '-c',
        script,
        '%{first}',
        '%{last}',
        '--chunk',
        '4',
        '--out',
        'out/f%d.txt=frames/f%d.txt',
        '--plain',
      ],
      { cwd },
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/^distray: 12 frames skipped \(1 chunk\) in [\d.]+s \(exit 0\)$/m);
  });

  it('keeps the frames a chunk finished before --timeout stopped it', async () => {
    const cwd = join(farm.dir, `chunks${++n}`);
    mkdirSync(cwd);
    const log = join(cwd, 'render.log');
    const script = renderer(log, join(cwd, 'hung'));
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  env: { HANG: "5" }\n')}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, `c${n}`) })}\n`,
      `c${n}.yaml`,
    );
    const r = await runCli(
      [
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
        '--timeout',
        '5s',
        '--out',
        'out/f%d.txt=frames/f%d.txt',
        '--report',
        'r.json',
        '--plain',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(starts(log)).toEqual(['1-8', '5-8']);
    const frames = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('FRAME '))
      .map((l) => Number(l.slice(6)));
    expect(frames).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.stderr).toMatch(
      /frames 1-8 failed on c1 .*timed out after 5s and was stopped; frames 1-4 done, frames 5-8 to render again/,
    );
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks.map((t) => [t.label, t.status])).toEqual([
      ['frames 1-4', 'done'],
      ['frames 5-8', 'done'],
    ]);
  });

  it('spreads a split chunk over two hosts, each frame rendered once, every frame done', async () => {
    const cwd = join(farm.dir, `chunks${++n}`);
    mkdirSync(cwd);
    const log = join(cwd, 'render.log');
    const script = renderer(log, join(cwd, 'died'));
    const inv = farm.inventory(
      `${defaultsBlock(farm, '  env: { DIE: "15" }\n')}hosts:\n${hostEntry(farm, h1, { workdir: join(h1.workdir, `c${n}`) })}\n${hostEntry(farm, h2, { workdir: join(h2.workdir, `c${n}`) })}\n`,
      `c${n}.yaml`,
    );
    const r = await runCli(
      [
        'run',
        inv,
        '1,30',
        'sh',
        '-c',
        script,
        '%{first}',
        '%{last}',
        '--chunk',
        '10',
        '--out',
        'out/f%d.txt=frames/f%d.txt',
        '--report',
        'r.json',
        '--plain',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    const frames = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('FRAME '))
      .map((l) => Number(l.slice(6)));
    expect([...frames].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(starts(log)).toEqual(['1-10', '11-20', '15-20', '21-30']);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.missingFrames).toEqual([]);
    expect(report.tasks.map((t) => [t.label, t.status])).toEqual([
      ['frames 1-10', 'done'],
      ['frames 11-14', 'done'],
      ['frames 15-20', 'done'],
      ['frames 21-30', 'done'],
    ]);
  });
});
