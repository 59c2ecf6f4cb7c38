import { describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type PlanOptions } from '../../../src/plan/plan.js';
import { tilesOf } from '../../../src/plan/tiles.js';

const base = (over: Partial<PlanOptions> = {}): PlanOptions => ({
  frames: parseFrameSpec('1,3'),
  exec: 'build/ray',
  args: ['%d', 'out/%04d.png'],
  ins: [],
  outs: [],
  hostNames: ['a', 'b'],
  ...over,
});

describe('Plan', () => {
  it('makes one task per frame with expanded argv', () => {
    const plan = new Plan(base());
    expect(plan.tasks.map((t) => t.frame)).toEqual([1, 2, 3]);
    expect(plan.argv(plan.tasks[1]!, 'a')).toEqual(['build/ray', '2', 'out/0002.png']);
  });

  it('tells per-task copies from per-host ones', () => {
    const plan = new Plan(
      base({
        ins: ['scene.blend', 'cams/%d.json=cam.json'],
        outs: ['out/%04d.png=anim/%04d.png', 'stats.txt=stats/%{host}.txt'],
      }),
    );
    const t = plan.tasks[0]!;
    expect(plan.hostIns('a')).toEqual([{ local: 'scene.blend', remote: 'scene.blend' }]);
    expect(plan.taskIns(t, 'a')).toEqual([{ local: 'cams/1.json', remote: 'cam.json' }]);
    expect(plan.taskOuts(t, 'a')).toEqual([{ local: 'anim/0001.png', remote: 'out/0001.png' }]);
    expect(plan.hostOuts('b')).toEqual([{ local: 'stats/b.txt', remote: 'stats.txt' }]);
    expect(plan.localOutputs(t)).toEqual(['anim/0001.png']);
  });

  it.each([
    [{ outs: ['stats.txt'] }, /must contain %\{host\}/],
    [{ outs: ['/etc/passwd=x%d'] }, /relative to the host's workdir/],
    [{ ins: ['x=../x%d'] }, /must not contain "\.\."/],
    [{ exec: '../bin/ray' }, /must not contain "\.\."/],
    [{ outs: ['out/%d.png=anim/%{host}/%d.png'] }, /must not depend on the host/],
    [{ outs: ['out/x.png=anim/x.png'] }, /%\{host\}/],
    [{ args: ['%{tile}'] }, /tile names need --tiles/],
    [{ args: ['%{10/(frame-2)}'] }, /argument 1 .*division by zero for frame 2/],
    [
      { ins: ['/usr/share/doc/povray/examples/scene.pov'] },
      /write --in \/usr\/share\/doc\/povray\/examples\/scene\.pov=scene\.pov/,
    ],
    [{ outs: ['/tmp/f%d.png'] }, /write --out f%d\.png=\/tmp\/f%d\.png/],
    [{ exec: '' }, /empty/],
  ])('refuses %j', (over, message) => {
    expect(() => new Plan(base(over as Partial<PlanOptions>))).toThrow(message);
  });

  // A copy creates or replaces the one entry its DEST names: never the workdir or the current directory itself.
  it.each([
    [{ ins: ['x=.'] }, /--in "x=\.": its DEST, the path on the host, "\." ends in "\.".* such as --in x=x$/],
    [{ ins: ['x=./'] }, /"\.\/" ends in "\/".* such as --in x=x$/],
    [{ ins: ['x=dir/'] }, /"dir\/" ends in "\/".* such as --in x=dir\/x$/],
    [{ ins: ['x=x/'] }, /such as --in x=x$/],
    [{ ins: ['x=dir/.'] }, /such as --in x=dir\/x$/],
    [{ ins: ['.'] }, /--in "\.": its DEST/],
    [{ ins: ['x='] }, /expected SRC or SRC=DEST/],
    [{ outs: ['.=y%d'] }, /--out "\.": its SRC, the path on the host, "\." ends in "\."/],
    [{ outs: ['./=y%d'] }, /its SRC, the path on the host/],
    [{ outs: ['x%d=.'] }, /--out "x%d=\.": its DEST, the local path, "\." ends in "\.".* such as --out x%d=x%d$/],
    [{ outs: ['x%d=..'] }, /its DEST, the local path, "\.\." ends in "\.\."/],
    [{ outs: ['x%d=out/'] }, /"out\/" ends in "\/".* such as --out x%d=out\/x%d$/],
    [{ outs: ['x%d=out%d/'] }, /"out1\/" ends in "\/".* such as --out x%d=out%d\/x%d$/],
  ])('refuses a copy whose DEST is not an entry: %j', (over, message) => {
    expect(() => new Plan(base(over as Partial<PlanOptions>))).toThrow(message);
  });

  it('reads a trailing "/" of a SRC-only --in, as a shell completes it, as the directory itself; on an --out SRC it makes a directory output', () => {
    const plan = new Plan(base({ ins: ['assets/'], outs: ['out%d/', 'logs%d/=got/logs%d', 'f%d.txt'] }));
    expect(plan.hostIns('a')).toEqual([{ local: 'assets/', remote: 'assets' }]);
    expect(plan.taskOuts(plan.tasks[0]!, 'a')).toEqual([
      { local: 'out1', remote: 'out1', dir: true },
      { local: 'got/logs1', remote: 'logs1', dir: true },
      { local: 'f1.txt', remote: 'f1.txt' },
    ]);
    // A rerun looks for directories there, and for a file.
    expect(plan.localOutputs(plan.tasks[0]!)).toEqual(['out1/', 'got/logs1/', 'f1.txt']);
  });

  it('refuses a --stitch path that names no file', () => {
    const tiles = { grid: { cols: 2, rows: 1 }, size: { width: 10, height: 10 } };
    expect(() => new Plan(base({ tiles, outs: ['t%{tile}.png=tiles/%d-%{tile}.png'], stitch: 'frames%d/' }))).toThrow(
      /--stitch "frames%d\/": "frames1\/" ends in "\/"/,
    );
  });

  it.each([
    [{ ins: ['x=.distray'] }],
    [{ ins: ['x=./.distray/leases/0.lock'] }],
    [{ outs: ['.distray/run=got/r%d'] }],
    [{ outs: ['.distray=got.%{host}'] }],
    [{ exec: '.distray/x' }],
  ])("refuses remote paths in distray's own .distray directory: %j", (over) => {
    expect(() => new Plan(base(over as Partial<PlanOptions>))).toThrow(/\.distray\/ in the workdir is distray's own/);
  });

  it('allows names that only start like it', () => {
    expect(() => new Plan(base({ ins: ['x=.distray-assets/x', 'y=sub/.distray'] }))).not.toThrow();
  });

  it('allows an absolute exec', () => {
    expect(() => new Plan(base({ exec: '/usr/bin/povray' }))).not.toThrow();
  });

  it('makes frames x tiles tasks and refuses outputs that collide', () => {
    const tiles = { grid: { cols: 2, rows: 2 }, size: { width: 10, height: 10 } };
    const plan = new Plan(base({ tiles, args: ['%{x0}', '%{y1}'], outs: ['t%{tile}.png=tiles/%d-%{tile}.png'] }));
    expect(plan.tasks).toHaveLength(12);
    expect(plan.tasks[3]!.label).toBe('frame 1 tile 3');
    expect(() => new Plan(base({ tiles, outs: ['t.png=tiles/%d.png'] }))).toThrow(/would both write/);
  });
});

describe('Plan: outputs of different tasks', () => {
  const tiles = (cols: number) => ({ grid: { cols, rows: 1 }, size: { width: cols, height: 1 } });

  // Frame 1 tile 10 and frame 11 tile 0 both make "110" when nothing separates the two numbers.
  it.each([
    [
      { frames: parseFrameSpec('1,12'), tiles: tiles(24), outs: ['t%{tile}=o/%d%{tile}'] },
      /frame 1 tile 10 and frame 11 tile 0 would both write o\/110; keep the numbers apart, such as f%04d-t%\{tile\}/,
    ],
    [{ frames: parseFrameSpec('1,12'), tiles: tiles(24), outs: ['t%{tile}=o/%{tile}%d'] }, /would both write/],
    [{ frames: parseFrameSpec('0,3'), outs: ['o%d=o/%{frame*0}'] }, /frame 0 and frame 1 would both write o\/0/],
    [{ frames: parseFrameSpec('-1,1'), outs: ['o%d=o/%{frame*frame}'] }, /frame -1 and frame 1 would both write o\/1/],
    [{ frames: parseFrameSpec('1,2'), tiles: tiles(2), outs: ['t%{tile}=o/%d-%{tiles}'] }, /would both write/],
  ])('refuses outputs that collide: %j', (over, message) => {
    expect(() => new Plan(base(over as Partial<PlanOptions>))).toThrow(message);
  });

  it.each([
    [{ frames: parseFrameSpec('-20,20'), outs: ['o%d=o/%04d.png'] }],
    [{ frames: parseFrameSpec('1,12'), tiles: tiles(24), outs: ['t%{tile}=o/f%d-t%{tile}.png'] }],
    [{ frames: parseFrameSpec('1,12'), tiles: tiles(24), outs: ['t%{tile}=o/%{tile}/%d.png'] }],
    [{ frames: parseFrameSpec('1,12'), tiles: tiles(24), outs: ['t%{tile}=o/%{x0}_%d.png'] }],
    [{ frames: parseFrameSpec('-12,12'), tiles: tiles(24), outs: ['t%{tile}=o/%d-%{tile}'] }],
    [{ frames: parseFrameSpec('-12,12'), tiles: tiles(24), outs: ['t%{tile}=o/%{tile}-%{frame}'] }],
    [{ frames: parseFrameSpec('-12,12'), tiles: tiles(24), outs: ['t%{tile}=o/%{tile}--%{frame}'] }],
    [{ frames: parseFrameSpec('-12,12'), outs: ['o%d=o/%{frame}'] }],
  ])('accepts outputs that differ per task: %j', (over) => {
    const plan = new Plan(base(over));
    const locals = plan.tasks.map((t) => plan.localOutputs(t)[0]);
    expect(new Set(locals).size).toBe(plan.tasks.length);
  });

  it.each([
    [{ args: ['%0999999999d'] }, /argument 1 "%0999999999d": %0999999999d pads to 999999999 digits; at most 32/],
    [{ outs: ['o%d=o/%033d'] }, /--out "o\/%033d": %033d pads to 33 digits/],
    [{ args: ['%{99999999999999999999*99999999999999999999}'] }, /too large/],
    [
      { frames: parseFrameSpec('1,100000'), args: ['%{frame*100000000000}'] },
      /the result 9007200000000000 is too large/,
    ],
  ])('refuses what cannot be printed: %j', (over, message) => {
    expect(() => new Plan(base(over as Partial<PlanOptions>))).toThrow(message);
  });

  it('finds a division by zero in any task, however far into the run', () => {
    expect(() => new Plan(base({ frames: parseFrameSpec('1,100000'), args: ['%{1/(frame-99999)}'] }))).toThrow(
      /division by zero/,
    );
    expect(() => new Plan(base({ frames: parseFrameSpec('1,100000'), outs: ['o%d=o/%{1/(frame-99999)}'] }))).toThrow(
      /division by zero/,
    );
  });
});

describe('tilesOf', () => {
  it('covers every pixel exactly once on uneven grids', () => {
    for (const [cols, rows, width, height] of [
      [3, 2, 100, 67],
      [7, 5, 13, 11],
      [1, 1, 5, 5],
      [4, 4, 4, 4],
    ] as const) {
      const tiles = tilesOf({ cols, rows }, { width, height });
      const hits = new Uint8Array(width * height);
      for (const t of tiles) for (let y = t.y0; y < t.y1; y++) for (let x = t.x0; x < t.x1; x++) hits[y * width + x]!++;
      expect([...hits].every((h) => h === 1)).toBe(true);
      expect(tiles.map((t) => t.index)).toEqual([...Array(cols * rows).keys()]);
    }
  });

  it('numbers tiles row-major from the top-left', () => {
    const [t0, t1, t2] = tilesOf({ cols: 2, rows: 2 }, { width: 5, height: 3 });
    expect(t0).toMatchObject({ x0: 0, y0: 0, x1: 2, y1: 1 });
    expect(t1).toMatchObject({ x0: 2, y0: 0, x1: 5, y1: 1 });
    expect(t2).toMatchObject({ x0: 0, y0: 1, x1: 2, y1: 3 });
  });

  it('refuses a grid finer than the image', () => {
    expect(() => tilesOf({ cols: 6, rows: 1 }, { width: 5, height: 5 })).toThrow(/finer than the image/);
  });
});
