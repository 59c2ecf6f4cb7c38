import { closeSync, constants, fstatSync, openSync, readFileSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';

/** What a file that is not a regular one is, for a message. */
function kind(info: Stats): string {
  if (info.isFIFO()) return 'a FIFO';
  if (info.isDirectory()) return 'a directory';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Why `path` (just opened, `info` its fstat) cannot be read as a file, or
 * undefined: anything but a regular file (a FIFO, a device) could hold a
 * reader for ever.
 */
function problem(path: string, info: Stats): string | undefined {
  return info.isFile() || isDevNull(info) ? undefined : `${path} is ${kind(info)}, not a regular file`;
}

let devNull: number | undefined;
/** /dev/null reads as empty at once: an SSH config set to it means none. */
function isDevNull(info: Stats): boolean {
  if (!info.isCharacterDevice()) return false;
  try {
    devNull ??= statSync('/dev/null').rdev;
  } catch {
    return false;
  }
  return info.rdev === devNull;
}

/**
 * Opened with O_NONBLOCK, so that a FIFO never blocks the open itself, and
 * refused unless it is a regular file: a FIFO (or a regular file swapped for
 * one) would block the read until something writes to it, the event loop
 * (or a thread of Node's) with it, Ctrl+C included.
 */
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** Reads a regular file as text; throws `NotRegular` for anything else. */
export async function readRegularFile(path: string): Promise<string> {
  const handle = await open(path, FLAGS);
  try {
    const why = problem(path, await handle.stat());
    if (why) throw new NotRegular(why);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** The same, at once: for files read before anything else runs (a config file, small and local). */
export function readRegularFileSync(path: string): string {
  const fd = openSync(path, FLAGS);
  try {
    const why = problem(path, fstatSync(fd));
    if (why) throw new NotRegular(why);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export class NotRegular extends Error {}
