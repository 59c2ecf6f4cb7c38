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
 * Splits an image into a grid whose tiles cover every pixel exactly once:
 * boundaries are floor(i * W / C), so uneven sizes spread the remainder
 * instead of dropping it.
 */
export function tilesOf(grid: Grid, size: Size): Tile[] {
  if (grid.cols > size.width || grid.rows > size.height) {
    throw new UsageError(
      `--tiles ${grid.cols}x${grid.rows} is finer than the image (${size.width}x${size.height}): every tile needs at least one pixel`,
    );
  }
  const tiles: Tile[] = [];
  const count = grid.cols * grid.rows;
  for (let r = 0; r < grid.rows; r++) {
    for (let c = 0; c < grid.cols; c++) {
      tiles.push({
        index: r * grid.cols + c,
        count,
        x0: Math.floor((c * size.width) / grid.cols),
        x1: Math.floor(((c + 1) * size.width) / grid.cols),
        y0: Math.floor((r * size.height) / grid.rows),
        y1: Math.floor(((r + 1) * size.height) / grid.rows),
      });
    }
  }
  return tiles;
}
