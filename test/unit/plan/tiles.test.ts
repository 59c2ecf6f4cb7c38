import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTileAlign, tilesOf, type Tile } from '../../../src/plan/tiles.js';
import { prepare } from '../../../src/run.js';
import { parseRunArgs, type RunArgs } from '../../../src/cli/runArgs.js';

/** Each column's [x0, x1] and each row's [y0, y1], from the tiles (row-major). */
function sides(tiles: Tile[], cols: number): { xs: number[][]; ys: number[][] } {
  return {
    xs: tiles.slice(0, cols).map((t) => [t.x0, t.x1]),
    ys: tiles.filter((_, i) => i % cols === 0).map((t) => [t.y0, t.y1]),
  };
}

/** How many tiles hold each pixel, row-major. */
function hits(tiles: Tile[], width: number, height: number): Uint8Array {
  const h = new Uint8Array(width * height);
  for (const t of tiles) for (let y = t.y0; y < t.y1; y++) for (let x = t.x0; x < t.x1; x++) h[y * width + x]!++;
  return h;
}

describe('tilesOf with --tile-align', () => {
  it.each([
    // cols, rows, width, height, align: the integration test's, POV-Ray's default block, uneven and tight cases.
    [3, 2, 160, 120, 16],
    [4, 4, 1920, 1080, 32],
    [4, 4, 3840, 2160, 32],
    [3, 3, 100, 67, 7],
    [5, 1, 47, 9, 4],
    [7, 5, 13, 11, 2],
    [2, 2, 33, 17, 16],
    [1, 1, 5, 5, 64],
    [4, 3, 53, 30, 14],
  ] as const)('%ix%i tiles of %ix%i aligned to %i', (cols, rows, width, height, align) => {
    const tiles = tilesOf({ cols, rows }, { width, height }, align);
    expect(tiles.map((t) => t.index)).toEqual([...Array(cols * rows).keys()]);
    expect(tiles.every((t) => t.count === cols * rows)).toBe(true);
    // Every pixel in exactly one tile.
    expect(hits(tiles, width, height).every((h) => h === 1)).toBe(true);
    // A grid: every tile's edges are its column's and its row's.
    const { xs, ys } = sides(tiles, cols);
    for (const [i, t] of tiles.entries()) {
      expect([t.x0, t.x1]).toEqual(xs[i % cols]);
      expect([t.y0, t.y1]).toEqual(ys[Math.floor(i / cols)]);
    }
    for (const [edges, length] of [
      [xs, width],
      [ys, height],
    ] as const) {
      // Inner edges on multiples of the alignment, measured from the top-left; the outer ones are the image's.
      expect(edges[0]![0]).toBe(0);
      expect(edges.at(-1)![1]).toBe(length);
      for (const [, end] of edges.slice(0, -1)) expect(end! % align).toBe(0);
      // No tile empty, and sizes at most `align` apart.
      const sizes = edges.map(([a, b]) => b! - a!);
      expect(Math.min(...sizes)).toBeGreaterThan(0);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(align);
    }
  });

  it('holds for every small grid, image and alignment: aligned, exact cover, sizes at most N apart, or refused when no aligned split exists', () => {
    for (let length = 1; length <= 40; length++)
      for (let count = 1; count <= Math.min(length, 6); count++)
        for (let align = 1; align <= 45; align++) {
          // Inner edges are count - 1 distinct multiples of align in (0, length): that many exist or no split does.
          const possible = Math.ceil(length / align) - 1 >= count - 1;
          const split = (): Tile[] => tilesOf({ cols: count, rows: 1 }, { width: length, height: 1 }, align);
          if (!possible) {
            expect(split, `${count} of ${length} by ${align}`).toThrow(/--tile-align/);
            continue;
          }
          const edges = split().map((t) => [t.x0, t.x1] as const);
          const sizes = edges.map(([a, b]) => b - a);
          expect(
            edges
              .map(([a]) => a)
              .slice(1)
              .every((e) => e % align === 0),
          ).toBe(true);
          expect(edges.every(([, b], i) => b === (edges[i + 1]?.[0] ?? length))).toBe(true);
          expect(edges[0]![0]).toBe(0);
          expect(Math.min(...sizes)).toBeGreaterThan(0);
          expect(Math.max(...sizes) - Math.min(...sizes), `${count} of ${length} by ${align}`).toBeLessThanOrEqual(
            align,
          );
        }
  });

  it('with N = 1 is the split without --tile-align, pixel for pixel', () => {
    for (const [cols, rows, width, height] of [
      [3, 2, 101, 67],
      [7, 5, 13, 11],
      [4, 4, 3840, 2160],
      [100, 100, 1000, 999],
    ] as const) {
      expect(tilesOf({ cols, rows }, { width, height }, 1)).toEqual(tilesOf({ cols, rows }, { width, height }));
    }
  });

  it('spreads whole blocks as the unaligned split spreads pixels, and the last row and column take the short block', () => {
    // 160 = 10 blocks of 16, in 3 columns: 3, 3 and 4 blocks. 120 = 7 blocks and 8 pixels, in 2 rows: 4 blocks, then 3 and 8 pixels.
    const { xs, ys } = sides(tilesOf({ cols: 3, rows: 2 }, { width: 160, height: 120 }, 16), 3);
    expect(xs).toEqual([
      [0, 48],
      [48, 96],
      [96, 160],
    ]);
    expect(ys).toEqual([
      [0, 64],
      [64, 120],
    ]);
    // Unaligned, the same grid cuts at 53, 106 and 60.
    expect(sides(tilesOf({ cols: 3, rows: 2 }, { width: 160, height: 120 }), 3)).toMatchObject({
      xs: [
        [0, 53],
        [53, 106],
        [106, 160],
      ],
      ys: [
        [0, 60],
        [60, 120],
      ],
    });
  });

  it('takes an alignment larger than a tile while every tile keeps a block, the last one the short rest', () => {
    // 4 columns of 100 pixels by 30: edges 30, 60, 90, and a last column of 10 pixels.
    expect(sides(tilesOf({ cols: 4, rows: 1 }, { width: 100, height: 5 }, 30), 4).xs).toEqual([
      [0, 30],
      [30, 60],
      [60, 90],
      [90, 100],
    ]);
    // A 1x1 grid has no inner edge: any alignment leaves it whole.
    expect(tilesOf({ cols: 1, rows: 1 }, { width: 5, height: 5 }, 1_000_000)).toEqual([
      { index: 0, count: 1, x0: 0, y0: 0, x1: 5, y1: 5 },
    ]);
  });

  it('refuses an alignment that would leave a tile empty, naming the largest that works for --tiles and --size', () => {
    // Across, 3 inner edges below 160 need N <= 53; down, 1 below 120 needs N <= 119.
    const grid = { cols: 4, rows: 2 };
    const size = { width: 160, height: 120 };
    expect(() => tilesOf(grid, size, 54)).toThrow(
      '--tile-align 54 is too coarse for --tiles 4x2 at --size 160x120: the inner tile edges need 3 multiples of 54 below 160 ' +
        'and 1 below 120, or some tile would be empty; the largest --tile-align that works here is 53 (or use fewer tiles)',
    );
    expect(tilesOf(grid, size, 53).map((t) => t.x1)).toEqual([53, 106, 159, 160, 53, 106, 159, 160]);
    // Rows limit it too.
    expect(() => tilesOf({ cols: 1, rows: 3 }, size, 60)).toThrow(/the largest --tile-align that works here is 59/);
    // A grid finer than the image is refused as before, whatever the alignment.
    expect(() => tilesOf({ cols: 6, rows: 1 }, { width: 5, height: 5 }, 2)).toThrow(/finer than the image/);
    expect(() => tilesOf({ cols: 1, rows: 6 }, { width: 5, height: 5 }, 2)).toThrow(/finer than the image/);
  });
});

