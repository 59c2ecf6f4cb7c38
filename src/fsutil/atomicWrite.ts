/**
 * Writing a local file so that a reader sees the old one or the new one,
 * never half of either, and nothing already at the temporary name is ever
 * written to or followed.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage } from '../errors.js';

/**
 * Created, never opened: O_EXCL fails on anything already there (a file, a
 * FIFO, which would block the open, a symbolic link, which it never
 * follows); O_NOFOLLOW says the same of a link once more.
 */
export const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** A fresh, unguessable name beside `path` (hidden, marked as distray's and partial), for a file written and then renamed to `path`. */
export function tempNameBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.distray-${randomBytes(8).toString('hex')}.part`);
}

/**
 * Writes `data` (a string, a buffer, or pieces of either) to a new file under
 * a random name in `path`'s directory, made if missing, and renames it over
 * `path`. The temporary file is created with O_EXCL|O_NOFOLLOW, so whatever
 * stands at that name makes the write fail instead of being followed, and it
 * is removed if anything fails. `mode` is the new file's permission bits
 * (less the umask); `fsync` flushes it to disk before the rename, for files
 * whose loss on a crash would cost more than the time (known_hosts).
 */
export async function writeFileAtomically(
  path: string,
  data: string | Uint8Array | Iterable<string | Uint8Array>,
  options: { mode?: number; fsync?: boolean } = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempNameBeside(path);
  const file = await open(tmp, CREATE_NEW, options.mode ?? 0o666);
  try {
    const pieces = typeof data === 'string' || data instanceof Uint8Array ? [data] : data;
    for (const piece of pieces) {
      if (typeof piece === 'string') await file.write(piece);
      else await file.write(piece);
    }
    if (options.fsync) await file.sync();
    await file.close();
    await rename(tmp, path);
  } catch (err) {
    await file.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

const REASONS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a directory on its way is a file',
  EISDIR: 'it is a directory',
  EEXIST: 'something is already there',
  ELOOP: 'a symbolic link is in the way',
  EIO: 'input/output error',
};

/** Why a local file could not be written, in words with the system's code: "permission denied (EACCES)". */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && REASONS[code] !== undefined) return `${REASONS[code]} (${code})`;
  return errorMessage(err);
}
