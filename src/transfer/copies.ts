import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { TransferError, errorMessage } from '../errors.js';
import type { OutputState } from '../hosts/hostShell.js';
import type { HostSession } from '../hosts/session.js';
import type { Copy } from '../plan/plan.js';

function tempName(path: string): string {
  const dir = dirname(path);
  const tmp = `.${basename(path)}.distray-${randomBytes(4).toString('hex')}.part`;
  return dir === '.' ? tmp : join(dir, tmp);
}

function remoteDirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : p.slice(0, i);
}

/** A local file of an --in copy, with where it goes on the host. */
export interface LocalFile {
  local: string;
  remote: string;
  size: number;
  mode: number;
}

/** Everything an --in copy holds: its directories (empty ones too) and its files, with their remote paths. */
export async function localTree(copy: Copy): Promise<{ dirs: string[]; files: LocalFile[] }> {
  let info;
  try {
    info = await stat(copy.local);
  } catch (err) {
    throw new TransferError(`--in ${copy.local}: cannot read it: ${errorMessage(err)}`);
  }
  if (!info.isDirectory()) return { dirs: [], files: [{ local: copy.local, remote: copy.remote, size: info.size, mode: info.mode }] };
  const tree = { dirs: [copy.remote], files: [] as LocalFile[] };
  // Entries are looked at all at once: one by one, 500 stats took 0.1-0.2 s on a busy machine.
  const entries = (await readdir(copy.local, { withFileTypes: true })).filter((e) => e.isDirectory() || e.isFile());
  const subs = await Promise.all(entries.map((e) => localTree({ local: join(copy.local, e.name), remote: `${copy.remote}/${e.name}` })));
  for (const sub of subs) {
    tree.dirs.push(...sub.dirs);
    tree.files.push(...sub.files);
  }
  return tree;
}

/**
 * Sends a local file or directory to the host. Each file is written under a
 * temporary name and renamed into place, so a renderer never reads half a file.
 */
export async function upload(session: HostSession, copy: Copy): Promise<void> {
  const tree = await localTree(copy);
  try {
    for (const dir of tree.dirs) await session.mkdirp(dir);
    for (const f of tree.files) await uploadFile(session, f.local, f.remote, f.size, f.mode);
  } catch (err) {
    if (err instanceof TransferError) throw err;
    throw new TransferError(`copying ${copy.local} to ${session.name}:${copy.remote} failed: ${errorMessage(err)}`, { cause: err });
  }
}

export async function uploadFile(
  session: HostSession,
  local: string,
  remote: string,
  size: number,
  mode: number,
  options: { checkSize: boolean } = { checkSize: true },
): Promise<void> {
  const dir = remoteDirname(remote);
  if (dir !== '.') await session.mkdirp(dir);
  const tmp = tempName(remote);
  await session.putFile(local, tmp, mode, size);
  if (options.checkSize) {
    // Fast transfers write out of order: check the result before trusting it.
    const written = await session.stat(tmp);
    if (written?.size !== size) {
      await session.unlink(tmp).catch(() => {});
      throw new TransferError(`${session.name}:${remote}: wrote ${written?.size ?? 'no'} bytes of ${size}`);
    }
  }
  await session.rename(tmp, remote);
}

/** Local directories made (or found) this run: a run writes thousands of outputs into a handful of them. */
const localDirs = new Set<string>();

async function localDir(dir: string): Promise<void> {
  if (localDirs.has(dir)) return;
  await mkdir(dir, { recursive: true });
  localDirs.add(dir);
}

/**
 * Fetches a file or directory from the host to a temporary local name, checks
 * it, and only then renames it to its final path. A missing or empty output
 * is an error: the attempt did not produce what was asked of it. With
 * `remove`, the host's copy is removed once it has been read (a task's
 * outputs are of no more use there; a failed check renders the task again).
 */
export async function download(
  session: HostSession,
  copy: Copy,
  options: {
    /** Checks a downloaded file (an image decodes) before it may take its final name. */
    verify?: ((path: string) => Promise<boolean>) | undefined;
    /** What the host shell already saw there, which spares a stat. */
    known?: OutputState | undefined;
    remove?: boolean;
  } = {},
): Promise<void> {
  const { verify, known, remove = false } = options;
  if (known === 'missing') throw new TransferError(`${copy.remote} was not produced on ${session.name}`);
  if (known === 'empty') throw new TransferError(`${copy.remote} on ${session.name} is empty`);
  const info = known === 'file' ? { isDirectory: false, size: undefined } : await session.stat(copy.remote);
  if (!info) throw new TransferError(`${copy.remote} was not produced on ${session.name}`);
  if (!info.isDirectory && info.size === 0) throw new TransferError(`${copy.remote} on ${session.name} is empty`);
  const tmp = tempName(copy.local);
  try {
    const dir = dirname(copy.local);
    await localDir(dir);
    if (info.isDirectory) await downloadDir(session, copy.remote, tmp);
    else {
      const fetch = (): Promise<number> => session.fetchFile(copy.remote, tmp, { remove });
      const got = await fetch().catch(async (err: unknown) => {
        // The directory was made once this run; if it has gone since (tidied away mid-run), it is made again.
        if (await stat(dir).then((s) => s.isDirectory(), () => false)) throw err;
        localDirs.delete(dir);
        await localDir(dir);
        return fetch();
      });
      if (got === 0) throw new TransferError(`${copy.remote} on ${session.name} is empty`);
    }
    if (verify && !info.isDirectory && !(await verify(tmp))) {
      throw new TransferError(`${copy.remote} from ${session.name} is not a complete image (it does not decode)`);
    }
    if (info.isDirectory) await rm(copy.local, { recursive: true, force: true });
    await rename(tmp, copy.local);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof TransferError) throw err;
    throw new TransferError(`copying ${session.name}:${copy.remote} to ${copy.local} failed: ${errorMessage(err)}`, { cause: err });
  }
  if (remove && info.isDirectory) await removeRemote(session, copy.remote);
}

async function downloadDir(session: HostSession, remote: string, local: string): Promise<void> {
  await mkdir(local, { recursive: true });
  for (const entry of await session.readdir(remote)) {
    const r = `${remote}/${entry.name}`;
    if (entry.isDirectory) await downloadDir(session, r, join(local, entry.name));
    else await session.fetchFile(r, join(local, entry.name));
  }
}

/** Removes a remote file or directory tree if it exists: a stale output must never pass for a new one. */
export async function removeRemote(session: HostSession, path: string): Promise<void> {
  const info = await session.stat(path);
  if (!info) return;
  if (!info.isDirectory) return session.unlink(path);
  for (const entry of await session.readdir(path)) await removeRemote(session, `${path}/${entry.name}`);
  await session.rmdir(path);
}
