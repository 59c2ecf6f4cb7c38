import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LocalFault, TransferError } from '../errors.js';

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
 * With less than SPARE_BYTES free whatever the file, this machine's disk is
 * full, not the host's output too large: that is a LocalFault (the run
 * stops, and the host is not charged).
 */
export async function ensureRoom(localPath: string, size: number, path: string, host: string): Promise<void> {
  const dir = resolve(dirname(localPath));
  // A file system that tells nothing of its size (some FUSE mounts say 0 blocks) is not judged: the write itself will say.
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs || fs.blocks === 0) return;
  const free = fs.bavail * fs.bsize;
  if (size + SPARE_BYTES <= free) return;
  if (free < SPARE_BYTES)
    throw new LocalFault(
      dir,
      'ENOSPC',
      `cannot write the outputs in ${dir} on this machine: only ${amount(free)} free there (distray keeps ${amount(SPARE_BYTES)} spare); ` +
        `the run stopped and no host was blamed: free space there, or give --out a place with room, then run the same command again (what is done is kept)`,
    );
  throw new TransferError(
    `${path} on ${host} is ${size} bytes (${amount(size)}), more than the ${amount(free)} free in ${dir} here ` +
      `(keeping ${amount(SPARE_BYTES)} spare): free space there or send --out elsewhere, or, if the host should not make such a file, look at the renderer there`,
  );
}
