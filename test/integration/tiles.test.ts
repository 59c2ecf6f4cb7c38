import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { defaultsBlock, hostEntry, startFarm, type Farm, type SshdHost } from '../helpers/sshd.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

let farm: Farm;
let hosts: SshdHost[];
let inv: string;
let n = 0;

function workspace(): string {
  const dir = join(farm.dir, `tiles${++n}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(examples, 'ray.mjs'), join(dir, 'ray.mjs'));
  copyFileSync(join(fixtures, 'scene.pov'), join(dir, 'scene.pov'));
  return dir;
}

async function pixels(
  path: string,
): Promise<{ data: Buffer; depth: string; channels: number; width: number; height: number }> {
  const meta = await sharp(path).metadata();
  const sixteen = meta.depth === 'ushort';
  const { data, info } = await sharp(path)
    .toColourspace(sixteen ? 'rgb16' : 'srgb')
    .raw({ depth: sixteen ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { data, depth: meta.depth, channels: info.channels, width: info.width, height: info.height };
}

interface Report {
  ok: boolean;
  tasks: Array<{ frame: number; tile: number | null; status: string; host: string | null; error?: string }>;
  frames?: Array<{ frame: number; tiles: number; tilesDone: number; status: string; output: string }>;
}

beforeAll(async () => {
  farm = startFarm();
  hosts = [await farm.start('t1'), await farm.start('t2'), await farm.start('t3')];
  inv = farm.inventory(
    `${defaultsBlock(farm, '  slots: 2\n')}hosts:\n${hosts.map((h) => hostEntry(farm, h)).join('\n')}\n`,
    'tiles.yaml',
  );
});

afterAll(async () => {
  await farm?.stop();
});

const RAY_TILE = [
  'node',
  'ray.mjs',
  '%d',
  't%d-%{tile}.png',
  '--res',
  '%{width}x%{height}',
  '--region',
  '%{x0},%{y0},%{x1},%{y1}',
];
const TILED = ['--tiles', '3x2', '--size', '101x67', '--stitch', 'anim/f%04d.png'];

describe('tiles', () => {
  it('stitches region-only tiles from several hosts into the frame a whole render gives', async () => {
    const cwd = workspace();
    const args = [
      'run',
      inv,
      '0,2',
      ...RAY_TILE,
      '--in',
      'ray.mjs',
      '--out',
      't%d-%{tile}.png=tiles/%d-%{tile}.png',
      ...TILED,
      '--report',
      'r.json',
    ];
    const r = await runCli(args, { cwd });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks).toHaveLength(18);
    expect(report.tasks.map((t) => t.tile).slice(0, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(report.tasks.map((t) => t.host)).size).toBe(3);
    expect(report.frames).toEqual(
      [0, 1, 2].map((f) => ({ frame: f, tiles: 6, tilesDone: 6, status: 'stitched', output: `anim/f000${f}.png` })),
    );
    for (const f of [0, 1, 2]) {
      execFileSync(process.execPath, [join(cwd, 'ray.mjs'), String(f), join(cwd, `whole${f}.png`), '--res', '101x67'], {
        stdio: 'ignore',
      });
      const [whole, stitched] = await Promise.all([
        pixels(join(cwd, `whole${f}.png`)),
        pixels(join(cwd, 'anim', `f000${f}.png`)),
      ]);
      expect(stitched.width).toBe(101);
      expect(stitched.data.equals(whole.data)).toBe(true);
    }
    // Tiles are removed once their frame is stitched; nothing temporary is left.
    expect(readdirSync(join(cwd, 'tiles'))).toEqual([]);
    expect(readdirSync(join(cwd, 'anim'))).toEqual(['f0000.png', 'f0001.png', 'f0002.png']);

    // A rerun with every stitched frame present renders nothing.
    const again = await runCli([...args.slice(0, -1), 'r2.json'], { cwd });
    expect(again.code).toBe(0);
    const r2 = JSON.parse(readFileSync(join(cwd, 'r2.json'), 'utf8')) as Report;
    expect(r2.tasks.every((t) => t.status === 'skipped')).toBe(true);
    expect(r2.frames!.every((f) => f.status === 'skipped')).toBe(true);
  });

  it('stitches POV-Ray full-frame tiles (black outside the region), 16-bit kept', async () => {
    const cwd = workspace();
    const pov = [
      'povray',
      '+Iscene.pov',
      '+Ot%d-%{tile}.png',
      '+W%{width}',
      '+H%{height}',
      '-D',
      '-V',
      '-A',
      '+FN16',
      'Declare=frame=%d',
    ];
    const region = ['+SC%{x0+1}', '+EC%{x1}', '+SR%{y0+1}', '+ER%{y1}'];
    const r = await runCli(
      [
        'run',
        inv,
        '1',
        ...pov,
        ...region,
        '--in',
        'scene.pov',
        '--out',
        't%d-%{tile}.png=tiles/%d-%{tile}.png',
        ...TILED,
        '--keep-tiles',
      ],
      { cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    execFileSync(
      'povray',
      ['+Iscene.pov', '+Owhole.png', '+W101', '+H67', '-D', '-V', '-A', '+FN16', 'Declare=frame=1'],
      { cwd, stdio: 'ignore' },
    );
    const tile = await sharp(join(cwd, 'tiles', '1-4.png')).metadata();
    expect([tile.width, tile.height]).toEqual([101, 67]);
    const [whole, stitched] = await Promise.all([
      pixels(join(cwd, 'whole.png')),
      pixels(join(cwd, 'anim', 'f0001.png')),
    ]);
    expect(whole.depth).toBe('ushort');
    expect(stitched.depth).toBe('ushort');
    expect(stitched.data.equals(whole.data)).toBe(true);
    // --keep-tiles kept them.
    expect(readdirSync(join(cwd, 'tiles'))).toHaveLength(6);
  });

  it("stitches POV-Ray's antialiased tiles into exactly the whole render with --tile-align on its blocks, and not without", async () => {
    const cwd = workspace();
    // Adaptive antialiasing renders in +BS blocks from the top-left corner; tiles cut at other places see other neighbours.
    const pov = [
      'povray',
      '+Iscene.pov',
      '+Ot%d-%{tile}.png',
      '+W%{width}',
      '+H%{height}',
      '-D',
      '-V',
      '+A0.3',
      '+BS16',
    ];
    const region = ['+SC%{x0+1}', '+EC%{x1}', '+SR%{y0+1}', '+ER%{y1}'];
    const tiled = (name: string, extra: string[]): Promise<{ code: number | null; stderr: string }> =>
      runCli(
        [
          'run',
          inv,
          '1',
          ...pov,
          'Declare=frame=%d',
          ...region,
          '--in',
          'scene.pov',
          '--out',
          `t%d-%{tile}.png=${name}-tiles/%d-%{tile}.png`,
          '--tiles',
          '3x2',
          '--size',
          '160x120',
          '--stitch',
          `${name}/f%04d.png`,
          ...extra,
        ],
        { cwd },
      );
    // One after the other: both would write t1-0.png... in the same hosts' workdirs.
    const aligned = await tiled('aligned', ['--tile-align', '16']);
    expect(aligned.code, aligned.stderr).toBe(0);
    const unaligned = await tiled('unaligned', []);
    expect(unaligned.code, unaligned.stderr).toBe(0);
    execFileSync(
      'povray',
      ['+Iscene.pov', '+Owhole.png', '+W160', '+H120', '-D', '-V', '+A0.3', '+BS16', 'Declare=frame=1'],
      { cwd, stdio: 'ignore' },
    );
    const [whole, a, u] = await Promise.all(
      ['whole.png', 'aligned/f0001.png', 'unaligned/f0001.png'].map((f) => pixels(join(cwd, f))),
    );
    const differing = (p: typeof whole): number => {
      expect([p!.width, p!.height, p!.channels]).toEqual([whole!.width, whole!.height, whole!.channels]);
      let n = 0;
      for (let i = 0; i < p!.data.length; i += p!.channels)
        if (!p!.data.subarray(i, i + p!.channels).equals(whole!.data.subarray(i, i + whole!.channels))) n++;
      return n;
    };
    // Tiles at 48, 96 and 64 (multiples of 16): identical. At 53, 106 and 60: pixels along the seams differ (145 when measured).
    expect(differing(a)).toBe(0);
    expect(differing(u)).toBeGreaterThan(0);
  });

  it('fails a tile of the wrong size with a clear message, and leaves no stitched frame', async () => {
    const cwd = workspace();
    // Tile 4 renders a region one pixel too wide, on every host and every attempt.
    const script =
      'if [ "$1" = 4 ]; then x1=$(($4 + 1)); else x1=$4; fi; exec node ray.mjs "$0" "t$0-$1.png" --res 101x67 --region "$2,$3,$x1,$5"';
    const r = await runCli(
      [
        'run',
        inv,
        '1',
        'sh',
        '-c',
        script,
        '%d',
        '%{tile}',
        '%{x0}',
        '%{y0}',
        '%{x1}',
        '%{y1}',
        '--in',
        'ray.mjs',
        '--out',
        't%d-%{tile}.png=tiles/%d-%{tile}.png',
        ...TILED,
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code).toBe(1);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    const four = report.tasks.find((t) => t.tile === 4)!;
    expect(four.status).toBe('failed');
    expect(four.error).toMatch(
      /tile 4 \(33,33\)-\(67,67\) from t\d is 35x34: expected the full frame 101x67 or the tile's 34x34/,
    );
    expect(report.frames![0]).toMatchObject({ status: 'pending', tilesDone: 5 });
    expect(existsSync(join(cwd, 'anim', 'f0001.png'))).toBe(false);
    expect(existsSync(join(cwd, 'tiles', '1-4.png'))).toBe(false);
  });

  it('leaves no stitched frame when a tile is never produced', async () => {
    const cwd = workspace();
    const script =
      'if [ "$1" = 2 ]; then exit 0; fi; exec node ray.mjs "$0" "t$0-$1.png" --res 101x67 --region "$2,$3,$4,$5"';
    const r = await runCli(
      [
        'run',
        inv,
        '1,2',
        'sh',
        '-c',
        script,
        '%d',
        '%{tile}',
        '%{x0}',
        '%{y0}',
        '%{x1}',
        '%{y1}',
        '--in',
        'ray.mjs',
        '--out',
        't%d-%{tile}.png=tiles/%d-%{tile}.png',
        ...TILED,
        '--retries',
        '0',
        '--report',
        'r.json',
      ],
      { cwd },
    );
    expect(r.code).toBe(1);
    const report = JSON.parse(readFileSync(join(cwd, 'r.json'), 'utf8')) as Report;
    expect(report.tasks.filter((t) => t.status === 'failed').map((t) => [t.frame, t.tile])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    expect(report.tasks.find((t) => t.status === 'failed')!.error).toMatch(/t1-2\.png was not produced on t\d/);
    expect(existsSync(join(cwd, 'anim'))).toBe(false);
    // The tiles that did render are kept for the rerun that will finish the frame.
    expect(readdirSync(join(cwd, 'tiles'))).toHaveLength(10);
  });
});
