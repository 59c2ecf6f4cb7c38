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

export function parseGrid(text: string): Grid {
  const m = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new UsageError(`--tiles "${text}": expected CxR with whole numbers of at least 1, such as 4x2`);
  }
  return { cols: Number(m[1]), rows: Number(m[2]) };
}

export function parseSize(text: string): Size {
  const m = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new UsageError(`--size "${text}": expected WxH in pixels, such as 1920x1080`);
  }
  return { width: Number(m[1]), height: Number(m[2]) };
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
