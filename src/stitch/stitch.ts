import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { loadSharp } from '../transfer/sharp.js';
import { StitchError, errorMessage } from '../errors.js';
import type { Size, Tile } from '../plan/tiles.js';

/**
 * How a renderer delivered a tile: the whole frame with only the tile's
 * region rendered (POV-Ray's +SR/+ER, Blender's border without crop), or an
 * image of just the region.
 */
export type TileLayout = 'full-frame' | 'region';

export interface TileImage {
  tile: Tile;
  path: string;
  /** Who rendered it, for messages. */
  host?: string | undefined;
}

interface TileInfo extends TileImage {
  layout: TileLayout;
  channels: number;
  sixteenBit: boolean;
}

function describeTile(t: TileImage): string {
  return `tile ${t.tile.index} (${t.tile.x0},${t.tile.y0})-(${t.tile.x1},${t.tile.y1})${t.host ? ` from ${t.host}` : ''}`;
}

/** Tells the layout from the image's dimensions, or refuses an image that is neither. */
export async function tileLayout(t: TileImage, size: Size): Promise<TileLayout> {
  const sharp = await loadSharp();
  const meta = await sharp(t.path).metadata();
  const w = t.tile.x1 - t.tile.x0;
  const h = t.tile.y1 - t.tile.y0;
  if (meta.width === size.width && meta.height === size.height) return 'full-frame';
  if (meta.width === w && meta.height === h) return 'region';
  throw new StitchError(
    `${describeTile(t)} is ${meta.width}x${meta.height}: expected the full frame ${size.width}x${size.height} or the tile's ${w}x${h}; check the renderer's region options (%{x0} %{y0} %{x1} %{y1}, %{w} %{h})`,
  );
}

async function inspect(t: TileImage, size: Size): Promise<TileInfo> {
  const layout = await tileLayout(t, size);
  const sharp = await loadSharp();
  const meta = await sharp(t.path).metadata();
  return { ...t, layout, channels: meta.channels ?? 3, sixteenBit: meta.depth === 'ushort' };
}

/**
 * Composes a frame from its tiles, pixel for pixel: each tile's region is
 * copied into one raw canvas, keeping 16-bit depth and alpha when the tiles
 * have them, and the result is written under a temporary name and renamed.
 */
/** Aborting `signal` stops between tiles and before the frame is written: nothing is left at `out`, nor a temporary file. */
export async function stitchFrame(
  tiles: readonly TileImage[],
  size: Size,
  out: string,
  signal?: AbortSignal,
): Promise<void> {
  const stopped = (): void => {
    if (signal?.aborted) throw new StitchError(`stitching ${out} was stopped`);
  };
  const sharp = await loadSharp();
  const infos = await Promise.all(tiles.map((t) => inspect(t, size)));
  const sixteenBit = infos.some((i) => i.sixteenBit);
  const colour = infos.some((i) => i.channels >= 3);
  const alpha = infos.some((i) => i.channels === 2 || i.channels === 4);
  const channels = (colour ? 3 : 1) + (alpha ? 1 : 0);
  const bytes = sixteenBit ? 2 : 1;
  const canvas = Buffer.alloc(size.width * size.height * channels * bytes);
  const space = colour ? (sixteenBit ? 'rgb16' : 'srgb') : sixteenBit ? 'grey16' : 'b-w';

  for (const t of infos) {
    stopped();
    const w = t.tile.x1 - t.tile.x0;
    const h = t.tile.y1 - t.tile.y0;
    // Its size was checked above (the frame's or the tile's): a header that says otherwise is refused, not decoded.
    let img = sharp(t.path, { limitInputPixels: size.width * size.height });
    if (t.layout === 'full-frame') img = img.extract({ left: t.tile.x0, top: t.tile.y0, width: w, height: h });
    img = img.toColourspace(space);
    if (alpha) img = img.ensureAlpha();
    const { data, info } = await img
      .raw({ depth: sixteenBit ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width !== w || info.height !== h || info.channels !== channels) {
      throw new StitchError(
        `${describeTile(t)}: decoded as ${info.width}x${info.height}x${info.channels}, expected ${w}x${h}x${channels}`,
      );
    }
    const rowBytes = w * channels * bytes;
    for (let y = 0; y < h; y++) {
      data.copy(
        canvas,
        ((t.tile.y0 + y) * size.width + t.tile.x0) * channels * bytes,
        y * rowBytes,
        (y + 1) * rowBytes,
      );
    }
  }

  const pixels = sixteenBit ? new Uint16Array(canvas.buffer, canvas.byteOffset, canvas.length / 2) : canvas;
  let img = sharp(pixels, { raw: { width: size.width, height: size.height, channels: channels as 1 | 2 | 3 | 4 } });
  if (sixteenBit) img = img.pipelineColourspace(space).toColourspace(space);
  const ext = extname(out).toLowerCase();
  switch (ext) {
    case '.png':
      img = img.png();
      break;
    case '.tif':
    case '.tiff':
      img = img.tiff();
      break;
    case '.jpg':
    case '.jpeg':
      img = img.toColourspace(colour ? 'srgb' : 'b-w').jpeg({ quality: 95 });
      break;
    case '.webp':
      img = img.toColourspace('srgb').webp({ lossless: true });
      break;
    default:
      throw new StitchError(`--stitch ${out}: cannot write "${ext || 'no extension'}"; use .png, .tif, .jpg or .webp`);
  }
  await mkdir(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${basename(out)}.distray-${randomBytes(4).toString('hex')}.part${ext}`);
  try {
    stopped();
    await img.toFile(tmp);
    stopped();
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof StitchError) throw err;
    throw new StitchError(`stitching ${out} failed: ${errorMessage(err)}`, { cause: err });
  }
}
