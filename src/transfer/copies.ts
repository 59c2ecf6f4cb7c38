import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Abortable } from '../abort.js';
import { LinkRefused, LocalFault, TransferError, errorMessage } from '../errors.js';
import { tempNameBeside } from '../fsutil/atomicWrite.js';
import { localFaultOf } from '../fsutil/localWrite.js';
import type { HostShell, OutputState } from '../hostShell/hostShell.js';
import { linkMessage, type HostSession, type RemoteStat } from '../hosts/session.js';
import type { Copy } from '../plan/plan.js';
import { runDir } from '../hostShell/protocol.js';
import { entryNameProblem, placeProblem, visibleName } from './entryNames.js';

export function remoteDirname(p: string): string {
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
  if (!info.isDirectory())
    return { dirs: [], files: [{ local: copy.local, remote: copy.remote, size: info.size, mode: info.mode }] };
  const tree = { dirs: [copy.remote], files: [] as LocalFile[] };
  // Entries are looked at all at once: one by one, 500 stats took 0.1-0.2 s on a busy machine.
  const entries = (await readdir(copy.local, { withFileTypes: true })).filter((e) => e.isDirectory() || e.isFile());
  const subs = await Promise.all(
    entries.map((e) => localTree({ local: join(copy.local, e.name), remote: `${copy.remote}/${e.name}` })),
  );
  for (const sub of subs) {
    tree.dirs.push(...sub.dirs);
    tree.files.push(...sub.files);
  }
  return tree;
}

/**
 * Sends a local file or directory to the host. Each file is written under a
 * temporary name and renamed into place, so a renderer never reads half a file.
 * Returns the bytes sent (the attempt's `bytesIn` in the events and report).
 */
