import { UsageError } from '../errors.js';

export interface Grid {
  cols: number;
  rows: number;
}
export interface Size {
  width: number;
  height: number;
}
/** A tile's pixel bounds: 0-based, end-exclusive, origin top-left. */
export interface Tile {
  index: number;
  count: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Tiles per frame. Every tile is a renderer start (the scene parsed again),
 * a download and a piece of its frame's stitch; past a few thousand, those
 * costs outgrow the render they split, and a typo such as 1000x1000 would
 * plan a million tasks for one image.
 */
export const MAX_TILES = 10_000;
/** Pixels per side: far past any renderer's output, and small enough for exact tile arithmetic. */
export const MAX_SIDE = 1_000_000;

export function parseGrid(text: string): Grid {
  const m = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new UsageError(`--tiles "${text}": expected CxR with whole numbers of at least 1, such as 4x2`);
  }
  const cols = Number(m[1]);
  const rows = Number(m[2]);
  if (cols * rows > MAX_TILES) {
    throw new UsageError(
      `--tiles "${text}" makes ${cols * rows} tiles per frame; at most ${MAX_TILES} (such as 100x100) are allowed: ` +
        'every tile is a renderer start and a download of its own, which past that outweigh the render they split',
    );
  }
  return { cols, rows };
}

export function parseSize(text: string): Size {
  const m = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new UsageError(`--size "${text}": expected WxH in pixels, such as 1920x1080`);
  }
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width > MAX_SIDE || height > MAX_SIDE)
    throw new UsageError(`--size "${text}": at most ${MAX_SIDE} pixels a side`);
  return { width, height };
}

/**
 * --tile-align N: a whole number of pixels, at least 1. Whether a grid can
 * be aligned to it depends on --tiles and --size, which tilesOf checks.
 */
export function parseTileAlign(text: string): number {
  const digits = text.trim();
  const n = Number(digits);
  if (!/^\d+$/.test(digits) || n < 1 || n > MAX_SIDE) {
    throw new UsageError(
      `--tile-align "${text}": expected a whole number of pixels from 1 to ${MAX_SIDE}, such as 16 (with POV-Ray's +BS16)`,
    );
  }
  return n;
}

/**
 * A side's tile edges: `count` tiles over `length` pixels, every inner edge
 * a multiple of `align`. The side is cut into blocks of `align` pixels (the
 * last one short when `align` does not divide it), and the blocks are split
 * as pixels are without alignment, at floor(i * blocks / count): with
 * `align` 1 that is floor(i * length / count) exactly. Tiles differ by at
 * most `align` pixels: every tile but the last is k or k+1 whole blocks,
 * and the last, which holds the short block, is k+1 blocks less the
 * shortfall (between the two), or k blocks less it when all have k.
 */
function edgesOf(length: number, count: number, align: number): number[] {
  const blocks = Math.ceil(length / align);
  return Array.from({ length: count + 1 }, (_, i) => (i === count ? length : align * Math.floor((i * blocks) / count)));
}

/**
 * The largest --tile-align that leaves no tile of a side empty: `count - 1`
 * inner edges need as many distinct multiples of it below `length`.
 */
function largestAlign(length: number, count: number): number {
  return count === 1 ? MAX_SIDE : Math.floor((length - 1) / (count - 1));
}

/**
 * Splits an image into a grid whose tiles cover every pixel exactly once:
 * boundaries are floor(i * W / C), so uneven sizes spread the remainder
 * instead of dropping it. With `align` (--tile-align) every inner boundary
 * is a multiple of it, counted from the top-left corner as POV-Ray anchors
 * its blocks (+BS), so a tile's antialiasing sees the blocks a whole render
 * does; see edgesOf.
 */
export function tilesOf(grid: Grid, size: Size, align = 1): Tile[] {
  if (grid.cols > size.width || grid.rows > size.height) {
    throw new UsageError(
      `--tiles ${grid.cols}x${grid.rows} is finer than the image (${size.width}x${size.height}): every tile needs at least one pixel`,
    );
  }
  const largest = Math.min(largestAlign(size.width, grid.cols), largestAlign(size.height, grid.rows));
  if (align > largest) {
    throw new UsageError(
      `--tile-align ${align} is too coarse for --tiles ${grid.cols}x${grid.rows} at --size ${size.width}x${size.height}: ` +
        `the inner tile edges need ${grid.cols - 1} multiples of ${align} below ${size.width} and ${grid.rows - 1} below ${size.height}, ` +
        `or some tile would be empty; the largest --tile-align that works here is ${largest} (or use fewer tiles)`,
    );
  }
  const xs = edgesOf(size.width, grid.cols, align);
  const ys = edgesOf(size.height, grid.rows, align);
  const tiles: Tile[] = [];
  const count = grid.cols * grid.rows;
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.cols; c++) {
      tiles.push({ index: r * grid.cols + c, count, x0: xs[c]!, x1: xs[c + 1]!, y0: ys[r]!, y1: ys[r + 1]! });
    }
  }
  return tiles;
}
