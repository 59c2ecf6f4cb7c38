import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { loadSharp } from './sharp.js';

/** Formats sharp decodes; other outputs are judged by being present and non-empty. */
export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.gif', '.avif']);

/**
 * The most pixels an image may declare before distray decodes it: sharp's
 * own default (16383 x 16383, 268 megapixels), above 16K (15360 x 8640,
 * 133 megapixels) and the stitcher's limit. A PNG of a few KB can declare
 * 40000 x 40000; decoded, that is gigabytes. `--max-pixels` raises it.
 */
export const DEFAULT_MAX_PIXELS = 0x3fff * 0x3fff;

const NOT_AN_IMAGE = 'is not a complete image (it does not decode)';

function megapixels(pixels: number): string {
  return `${Math.round(pixels / 1e5) / 10} megapixels`;
}

/**
 * Why an image file cannot be trusted, or undefined when it decodes to its
 * last pixel (a truncated PNG has a valid header). Its size is read from
 * the header first: one that declares more than `maxPixels` is refused
 * without being decoded. The decode itself keeps no image in memory (it is
 * shrunk to one pixel as it is read, in sequence).
 */
export async function imageProblem(path: string, maxPixels = DEFAULT_MAX_PIXELS): Promise<string | undefined> {
  const sharp = await loadSharp();
  let width: number;
  let height: number;
  try {
    // metadata() reads the header only: with the limit on, it would refuse the image without saying its size.
    ({ width, height } = await sharp(path, { limitInputPixels: false }).metadata());
  } catch {
    return NOT_AN_IMAGE;
  }
  if (width * height > maxPixels) {
    return (
      `declares ${width}x${height} pixels (${megapixels(width * height)}), more than --max-pixels allows (${maxPixels}, ${megapixels(maxPixels)}), ` +
      `so it was not decoded; if images that large are expected, raise --max-pixels`
    );
  }
  try {
    const shrunk = sharp(path, { failOn: 'truncated', sequentialRead: true, limitInputPixels: maxPixels });
    await shrunk.resize(1, 1, { fit: 'fill', fastShrinkOnLoad: false }).raw().toBuffer();
    return undefined;
  } catch {
    return NOT_AN_IMAGE;
  }
}

/**
 * Present, of the right kind, non-empty, and decodable where it is an image
 * (of at most `maxPixels`): a rerun can trust it. A path ending with "/" is a directory output; any
 * other must be a regular file (a directory there is not a finished frame).
 */
export async function isComplete(path: string, maxPixels = DEFAULT_MAX_PIXELS): Promise<boolean> {
  try {
    const info = await stat(path);
    if (path.endsWith('/')) return info.isDirectory();
    if (!info.isFile() || info.size === 0) return false;
  } catch {
    return false;
  }
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase()) ? (await imageProblem(path, maxPixels)) === undefined : true;
}
