import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type PlanOptions } from '../../../src/plan/plan.js';

// What plan.test.ts leaves open to mutants (`npm run mutate`): each refusal's whole message, the values a
// task's placeholders see (tiles, chunks), per-frame and per-chunk copies of a chunk, which local inputs and
// outputs a run looks for, and which templates are expanded for every task and host before anything connects.

const base = (over: Partial<PlanOptions> = {}): PlanOptions => ({
  frames: parseFrameSpec('1,3'),
  exec: 'ray',
  args: [],
  ins: [],
  outs: [],
  hostNames: ['a', 'b'],
  ...over,
});
const tiles = (cols: number, rows = 1, width = 10, height = 4) => ({
  grid: { cols, rows },
  size: { width, height },
});
const refused = (over: Partial<PlanOptions>, message: string): void => {
  expect(() => new Plan(base(over))).toThrow(new UsageError(message));
};

describe('Plan: refusals, word for word', () => {
  it('--chunk with --tiles, an empty exec, %d in an argument of a chunked run', () => {
    refused(
      { chunk: 4, tiles: tiles(2) },
      '--chunk and --tiles together: a task is either several whole frames or one tile of a frame; drop one of them',
    );
    refused({ exec: '' }, '<exec> is empty: name the program to run on each host');
    refused(
      { chunk: 2, args: ['-s', '%{frame}'] },
      'argument 2 "%{frame}": with --chunk a task renders several frames, so %d (or %{frame}) has no one value; ' +
        'use %{first}, %{last} and %{count} (Blender: -s %{first} -e %{last} -a)',
    );
  });

  it('--stitch without tiles, without a frame placeholder, without a tile image', () => {
    refused({ stitch: 'f%d.png' }, '--stitch needs --tiles (and --size)');
    const outs = ['t%{tile}.png=tiles/%d-%{tile}.png'];
    refused(
      { tiles: tiles(2), outs, stitch: 'frame.png' },
      '--stitch "frame.png" has no frame placeholder (%d, %04d) but the run has several frames',
    );
    // One frame: a fixed name is enough.
    expect(
      new Plan(base({ frames: parseFrameSpec('5'), tiles: tiles(2), outs, stitch: 'frame.png' })).stitchPath(5),
    ).toBe('frame.png');
    refused(
      { tiles: tiles(2), outs: ['t%{tile}.txt=tiles/%d-%{tile}.txt'], stitch: 'f%d.png' },
      '--stitch needs the tiles back: add an --out whose local path is a per-tile image, such as --out tile.png=tiles/f%04d-t%{tile}.png',
    );
    refused(
      { tiles: tiles(2), outs, stitch: '%{frame*2}/' },
      '--stitch "%{frame*2}/": "2/" ends in "/"; name the image file to write, such as frames/f%04d.png',
    );
    refused(
      { tiles: tiles(2), outs, stitch: 'f%{tile}.png' },
      '--stitch "f%{tile}.png": unknown name "tile" in %{tile} (tile names need --tiles); known names: frame',
    );
    refused(
      { tiles: tiles(2), outs, stitch: 'f%040d.png' },
      '--stitch "f%040d.png": %040d pads to 40 digits; at most 32',
    );
  });

  it('a stitch path that fails for a later frame only is found', () => {
    const outs = ['t%{tile}.png=tiles/%d-%{tile}.png'];
    expect(() => new Plan(base({ tiles: tiles(2), outs, stitch: 'f%{1/(frame-3)}.png' }))).toThrow(
      /division by zero for frame 3/,
    );
  });

  it('too many tasks', () => {
    refused(
      { frames: parseFrameSpec('1,600000'), tiles: tiles(2) },
      '600000 frames of 2 tiles make 1200000 tasks; at most 1000000 are allowed in one run (split it into several runs, or use fewer tiles)',
    );
  });

  it('an absolute SRC without DEST names the host side to write', () => {
    refused(
      { ins: ['/data/scene.blend'] },
      '--in "/data/scene.blend": without =DEST the copy would go to the same absolute path on the host, but remote paths are relative to its workdir; write --in /data/scene.blend=scene.blend',
    );
    refused(
      { ins: ['~/assets//'] },
      '--in "~/assets//": without =DEST the copy would go to the same absolute path on the host, but remote paths are relative to its workdir; write --in ~/assets//=assets',
    );
    refused(
      { ins: ['/'] },
      '--in "/": without =DEST the copy would go to the same absolute path on the host, but remote paths are relative to its workdir; write --in /=input',
    );
    refused(
      { outs: ['/tmp/r/f%d.png'] },
      '--out "/tmp/r/f%d.png": the host\'s side must be relative to its workdir; write --out f%d.png=/tmp/r/f%d.png',
    );
  });

  it('the rules of an --out: no chunk names, no host in a per-frame DEST, a host in a per-host DEST', () => {
    refused(
      { chunk: 2, outs: ['f%{first}.png'] },
      '--out "f%{first}.png": an output is one frame\'s (%d), whatever chunk rendered it, so that a chunk that stopped half-way and a rerun know which frames are done; remove %{first}, %{last} and %{count} from it',
    );
    refused(
      { chunk: 2, outs: ['f%d.png=%{count}/f%d.png'] },
      '--out "f%d.png=%{count}/f%d.png": an output is one frame\'s (%d), whatever chunk rendered it, so that a chunk that stopped half-way and a rerun know which frames are done; remove %{first}, %{last} and %{count} from it',
    );
    refused(
      { outs: ['f%d.png=%{host}/f%d.png'] },
      '--out "f%d.png=%{host}/f%d.png": a frame\'s local output must not depend on the host that rendered it (remove %{host}), or a rerun could not find it',
    );
    refused(
      { outs: ['log.txt=logs/log.txt'] },
      '--out "log.txt=logs/log.txt" has no frame placeholder, so it is copied once from every host: its DEST must contain %{host}, such as logs/log.txt.%{host}',
    );
    // A per-frame SRC alone makes the copy per task.
    expect(new Plan(base({ outs: ['f%d.png=all.png'], frames: parseFrameSpec('1') })).hasLocalOutputs).toBe(true);
  });

  it('an empty local path, and a SRC on the host that is not an entry', () => {
    refused({ ins: ['%{host}=x'], hostNames: [''] }, '--in "%{host}": the local path is empty');
    refused(
      { outs: ['out/.=f%d'] },
      '--out "out/.": its SRC, the path on the host, "out/." ends in ".", a directory and not an entry in it; name the file or directory the renderer writes inside the workdir',
    );
  });

  it('colliding outputs: the hint names what is missing', () => {
    refused(
      { tiles: tiles(2), outs: ['t%{tile}.png=t.png'] },
      '--out "t.png": frame 1 tile 0 and frame 1 tile 1 would both write t.png; add %d and %{tile} to it',
    );
    refused(
      { tiles: tiles(2), outs: ['t%{tile}.png=t%d.png'] },
      '--out "t%d.png": frame 1 tile 0 and frame 1 tile 1 would both write t1.png; add %{tile} to it',
    );
    refused(
      { tiles: tiles(2), frames: parseFrameSpec('1,2'), outs: ['t%{tile}.png=t%{tile}.png'] },
      '--out "t%{tile}.png": frame 1 tile 0 and frame 2 tile 0 would both write t0.png; add %d to it',
    );
    refused(
      { outs: ['f%d.png=f%{frame-frame}.png'] },
      '--out "f%{frame-frame}.png": frame 1 and frame 2 would both write f0.png; keep the numbers apart, such as f%04d',
    );
    refused(
      { outs: ['f%d.png=f%{tile}%d.png'], frames: parseFrameSpec('1,12'), tiles: tiles(12, 1, 24) },
      '--out "f%{tile}%d.png": frame 1 tile 11 and frame 11 tile 1 would both write f111.png; keep the numbers apart, such as f%04d-t%{tile}',
    );
    // Two tile numbers: not distinct by construction, but every task's path differs.
    expect(() => new Plan(base({ outs: ['f%d.png=f%d-%{tile}-%{tile}.png'], tiles: tiles(2) }))).not.toThrow();
  });
});

