// The tile geometry without --tile-align: parsing --tiles and --size, and the split (tiles.test.ts has --tile-align).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { MAX_SIDE, MAX_TILES, parseGrid, parseSize, tilesOf } from '../../../src/plan/tiles.js';

describe('parseGrid (--tiles)', () => {
  it.each([
    ['4x2', { cols: 4, rows: 2 }],
    [' 3X1 ', { cols: 3, rows: 1 }],
    ['1x1', { cols: 1, rows: 1 }],
    ['100x100', { cols: 100, rows: 100 }],
  ])('%j is %j', (text, grid) => {
    expect(parseGrid(text)).toEqual(grid);
  });

  it.each(['0x2', '2x0', '4', '4x', 'x2', '4x2x1', '-1x2', 'ax2', '4 x 2', ''])(
    '%j is refused with the form it expects',
    (text) => {
      expect(() => parseGrid(text)).toThrow(UsageError);
      expect(() => parseGrid(text)).toThrow(
        `--tiles "${text}": expected CxR with whole numbers of at least 1, such as 4x2`,
      );
    },
  );

  it(`refuses more than ${MAX_TILES} tiles a frame, saying how many it would make`, () => {
    expect(() => parseGrid('100x101')).toThrow(
      `--tiles "100x101" makes 10100 tiles per frame; at most ${MAX_TILES} (such as 100x100)`,
    );
    expect(() => parseGrid('10001x1')).toThrow('makes 10001 tiles per frame');
    expect(() => parseGrid('10001x1')).toThrow(
      'every tile is a renderer start and a download of its own, which past that outweigh the render they split',
    );
  });
});

describe('parseSize (--size)', () => {
  it.each([
    ['1920x1080', { width: 1920, height: 1080 }],
    [' 640X480 ', { width: 640, height: 480 }],
    ['1x1', { width: 1, height: 1 }],
    [`${MAX_SIDE}x${MAX_SIDE}`, { width: MAX_SIDE, height: MAX_SIDE }],
  ])('%j is %j', (text, size) => {
    expect(parseSize(text)).toEqual(size);
  });

  it.each(['0x5', '5x0', '1920', '1920x', 'x1080', '19.5x10', '1920*1080', '1920x1080x2', '1920x1080px', ''])(
    '%j is refused with the form it expects',
    (text) => {
      expect(() => parseSize(text)).toThrow(`--size "${text}": expected WxH in pixels, such as 1920x1080`);
    },
  );

  it.each([`${MAX_SIDE + 1}x1`, `1x${MAX_SIDE + 1}`])('%j is refused: too many pixels a side', (text) => {
    expect(() => parseSize(text)).toThrow(`--size "${text}": at most ${MAX_SIDE} pixels a side`);
  });
});

describe('tilesOf', () => {
  it('cuts 10x5 pixels in 3x2 tiles, row by row, spreading the remainder', () => {
    expect(tilesOf({ cols: 3, rows: 2 }, { width: 10, height: 5 })).toEqual([
      { index: 0, count: 6, x0: 0, x1: 3, y0: 0, y1: 2 },
      { index: 1, count: 6, x0: 3, x1: 6, y0: 0, y1: 2 },
      { index: 2, count: 6, x0: 6, x1: 10, y0: 0, y1: 2 },
      { index: 3, count: 6, x0: 0, x1: 3, y0: 2, y1: 5 },
      { index: 4, count: 6, x0: 3, x1: 6, y0: 2, y1: 5 },
      { index: 5, count: 6, x0: 6, x1: 10, y0: 2, y1: 5 },
    ]);
  });

  it('covers every pixel exactly once, however uneven', () => {
    for (const [cols, rows, width, height] of [
      [7, 3, 100, 31],
      [1, 1, 1, 1],
      [4, 4, 4, 4],
      [5, 2, 13, 2],
    ] as const) {
      const seen = new Uint8Array(width * height);
      for (const t of tilesOf({ cols, rows }, { width, height }))
        for (let y = t.y0; y < t.y1; y++) for (let x = t.x0; x < t.x1; x++) seen[y * width + x]!++;
      expect(
        [...seen].every((n) => n === 1),
        `${cols}x${rows} over ${width}x${height}`,
      ).toBe(true);
    }
  });

  it('allows one pixel a tile, and refuses a grid finer than the image on either side', () => {
    expect(tilesOf({ cols: 2, rows: 3 }, { width: 2, height: 3 })).toHaveLength(6);
    expect(() => tilesOf({ cols: 3, rows: 1 }, { width: 2, height: 9 })).toThrow(
      '--tiles 3x1 is finer than the image (2x9): every tile needs at least one pixel',
    );
    expect(() => tilesOf({ cols: 1, rows: 4 }, { width: 9, height: 3 })).toThrow(
      '--tiles 1x4 is finer than the image (9x3)',
    );
  });
});