export async function upload(session: HostSession, copy: Copy, options: Abortable = {}): Promise<number> {
  const tree = await localTree(copy);
  try {
    // A directory copy's directories, empty ones too (a file's own is made as it is moved into place).
    if (tree.dirs.length > 0) await makeDirs(session, tree.dirs, options);
    let sent = 0;
    for (const f of tree.files) {
      await uploadFile(session, f, options);
      sent += f.size;
    }
    return sent;
  } catch (err) {
    if (err instanceof TransferError) throw err;
    throw new TransferError(`copying ${copy.local} to ${session.name}:${copy.remote} failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/** Sends one local file to its remote path (see upload); `checkSize` (the default) checks its size there after. */
export async function uploadFile(
  session: HostSession,
  file: LocalFile,
  options: Abortable & { checkSize?: boolean | undefined } = {},
): Promise<void> {
  const { local, remote, size, mode } = file;
  const { signal } = options;
  // Written into the host shell's own directory, then moved into place by the shell, which checks the
  // way there for links as it moves it (a renderer may swap a directory for a link at any moment).
  const shell = await session.shell({ signal });
  const name = `up-${randomBytes(6).toString('hex')}.part`;
  const tmp = `${runDir(shell.token)}/${name}`;
  try {
    await session.putFile(local, tmp, { mode, size, signal });
    if (options.checkSize !== false) {
      // Fast transfers write out of order: check the result before trusting it.
      const written = await session.stat(tmp, { signal });
      if (written?.size !== size)
        throw new TransferError(`${session.name}:${remote}: wrote ${written?.size ?? 'no'} bytes of ${size}`);
    }
    await moveIntoPlace(session, shell, name, remote, { signal });
  } catch (err) {
    await session.unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Moves `name`, a file or directory of the host shell's own run directory,
 * to workdir-relative `path` (making its directories), replacing what is
 * there unless it is a directory; the shell checks the way for links as it
 * moves it.
 */
export async function moveIntoPlace(
  session: HostSession,
  shell: HostShell,
  name: string,
  path: string,
  options: Abortable = {},
): Promise<void> {
  const [moved] = await shell.fileOp('mv', [name, path], options);
  if (moved === 'done') return;
  if (moved === 'through-link') throw new LinkRefused(await linkOnWay(session, path));
  throw new TransferError(
    `${path} on ${session.name}: cannot put it in place (is a directory in the way, or is it not writable?); remove what is in the way there`,
  );
}

/**
 * Why the host shell refused `path`: the first directory on its way that is a
 * symbolic link (or not a directory), named so that the user can remove it.
 * Only a message: the host shell has already refused to act.
 */
async function linkOnWay(session: HostSession, path: string): Promise<string> {
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const info = await session.stat(dir).catch(() => null);
    if (info?.type === 'link') return linkMessage(dir, session.name);
    if (info && info.type !== 'dir')
      return `${dir} on ${session.name} is not a directory, so nothing can be put below it: remove it there`;
  }
  return linkMessage(path, session.name);
}

/** Makes workdir-relative directories (and their parents) on the host, never through a link. */
export async function makeDirs(session: HostSession, dirs: readonly string[], options: Abortable = {}): Promise<void> {
  const list = [...new Set(dirs)].filter((d) => d !== '.' && d !== '');
  if (list.length === 0) return;
  const states = await (await session.shell(options)).fileOp('mkdir', list, options);
  const bad = states.findIndex((st) => st !== 'done');
  if (bad >= 0) {
    const dir = list[bad]!;
    if (states[bad] === 'through-link') throw new LinkRefused(await linkOnWay(session, dir));
    throw new TransferError(
      `${dir} on ${session.name}: cannot make this directory (is a file in the way, or no permission?); fix it there`,
    );
  }
}

/** Local directories made (or found) this run: a run writes thousands of outputs into a handful of them. */
const localDirs = new Set<string>();

async function localDir(dir: string): Promise<void> {
  if (localDirs.has(dir)) return;
  await mkdir(dir, { recursive: true });
  localDirs.add(dir);
}

/** Another attempt of the same task (a speculative copy) put its outputs in place first: this one keeps none. */
export class Superseded extends Error {}

/** Temporary local files and directories being written now: removed even when distray is made to exit at once. */
const partials = new Set<string>();

/** Removes every temporary download in progress (for an exit that cannot wait). */
export function removePartialsNow(): void {
  for (const p of partials) rmSync(p, { recursive: true, force: true });
  partials.clear();
}

/** Whether creating `path` failed because something was there already. */
function foundAt(err: unknown, path: string): boolean {
  const e = err as { code?: unknown; path?: unknown; dest?: unknown } | null;
  return e?.code === 'EEXIST' && (e.path === path || e.dest === path);
}

/** Why an output cannot be copied back, from what is there on the host (never following a link). */
function refusal(state: OutputState, copy: Copy, host: string): string | undefined {
  const what = copy.remote;
  switch (state) {
    case 'missing':
      return `${what} was not produced on ${host}`;
    case 'empty':
      return copy.dir
        ? `${what} on ${host} is an empty file, not a directory (--out ends with /)`
        : `${what} on ${host} is empty`;
    case 'link':
    case 'through-link':
      return linkMessage(what, host);
    case 'special':
      return `${what} on ${host} is not a regular file (a FIFO, socket or device): distray copies back only files and directories`;
    case 'dir':
      return copy.dir
        ? undefined
        : `${what} on ${host} is a directory where a file was expected; to copy a directory back, end --out's paths with / (--out ${what}/=...)`;
    case 'file':
      return copy.dir ? `${what} on ${host} is a file, but --out ends with / (a directory)` : undefined;
  }
}

function stateOf(info: RemoteStat | null): OutputState {
  if (!info) return 'missing';
  switch (info.type) {
    case 'file':
      return info.size > 0 ? 'file' : 'empty';
    case 'dir':
      return 'dir';
    case 'link':
      return 'link';
    case 'other':
      return 'special';
  }
}

/**
 * Fetches a file or directory from the host to a temporary local name, checks
 * it, and only then renames it to its final path. A missing or empty output
 * is an error: the attempt did not produce what was asked of it. So is a
 * link (it could lead anywhere on the host), anything that is not a regular
 * file or directory (a FIFO would block the read for ever), and a directory
 * where a file was expected or the reverse. Returns the bytes fetched (the
 * host's copy stays: see removeRemote).
 */
export async function download(
  session: HostSession,
  copy: Copy,
  options: {
    /** Checks a downloaded file (an image decodes) before it may take its final name: what is wrong with it, or undefined. */
    verify?: ((path: string) => Promise<string | undefined>) | undefined;
    /** What the host shell already saw there (it checked the path for links too), which spares a stat. */
    known?: OutputState | undefined;
    signal?: AbortSignal | undefined;
    /**
     * Asked just before the output takes its final name: false when another
     * attempt of the task (a speculative copy) has the outputs already, and
     * this one must not touch them (it throws Superseded, its download gone).
     */
    claim?: (() => boolean) | undefined;
  } = {},
): Promise<number> {
  const { verify, signal, claim } = options;
  let state = options.known;
  if (state === undefined) {
    state = stateOf(await session.stat(copy.remote, { signal }));
    // Not seen by the host shell: prove its directory is inside the workdir.
    if (state !== 'missing') await session.checkInside(remoteDirname(copy.remote), { signal });
  }
  const refused = refusal(state, copy, session.name);
  if (refused) throw new TransferError(refused);
  const tmp = tempNameBeside(copy.local);
  partials.add(tmp);
  let fetched = 0;
  try {
    const dir = dirname(copy.local);
    await localDir(dir);
    if (copy.dir) fetched = await downloadDir(session, copy.remote, tmp, signal);
    else {
      const fetch = (): Promise<number> => session.fetchFile(copy.remote, tmp, { signal });
      const got = await fetch().catch(async (err: unknown) => {
        // The directory was made once this run; if it has gone since (tidied away mid-run), it is made again.
        if (
          signal?.aborted ||
          (await stat(dir).then(
            (s) => s.isDirectory(),
            () => false,
          ))
        )
          throw err;
        localDirs.delete(dir);
        await localDir(dir);
        return fetch();
      });
      if (got === 0) throw new TransferError(`${copy.remote} on ${session.name} is empty`);
      fetched = got;
    }
    const problem = verify && !copy.dir ? await verify(tmp) : undefined;
    if (problem !== undefined) throw new TransferError(`${copy.remote} from ${session.name} ${problem}`);
    const here = await lstat(copy.local).catch(() => undefined);
    if (claim && !claim()) throw new Superseded(`${copy.local}: another copy of the task got there first`);
    if (copy.dir) await rm(copy.local, { recursive: true, force: true });
    else if (here?.isDirectory())
      throw new TransferError(
        `${copy.local} is a directory here, where ${copy.remote} from ${session.name} should go: remove it`,
      );
    await rename(tmp, copy.local);
  } catch (err) {
    // Something already at the temporary name (it is created new, never opened) is not this download's to remove.
    if (!foundAt(err, tmp)) await rm(tmp, { recursive: true, force: true });
    if (err instanceof TransferError || err instanceof Superseded || err instanceof LocalFault) throw err;
    // What the host sent arrives as a TransferError: a system error here is this machine's (its disk full, read-only).
    throw (
      localFaultOf(err, copy.local, { what: 'the output', option: '--out' }) ??
      new TransferError(`copying ${session.name}:${copy.remote} to ${copy.local} failed: ${errorMessage(err)}`, {
        cause: err,
      })
    );
  } finally {
    partials.delete(tmp);
  }
  return fetched;
}

/**
 * Refuses a listing of `remote` that holds a name that is not a plain name
 * (see entryNames.ts), or that would be written outside `local`, or the same
 * name twice: a host's SFTP server may answer with anything.
 */
function checkListing(
  session: HostSession,
  remote: string,
  local: string,
  entries: ReadonlyArray<{ name: string }>,
): void {
  const seen = new Set<string>();
  for (const { name } of entries) {
    const inside = dirname(resolve(local, name)) === resolve(local);
    const misplaced = placeProblem(name) ?? (inside ? undefined : 'a name that leads outside the output');
    const problem = misplaced ?? entryNameProblem(name);
    const shown = `${remote}/ on ${session.name} lists an entry named ${visibleName(name)}`;
    if (problem !== undefined) {
      const fix = misplaced
        ? `no directory can hold such an entry: ${session.name}'s SFTP server is not answering truthfully, check it`
        : 'rename it there, or have the renderer name its files without control characters';
      throw new TransferError(`${shown}: ${problem}; nothing of this output was copied back; ${fix}`);
    }
    if (seen.has(name))
      throw new TransferError(
        `${shown} twice; nothing of this output was copied back: ${session.name}'s SFTP server is not answering truthfully, check it`,
      );
    seen.add(name);
  }
}

/**
 * A directory's files and directories, every other kind of entry refused:
 * checked before anything is fetched. `local` is made here, and must not
 * exist: every directory and file below it is new, made by distray, so
 * nothing already there is written through.
 */
async function downloadDir(
  session: HostSession,
  remote: string,
  local: string,
  signal: AbortSignal | undefined,
): Promise<number> {
  await mkdir(local);
  let fetched = 0;
  const entries = await session.readdir(remote, { signal });
  checkListing(session, remote, local, entries);
  for (const entry of entries) {
    if (signal?.aborted) throw new TransferError(`${session.name}: the transfer was stopped`, { cause: signal.reason });
    const r = `${remote}/${entry.name}`;
    if (entry.type === 'dir') fetched += await downloadDir(session, r, join(local, entry.name), signal);
    else if (entry.type === 'file') fetched += await session.fetchFile(r, join(local, entry.name), { signal });
    else {
      const refused = refusal(entry.type === 'link' ? 'link' : 'special', { local, remote: r }, session.name);
      throw new TransferError(refused!);
    }
  }
  return fetched;
}

/**
 * Removes remote files or directory trees (workdir-relative) where they
 * exist, all in one round trip. The host shell does it, checking the way to
 * each for links at that moment (see HostShell.fileOp): a link is removed,
 * never followed, wherever it is on the way. Fails naming the first path
 * not removed.
 */
export async function removeRemote(
  session: HostSession,
  paths: string | readonly string[],
  options: Abortable = {},
): Promise<void> {
  const list = typeof paths === 'string' ? [paths] : paths;
  if (list.length === 0) return;
  const states = await (await session.shell(options)).fileOp('rm', list, options);
  const bad = states.findIndex((st) => st !== 'done');
  if (bad < 0) return;
  const path = list[bad]!;
  if (states[bad] === 'through-link')
    throw new LinkRefused(`${path} was not removed: ${await linkOnWay(session, path)}`);
  throw new TransferError(`${path} on ${session.name} could not be removed (no permission?); remove it there`);
}
