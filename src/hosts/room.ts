import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { TransferError } from '../errors.js';

/** Left free besides the file itself: the run's reports and logs, and other downloads of the moment. */
export const SPARE_BYTES = 64 * 1024 * 1024;

function amount(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

/**
 * Fails, before a byte is fetched, when the file `path` on `host`, `size`
 * bytes, would not fit in the free space of the local directory that
 * `localPath` is in (with SPARE_BYTES to spare): a host that sends a file of
 * any size (a sparse 5 TB one is one `truncate`) must not fill this machine.
 */
export async function ensureRoom(localPath: string, size: number, path: string, host: string): Promise<void> {
  const dir = resolve(dirname(localPath));
  // A file system that tells nothing of its size (some FUSE mounts say 0 blocks) is not judged: the write itself will say.
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs || fs.blocks === 0) return;
  const free = fs.bavail * fs.bsize;
  if (size + SPARE_BYTES <= free) return;
  throw new TransferError(
    `${path} on ${host} is ${size} bytes (${amount(size)}), more than the ${amount(free)} free in ${dir} here ` +
      `(keeping ${amount(SPARE_BYTES)} spare): free space there or send --out elsewhere, or, if the host should not make such a file, look at the renderer there`,
  );
}