describe('Plan: what a task sees', () => {
  it('a tile: its place, size and the image size', () => {
    const plan = new Plan(
      base({
        tiles: tiles(2, 2, 10, 4),
        args: ['%{tile}/%{tiles}:%{x0},%{y0}-%{x1},%{y1}:%{w}x%{h} of %{width}x%{height}'],
      }),
    );
    expect(plan.tasks.map((t) => plan.argv(t, 'a')[1])).toEqual([
      '0/4:0,0-5,2:5x2 of 10x4',
      '1/4:5,0-10,2:5x2 of 10x4',
      '2/4:0,2-5,4:5x2 of 10x4',
      '3/4:5,2-10,4:5x2 of 10x4',
      '0/4:0,0-5,2:5x2 of 10x4',
      '1/4:5,0-10,2:5x2 of 10x4',
      '2/4:0,2-5,4:5x2 of 10x4',
      '3/4:5,2-10,4:5x2 of 10x4',
      '0/4:0,0-5,2:5x2 of 10x4',
      '1/4:5,0-10,2:5x2 of 10x4',
      '2/4:0,2-5,4:5x2 of 10x4',
      '3/4:5,2-10,4:5x2 of 10x4',
    ]);
    expect(plan.tasks[5]).toMatchObject({ index: 5, frame: 2, label: 'frame 2 tile 1' });
    expect(plan.tiled).toBe(true);
    expect(new Plan(base()).tiled).toBe(false);
    expect(new Plan(base()).tasks[2]!.vars).toEqual({ frame: 3 });
  });

  it('a chunked run: frames planned as chunks of one, chunks as the run forms them', () => {
    const plan = new Plan(
      base({ frames: parseFrameSpec('10,1,-3'), chunk: 'auto', args: ['%{first}-%{last}x%{count}'] }),
    );
    expect(plan.chunked).toBe(true);
    expect(plan.chunking).toBe('auto');
    expect(plan.step).toBe(-3);
    expect(plan.tasks.map((t) => t.frame)).toEqual([10, 7, 4, 1]);
    expect(plan.tasks[1]!.vars).toEqual({ frame: 7, first: 7, last: 7, count: 1 });
    expect(plan.tasks[1]!.label).toBe('frame 7');
    const chunk = plan.chunkTask(10, 3, 9);
    expect(chunk).toMatchObject({ index: 9, frame: 10, tile: null, chunk: { first: 10, count: 3, step: -3 } });
    expect(chunk.vars).toEqual({ frame: 10, first: 10, last: 4, count: 3 });
    expect(chunk.label).toBe('frames 10-4');
    expect(plan.argv(chunk, 'a')).toEqual(['ray', '10-4x3']);
    expect(plan.framesOf(chunk)).toEqual([10, 7, 4]);
    expect(plan.framesOf(plan.tasks[3]!)).toEqual([1]);
    expect(new Plan(base()).chunked).toBe(false);
  });

  it("a chunk's copies: an --in with %d per frame, one with chunk names once, outputs frame by frame", () => {
    const plan = new Plan(
      base({
        frames: parseFrameSpec('1,6'),
        chunk: 3,
        ins: ['cam/%d.json=c%d.json', 'list-%{first}-%{last}.txt=list.txt', 'scene.blend'],
        outs: ['f%d.png=out/f%d.png', 'f%d.exr=out/f%d.exr'],
      }),
    );
    const chunk = plan.chunkTask(4, 3, 2);
    expect(plan.taskIns(chunk, 'a')).toEqual([
      { local: 'cam/4.json', remote: 'c4.json' },
      { local: 'cam/5.json', remote: 'c5.json' },
      { local: 'cam/6.json', remote: 'c6.json' },
      { local: 'list-4-6.txt', remote: 'list.txt' },
    ]);
    expect(plan.frameOuts(chunk, 'a')).toEqual([
      {
        frame: 4,
        copies: [
          { local: 'out/f4.png', remote: 'f4.png' },
          { local: 'out/f4.exr', remote: 'f4.exr' },
        ],
      },
      {
        frame: 5,
        copies: [
          { local: 'out/f5.png', remote: 'f5.png' },
          { local: 'out/f5.exr', remote: 'f5.exr' },
        ],
      },
      {
        frame: 6,
        copies: [
          { local: 'out/f6.png', remote: 'f6.png' },
          { local: 'out/f6.exr', remote: 'f6.exr' },
        ],
      },
    ]);
    expect(plan.taskOuts(chunk, 'a').map((c) => c.local)).toEqual([
      'out/f4.png',
      'out/f4.exr',
      'out/f5.png',
      'out/f5.exr',
      'out/f6.png',
      'out/f6.exr',
    ]);
    expect(plan.hostIns('b')).toEqual([{ local: 'scene.blend', remote: 'scene.blend' }]);
    // Chunk inputs exist only for the chunks a run forms: not looked for up front.
    expect(plan.localInputs()).toEqual([
      'cam/1.json',
      'cam/2.json',
      'cam/3.json',
      'cam/4.json',
      'cam/5.json',
      'cam/6.json',
      'scene.blend',
    ]);
  });

  it('a fixed --chunk N: chunk names checked for every chunk of the run, the first a chunk of N', () => {
    expect(() => new Plan(base({ frames: parseFrameSpec('1,7'), chunk: 3, args: ['%{10/(count-1)}'] }))).toThrow(
      /argument 1 "%\{10\/\(count-1\)\}": .*division by zero for frame 7/,
    );
    expect(() => new Plan(base({ frames: parseFrameSpec('1,7'), chunk: 3, ins: ['l%{10/(last-6)}=x'] }))).toThrow(
      /--in "l%\{10\/\(last-6\)\}": .*division by zero for frame 4/,
    );
    expect(() => new Plan(base({ frames: parseFrameSpec('1,2'), chunk: 3, args: ['%{10/(count-2)}'] }))).toThrow(
      /division by zero for frame 1/,
    );
    // auto: sized as the run goes, nothing to check up front.
    expect(
      () => new Plan(base({ frames: parseFrameSpec('1,7'), chunk: 'auto', args: ['%{10/(count-2)}'] })),
    ).not.toThrow();
  });
});

