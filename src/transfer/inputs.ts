import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import PQueue from 'p-queue';
import { TransferError, errorMessage } from '../errors.js';
import type { HostSession } from '../hosts/session.js';
import type { Copy } from '../plan/plan.js';
import { localTree, uploadFile, type LocalFile } from './copies.js';

/** Files uploaded at once to one host: small files are round-trip bound, large ones are not hurt. */
const PARALLEL_UPLOADS = 64;

export interface SyncStats {
  files: number;
  sent: number;
  unchanged: number;
  bytesSent: number;
  seconds: number;
}

/** SHA-256 of local files, computed once per run however many hosts need them. */
export class LocalHashes {
  private readonly cache = new Map<string, Promise<string>>();
  of(path: string): Promise<string> {
    let h = this.cache.get(path);
    if (!h) {
      h = new Promise<string>((resolve, reject) => {
        const hash = createHash('sha256');
        createReadStream(path)
          .on('data', (c) => hash.update(c))
          .on('error', reject)
          .on('end', () => resolve(hash.digest('hex')));
      });
      this.cache.set(path, h);
    }
    return h;
  }
}

/**
 * Sends the once-per-host inputs: a file whose copy on the host already has
 * the same SHA-256 is not sent again, so a rerun with unchanged inputs sends
 * nothing. What is sent is then hashed on the host and compared, byte for
 * byte in effect, before the run relies on it.
 */
export async function syncInputs(session: HostSession, copies: readonly Copy[], hashes: LocalHashes): Promise<SyncStats> {
  const started = performance.now();
  const trees = await Promise.all(copies.map(localTree));
  const files = trees.flatMap((t) => t.files);
  // Local hashes are computed while the host hashes its copies and while files are sent.
  for (const f of files) void hashes.of(f.local).catch(() => {});
  const remote = await session.hashFiles(files.map((f) => f.remote));
  const changed: LocalFile[] = [];
  for (const f of files) {
    const there = remote?.get(f.remote);
    if (there === undefined || there !== (await hashes.of(f.local))) changed.push(f);
  }
  const queue = new PQueue({ concurrency: PARALLEL_UPLOADS });
  try {
    for (const dir of trees.flatMap((t) => t.dirs)) await session.mkdirp(dir);
    await Promise.all(
      changed.map((f) =>
        // Checked by size here only when the host cannot hash; otherwise by SHA-256 below.
        queue.add(() => uploadFile(session, f.local, f.remote, f.size, f.mode, { checkSize: remote === undefined })),
      ),
    );
  } catch (err) {
    if (err instanceof TransferError) throw err;
    throw new TransferError(`sending inputs to ${session.name} failed: ${errorMessage(err)}`, { cause: err });
  }
  if (changed.length > 0 && remote !== undefined) {
    const written = await session.hashFiles(changed.map((f) => f.remote));
    for (const f of changed) {
      if (written?.get(f.remote) !== (await hashes.of(f.local))) {
        throw new TransferError(`${session.name}:${f.remote} differs from ${f.local} after sending it (SHA-256 mismatch)`);
      }
    }
  }
  return {
    files: files.length,
    sent: changed.length,
    unchanged: files.length - changed.length,
    bytesSent: changed.reduce((n, f) => n + f.size, 0),
    seconds: (performance.now() - started) / 1000,
  };
}