describe('parseTileAlign', () => {
  it('takes a whole number of pixels', () => {
    expect(parseTileAlign('16')).toBe(16);
    expect(parseTileAlign('1')).toBe(1);
    expect(parseTileAlign('1000000')).toBe(1_000_000);
    expect(parseTileAlign(' 32 ')).toBe(32);
  });

  it.each(['0', '-16', '1.5', '16px', 'abc', '', '1e3', '1000001', '99999999999999999999'])(
    'refuses "%s", naming the option',
    (text) => {
      expect(() => parseTileAlign(text)).toThrow(
        new RegExp(`^--tile-align "${text}": expected a whole number of pixels from 1 to 1000000`),
      );
    },
  );
});

describe('--tile-align on the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'distray-tiles-'));
  const inventory = join(dir, 'farm.yaml');
  writeFileSync(inventory, 'hosts:\n  - local: true\n    workdir: w\n');
  const opts = (over: Partial<RunArgs>): RunArgs => ({
    inventory,
    frames: '1',
    exec: 'povray',
    args: ['+SC%{x0+1}', '+EC%{x1}', '+SR%{y0+1}', '+ER%{y1}'],
    outs: ['t%d-%{tile}.png'],
    tiles: '3x2',
    size: '160x120',
    ...over,
  });
  const regions = (over: Partial<RunArgs>): string[] =>
    prepare(parseRunArgs(opts(over))).plan.tasks.map((t) => {
      const v = t.vars;
      return `${v.x0},${v.y0}-${v.x1},${v.y1}`;
    });

  it('places the tiles the renderer is told about (%{x0} and the rest)', () => {
    expect(regions({ tileAlign: '16' })).toEqual([
      '0,0-48,64',
      '48,0-96,64',
      '96,0-160,64',
      '0,64-48,120',
      '48,64-96,120',
      '96,64-160,120',
    ]);
    expect(regions({})).toEqual([
      '0,0-53,60',
      '53,0-106,60',
      '106,0-160,60',
      '0,60-53,120',
      '53,60-106,120',
      '106,60-160,120',
    ]);
  });

  it.each([
    [
      { tileAlign: '16', tiles: undefined, size: undefined },
      /^--tile-align places the edges of --tiles; add --tiles CxR/,
    ],
    [{ tileAlign: 'x' }, /^--tile-align "x": expected a whole number/],
    [{ tileAlign: '0' }, /^--tile-align "0": expected a whole number/],
    [{ tileAlign: '80' }, /^--tile-align 80 is too coarse .* the largest --tile-align that works here is 79/],
  ])('refuses %o', (over, message) => {
    expect(() => prepare(parseRunArgs(opts(over)))).toThrow(message);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));
});
