import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { TransferError, errorMessage } from '../errors.js';
import type { HostSession } from '../hosts/session.js';
import type { Copy } from '../plan/plan.js';
import { uploadFile } from './copies.js';

/** Files uploaded at once to one host: small files are round-trip bound, large ones are not hurt. */
const PARALLEL_UPLOADS = 64;

interface InputFile {
  local: string;
  remote: string;
  size: number;
  mode: number;
}

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

async function listFiles(copy: Copy): Promise<InputFile[]> {
  let info;
  try {
    info = await stat(copy.local);
  } catch (err) {
    throw new TransferError(`--in ${copy.local}: cannot read it: ${errorMessage(err)}`);
  }
  if (!info.isDirectory()) return [{ local: copy.local, remote: copy.remote, size: info.size, mode: info.mode }];
  const files: InputFile[] = [];
  for (const entry of await readdir(copy.local, { withFileTypes: true })) {
    const sub = { local: join(copy.local, entry.name), remote: `${copy.remote}/${entry.name}` };
    if (entry.isDirectory() || entry.isFile()) files.push(...(await listFiles(sub)));
  }
  return files;
}

/**
 * Sends the once-per-host inputs: a file whose copy on the host already has
 * the same SHA-256 is not sent again, so a rerun with unchanged inputs sends
 * nothing. What is sent is then hashed on the host and compared, byte for
 * byte in effect, before the run relies on it.
 */
export async function syncInputs(session: HostSession, copies: readonly Copy[], hashes: LocalHashes): Promise<SyncStats> {
  const started = performance.now();
  const files = (await Promise.all(copies.map(listFiles))).flat();
  // Local hashes are computed while the host hashes its copies and while files are sent.
  for (const f of files) void hashes.of(f.local).catch(() => {});
  const remote = await session.hashFiles(files.map((f) => f.remote));
  const changed: InputFile[] = [];
  for (const f of files) {
    const there = remote?.get(f.remote);
    if (there === undefined || there !== (await hashes.of(f.local))) changed.push(f);
  }
  const queue = new PQueue({ concurrency: PARALLEL_UPLOADS });
  const dirs = new Map<string, Promise<void>>();
  const mkdirOnce = (dir: string): Promise<void> => {
    let made = dirs.get(dir);
    if (!made) dirs.set(dir, (made = session.mkdirp(dir)));
    return made;
  };
  try {
    await Promise.all(
      changed.map((f) =>
        queue.add(async () => {
          const dir = f.remote.includes('/') ? f.remote.slice(0, f.remote.lastIndexOf('/')) : '';
          if (dir) await mkdirOnce(dir);
          // Checked by size here only when the host cannot hash; otherwise by SHA-256 below.
          await uploadFile(session, f.local, f.remote, f.size, f.mode, { mkdir: false, checkSize: remote === undefined });
        }),
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
