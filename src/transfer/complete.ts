import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { loadSharp } from './sharp.js';

/** Formats sharp decodes; other outputs are judged by being present and non-empty. */
export const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.gif', '.avif']);

/** Can this image be decoded to the last pixel? A truncated PNG has a valid header. */
export async function decodes(path: string): Promise<boolean> {
  try {
    const sharp = await loadSharp();
    await sharp(path, { failOn: 'truncated', sequentialRead: true, limitInputPixels: false }).raw().toBuffer();
    return true;
  } catch {
    return false;
  }
}

/**
 * Present, of the right kind, non-empty, and decodable where it is an image:
 * a rerun can trust it. A path ending with "/" is a directory output; any
 * other must be a regular file (a directory there is not a finished frame).
 */
export async function isComplete(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    if (path.endsWith('/')) return info.isDirectory();
    if (!info.isFile() || info.size === 0) return false;
  } catch {
    return false;
  }
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase()) ? decodes(path) : true;
}