describe('Plan: hosts, local inputs and outputs', () => {
  it('%{host} is checked for every host, other templates for the first', () => {
    expect(() => new Plan(base({ hostNames: ['a', 'b/c'], ins: ['x=%{host}/in'] }))).not.toThrow();
    expect(() => new Plan(base({ hostNames: ['a', '..'], ins: ['x=%{host}/in'] }))).toThrow(
      new UsageError('--in DEST "../in": remote paths must not contain ".."; they stay inside the host\'s workdir'),
    );
    expect(() => new Plan(base({ hostNames: ['a', '..'], args: ['%{host}'], ins: ['x=%{host}/in'] }))).toThrow(/\.\./);
    // A host only in an --in's SRC (the local side) is checked for every host too.
    expect(() => new Plan(base({ hostNames: ['a', ''], ins: ['%{host}=x'] }))).toThrow(
      new UsageError('--in "%{host}": the local path is empty'),
    );
    // No hosts named: a placeholder name stands for them.
    const plan = new Plan(base({ hostNames: [], ins: ['%{host}.cfg=c'] }));
    expect(plan.localInputs()).toEqual(['host.cfg']);
  });

  it('a per-frame template is expanded for every task and every host, not only the first', () => {
    expect(
      () =>
        new Plan(base({ hostNames: ['a', 'b'], frames: parseFrameSpec('1,3'), args: ['%{host}', '%{1/(frame-3)}'] })),
    ).toThrow(/division by zero for frame 3/);
    expect(() => new Plan(base({ frames: parseFrameSpec('1,3'), ins: ['i%{1/(frame-2)}=x'] }))).toThrow(
      /--in "i%\{1\/\(frame-2\)\}": .*division by zero for frame 2/,
    );
    expect(() => new Plan(base({ frames: parseFrameSpec('1,3'), ins: ['i%d=x%{-(3-frame)*2}'] }))).not.toThrow();
  });

  it('local inputs: per host for %{host}, once otherwise, per task for a per-task one', () => {
    const plan = new Plan(
      base({
        hostNames: ['a', 'b'],
        ins: ['common.cfg', '%{host}.cfg=host.cfg', 'cam%d.json=cam.json', 'lut.cube=%d.cube', 'same.cfg=x.cfg'],
      }),
    );
    expect(plan.localInputs()).toEqual([
      'common.cfg',
      'a.cfg',
      'b.cfg',
      'cam1.json',
      'cam2.json',
      'cam3.json',
      'lut.cube',
      'same.cfg',
    ]);
    expect(new Plan(base({ outs: ['f%d=g%d'] })).localInputs()).toEqual([]);
  });

  it('local outputs: none without a per-task --out; the tile image among them', () => {
    const plan = new Plan(base({ outs: ['s.txt=s.%{host}'] }));
    expect(plan.hasLocalOutputs).toBe(false);
    expect(plan.localOutputs(plan.tasks[0]!)).toEqual([]);
    expect(plan.tileImage(plan.tasks[0]!)).toBeUndefined();
    for (const ext of ['png', 'TIF', 'tiff', 'jpg', 'JPEG', 'webp', 'exr', 'gif', 'avif']) {
      const p = new Plan(base({ outs: [`f%d.txt`, `f%d.${ext}`] }));
      expect(p.tileImage(p.tasks[1]!)).toBe(`f2.${ext}`);
    }
    const p = new Plan(base({ outs: ['f%d.png.txt', 'f%d.pngx'] }));
    expect(p.tileImage(p.tasks[0]!)).toBeUndefined();
  });

  it('stitching, and the stitched path of a frame', () => {
    const plain = new Plan(base());
    expect(plain.stitching).toBe(false);
    expect(plain.stitchPath(1)).toBeUndefined();
    const plan = new Plan(base({ tiles: tiles(2), outs: ['t%{tile}.png=t/%d-%{tile}.png'], stitch: 'f%03d.png' }));
    expect(plan.stitching).toBe(true);
    expect(plan.stitchPath(7)).toBe('f007.png');
    expect(plan.tileImage(plan.tasks[1]!)).toBe('t/1-1.png');
  });

  it('shared remote paths: per-task copies whose host side is the same for every task', () => {
    const plan = new Plan(
      base({
        ins: ['cam%d.json=cam.json', 'in%d=in%d', 'scene.blend'],
        outs: ['out.png=f%d.png', 'o%d.png=g%d.png', 'log.txt=l/%{host}.txt'],
      }),
    );
    expect(plan.sharedRemotePaths()).toEqual(['--in cam%d.json=cam.json', '--out out.png=f%d.png']);
    expect(new Plan(base({ ins: ['a%d'] })).sharedRemotePaths()).toEqual([]);
  });

  it('a directory output keeps its "/" in local outputs; a bare "/" SRC is no directory', () => {
    const plan = new Plan(base({ outs: ['d%d//=got/d%d//'] }));
    expect(plan.taskOuts(plan.tasks[0]!, 'a')).toEqual([{ local: 'got/d1', remote: 'd1', dir: true }]);
    expect(plan.localOutputs(plan.tasks[0]!)).toEqual(['got/d1/']);
  });
});
