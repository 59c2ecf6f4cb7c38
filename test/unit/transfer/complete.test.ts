import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_PIXELS, imageProblem, isComplete } from '../../../src/transfer/complete.js';
import { craftedPng } from '../../helpers/png.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-complete-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function png(name: string, width: number, height: number): Promise<string> {
  const path = join(dir, name);
  await sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 10 } } })
    .png()
    .toFile(path);
  return path;
}

describe('imageProblem: the pixel limit', () => {
  it('refuses, from its header alone, a few KB that declare 40000x40000 pixels, naming the size and the option that raises the limit', async () => {
    const path = join(dir, 'bomb.png');
    writeFileSync(path, craftedPng(40000, 40000));
    expect(await imageProblem(path)).toBe(
      'declares 40000x40000 pixels (1600 megapixels), more than --max-pixels allows (268402689, 268.4 megapixels), ' +
        'so it was not decoded; if images that large are expected, raise --max-pixels',
    );
    expect(await isComplete(path)).toBe(false);
  });

  it("the default is sharp's own, 16383x16383: one pixel more is refused", async () => {
    expect(DEFAULT_MAX_PIXELS).toBe(16383 * 16383);
    const path = join(dir, 'wide.png');
    writeFileSync(path, craftedPng(16384, 16383));
    expect(await imageProblem(path)).toMatch(/^declares 16384x16383 pixels/);
  });

  it('takes the limit it is given, both ways', async () => {
    const path = await png('small.png', 64, 48);
    expect(await imageProblem(path)).toBeUndefined();
    expect(await imageProblem(path, 64 * 48)).toBeUndefined();
    expect(await imageProblem(path, 64 * 48 - 1)).toMatch(
      /^declares 64x48 pixels \(0 megapixels\), more than --max-pixels allows \(3071,/,
    );
    expect(await isComplete(path, 100)).toBe(false);
    expect(await isComplete(path)).toBe(true);
    // Raised, a declared size within it is decoded: this one is short of its rows.
    const bomb = join(dir, 'short.png');
    writeFileSync(bomb, craftedPng(40000, 40000));
    expect(await imageProblem(bomb, 40000 * 40000)).toBe('is not a complete image (it does not decode)');
  });

  it.each(['png', 'jpg', 'webp', 'tif', 'gif', 'avif'])('passes a whole %s within the limit', async (ext) => {
    const path = join(dir, `whole.${ext}`);
    await sharp({
      create: { width: 96, height: 64, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } },
    }).toFile(path);
    expect(await imageProblem(path)).toBeUndefined();
    expect(await imageProblem(path, 96 * 64 - 1)).toMatch(/^declares 96x64 pixels/);
  });

  it('still decodes to the last pixel: a PNG or JPEG cut short, or not an image at all, is refused', async () => {
    const whole = await png('whole.png', 1200, 900);
    const data = readFileSync(whole);
    const cut = join(dir, 'cut.png');
    writeFileSync(cut, data.subarray(0, data.length - 100));
    expect(await imageProblem(cut)).toBe('is not a complete image (it does not decode)');
    const jpeg = join(dir, 'whole.jpeg');
    await sharp({ create: { width: 1200, height: 900, channels: 3, background: { r: 200, g: 30, b: 10 } } })
      .jpeg()
      .toFile(jpeg);
    const jpegData = readFileSync(jpeg);
    const cutJpeg = join(dir, 'cut.jpeg');
    writeFileSync(cutJpeg, jpegData.subarray(0, jpegData.length - 300));
    expect(await imageProblem(jpeg)).toBeUndefined();
    expect(await imageProblem(cutJpeg)).toBe('is not a complete image (it does not decode)');
    const text = join(dir, 'text.png');
    writeFileSync(text, 'not a picture\n');
    expect(await imageProblem(text)).toBe('is not a complete image (it does not decode)');
  });
});
