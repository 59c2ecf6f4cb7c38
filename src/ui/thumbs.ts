import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS } from '../transfer/complete.js';
import { loadSharp } from '../transfer/sharp.js';

/** The two sizes the page shows: the grid's and the contact sheet's, and the picture a click opens. */
export const THUMB_SIZES = { small: 240, large: 960 } as const;
export type ThumbSize = keyof typeof THUMB_SIZES;

export const THUMB_TYPE = 'image/webp';

/** Entries kept: about 20 KB each small, a few hundred large; the oldest go first. */
const MAX_ENTRIES = 2000;

export function isImage(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase());
}

/**
 * Thumbnails of rendered outputs, each made once (sharp: fitted inside the
 * size, never enlarged, WebP) and kept while the file is the same size and
 * age: a page that asks again, or many pages, cost a stat, not an encode.
 */
export class Thumbnails {
  private readonly cache = new Map<string, { stamp: string; data: Promise<Buffer> }>();

  async get(path: string, size: ThumbSize): Promise<Buffer> {
    const info = await stat(path);
    const stamp = `${info.size}:${info.mtimeMs}`;
    const key = `${size}\0${path}`;
    const hit = this.cache.get(key);
    if (hit && hit.stamp === stamp) return hit.data;
    const data = encode(path, THUMB_SIZES[size]);
    this.cache.set(key, { stamp, data });
    // A file that cannot be read now may be readable later (still being written): not cached.
    data.catch(() => {
      if (this.cache.get(key)?.data === data) this.cache.delete(key);
    });
    if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    return data;
  }
}

async function encode(path: string, px: number): Promise<Buffer> {
  const sharp = await loadSharp();
  // Outputs were checked against the run's --max-pixels when they came back; past the default a picture is not shown, never decoded.
  return sharp(path, { limitInputPixels: DEFAULT_MAX_PIXELS })
    .rotate()
    .resize({ width: px, height: px, fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80 })
    .toBuffer();
}
