import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { tilesOf } from '../../../src/plan/tiles.js';
import { stitchFrame } from '../../../src/stitch/stitch.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-stitch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const size = { width: 23, height: 17 };
const tiles = tilesOf({ cols: 3, rows: 2 }, size);

/** A deterministic test image: every pixel's value depends on (x, y, channel). */
function image(
  channels: number,
  sixteen: boolean,
): { data: Buffer | Uint16Array; raw: { width: number; height: number; channels: 1 | 2 | 3 | 4 } } {
  const n = size.width * size.height * channels;
  const data = sixteen ? new Uint16Array(n) : Buffer.alloc(n);
  for (let i = 0; i < n; i++) data[i] = sixteen ? (i * 7919) % 65536 : (i * 31) % 256;
  return { data, raw: { width: size.width, height: size.height, channels: channels as 1 | 2 | 3 | 4 } };
}

async function write(
  path: string,
  img: ReturnType<typeof image>,
  sixteen: boolean,
  region?: (typeof tiles)[number],
): Promise<void> {
  let s = sharp(img.data, { raw: img.raw });
  const space = img.raw.channels >= 3 ? 'rgb16' : 'grey16';
  if (sixteen) s = s.pipelineColourspace(space).toColourspace(space);
  if (region) {
    // Materialise first: extract after a colourspace change must see the full image.
    const buf = await s.png().toBuffer();
    s = sharp(buf)
      .extract({ left: region.x0, top: region.y0, width: region.x1 - region.x0, height: region.y1 - region.y0 })
      .toColourspace(sixteen ? space : img.raw.channels >= 3 ? 'srgb' : 'b-w');
  }
  await s.png().toFile(path);
}

async function raw(path: string, sixteen: boolean, colour: boolean): Promise<Buffer> {
  return sharp(path)
    .toColourspace(sixteen ? (colour ? 'rgb16' : 'grey16') : colour ? 'srgb' : 'b-w')
    .raw({ depth: sixteen ? 'ushort' : 'uchar' })
    .toBuffer();
}

describe('stitchFrame', () => {
  it.each([
    [3, false, 'rgb 8-bit'],
    [4, false, 'rgba 8-bit'],
    [3, true, 'rgb 16-bit'],
    [4, true, 'rgba 16-bit'],
    [1, true, 'grey 16-bit'],
  ])('rebuilds the image exactly from region tiles (%i channels, 16-bit %s: %s)', async (channels, sixteen, name) => {
    const img = image(channels, sixteen);
    const whole = join(dir, `${name}-whole.png`);
    await write(whole, img, sixteen);
    const parts = await Promise.all(
      tiles.map(async (t) => {
        const path = join(dir, `${name}-t${t.index}.png`);
        await write(path, img, sixteen, t);
        return { tile: t, path };
      }),
    );
    const out = join(dir, `${name}-stitched.png`);
    await stitchFrame(parts, size, out);
    const meta = await sharp(out).metadata();
    expect(meta.channels).toBe(channels);
    expect(meta.depth).toBe(sixteen ? 'ushort' : 'uchar');
    const colour = channels >= 3;
    expect((await raw(out, sixteen, colour)).equals(await raw(whole, sixteen, colour))).toBe(true);
  });

  it('writes the format the extension names, atomically', async () => {
    const img = image(3, false);
    const parts = await Promise.all(
      tiles.map(async (t) => {
        const path = join(dir, `fmt-t${t.index}.png`);
        await write(path, img, false, t);
        return { tile: t, path };
      }),
    );
    for (const [ext, format] of [
      ['tif', 'tiff'],
      ['jpg', 'jpeg'],
      ['webp', 'webp'],
    ]) {
      const out = join(dir, 'formats', `frame.${ext}`);
      await stitchFrame(parts, size, out);
      expect((await sharp(out).metadata()).format).toBe(format);
    }
    expect(readdirSync(join(dir, 'formats')).filter((f) => f.includes('.part'))).toEqual([]);
    await expect(stitchFrame(parts, size, join(dir, 'frame.bmp'))).rejects.toThrow(/cannot write "\.bmp"/);
  });

  it('refuses a tile that is neither the frame nor its region', async () => {
    const path = join(dir, 'odd.png');
    await sharp({ create: { width: 5, height: 5, channels: 3, background: '#000' } })
      .png()
      .toFile(path);
    await expect(stitchFrame([{ tile: tiles[0]!, path, host: 'h9' }], size, join(dir, 'x.png'))).rejects.toThrow(
      /tile 0 \(0,0\)-\(7,8\) from h9 is 5x5: expected the full frame 23x17 or the tile's 7x8/,
    );
  });
});
