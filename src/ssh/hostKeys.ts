import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { readRegularFile } from '../regularFile.js';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomically } from '../fsutil/atomicWrite.js';
import type { Endpoint } from '../inventory/types.js';
import {
  checkHostKey,
  entryMatches,
  fingerprint,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  parseKnownHosts,
  type KnownHostEntry,
} from './knownHosts.js';

const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 30_000;
const LOCK_POLL_MS = 20;

/** A known_hosts file as last read: its text, its entries, and what identifies that version of it. */
interface KnownHostsFile {
  exists: boolean;
  text: string;
  entries: KnownHostEntry[];
  /** ino, size, mtime and ctime (ns): a write by ssh, by ssh-keygen or by another distray changes at least one. */
  version: string;
  mode: number;
}

const MISSING: KnownHostsFile = { exists: false, text: '', entries: [], version: 'missing', mode: 0o644 };

/**
 * known_hosts files, each parsed once and re-read only when it changed
 * (a handshake costs one stat, not a read and a parse), so keys added
 * meanwhile by `ssh` or by another run's accept-new are still seen.
 */
export class KnownHostsCache {
  private readonly files = new Map<string, { version: string; file: Promise<KnownHostsFile> }>();
  /** How many times a file was actually read; tests check that an unchanged file is not. */
  reads = 0;

  async get(path: string): Promise<KnownHostsFile> {
    let version: string;
    let mode: number;
    try {
      const st = await stat(path, { bigint: true });
      version = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      mode = Number(st.mode & 0o777n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.files.delete(path);
      return MISSING;
    }
    const cached = this.files.get(path);
    if (cached?.version === version) return cached.file;
    // One read shared by every handshake that asks while it is under way.
    const entry = { version, file: this.read(path, version, mode) };
    this.files.set(path, entry);
    // A failed read is not kept: the next handshake tries again.
    entry.file.catch(() => this.files.get(path) === entry && this.files.delete(path));
    return entry.file;
  }

  private async read(path: string, version: string, mode: number): Promise<KnownHostsFile> {
    this.reads++;
    let text: string;
    try {
      // Never waiting on a FIFO: a blocked read would keep even the process's exit waiting.
      text = await readRegularFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return MISSING;
      throw err;
    }
    return { exists: true, text, entries: parseKnownHosts(text), version, mode };
  }
}

/** Lock holders in this process, per file: the hosts of one run queue here instead of polling the lock file. */
const localLocks = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` holding `path.lock` (created exclusively), so that every distray
 * (and every host of one run) adding keys at once adds each exactly once.
 * Waiting never blocks the event loop: other hosts' handshakes, keepalives
 * and transfers go on meanwhile.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const before = localLocks.get(path) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(() => withLockFile(path, fn));
  const tail = mine.catch(() => undefined);
  localLocks.set(path, tail);
  try {
    return await mine;
  } finally {
    if (localLocks.get(path) === tail) localLocks.delete(path);
  }
}

async function withLockFile<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await (await open(lock, 'wx')).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - (await stat(lock)).mtimeMs > LOCK_STALE_MS) await unlink(lock);
      } catch {
        // It went away between the two calls: try again.
      }
      if (Date.now() > deadline)
        throw new Error(`${lock} is held by another process; remove it if no distray is running`);
      await sleep(LOCK_POLL_MS);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lock);
  }
}

/** Appends a key line under the lock: re-read if it changed, written to a temporary file, renamed over the original. */
export async function addKnownHost(
  path: string,
  name: string,
  key: Buffer,
  cache = new KnownHostsCache(),
): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  return withFileLock(path, async () => {
    const current = await cache.get(path);
    if (checkHostKey(current.entries, name, key).verdict === 'known') return false;
    const mode = current.exists ? current.mode : 0o644;
    const sep = current.text === '' || current.text.endsWith('\n') ? '' : '\n';
    await writeFileAtomically(path, `${current.text}${sep}${name} ${keyTypeOf(key)} ${key.toString('base64')}\n`, {
      mode,
      fsync: true,
    });
    return true;
  });
}

export type HostKeyDecision =
  | { accept: true; warning?: string }
  | { accept: false; state: 'host key unknown' | 'host key mismatch' | 'host key revoked'; message: string };

/**
 * Decides whether to trust the key a server offers, per the endpoint's
 * hostKeyPolicy. One checker serves a whole run: each known_hosts file is
 * parsed once and re-read only when it changed, so keys added by `ssh` (or
 * by another host's accept-new) are seen.
 */
export class HostKeyChecker {
  constructor(readonly cache = new KnownHostsCache()) {}

  async preferredTypes(ep: Endpoint): Promise<string[]> {
    if (ep.hostKeyPolicy === 'off') return [];
    return knownKeyTypes((await this.cache.get(ep.knownHosts)).entries, knownHostsName(ep.host, ep.port));
  }

  async decide(ep: Endpoint, key: Buffer): Promise<HostKeyDecision> {
    const name = knownHostsName(ep.host, ep.port);
    const fp = fingerprint(key);
    if (ep.hostKeyPolicy === 'off') {
      return {
        accept: true,
        warning: `hostKeyPolicy is off: trusting ${name} (${keyTypeOf(key)} ${fp}) without checking it`,
      };
    }
    const file = await this.cache.get(ep.knownHosts);
    const verdict = checkHostKey(file.entries, name, key);
    switch (verdict.verdict) {
      case 'known':
        return { accept: true };
      case 'revoked':
        return {
          accept: false,
          state: 'host key revoked',
          message: `the host key of ${name} (${fp}) is marked @revoked in ${ep.knownHosts}:${verdict.line}; refusing it`,
        };
      case 'mismatch':
        return {
          accept: false,
          state: 'host key mismatch',
          message:
            `the host key of ${name} has CHANGED: it offered ${keyTypeOf(key)} ${fp}, which differs from ${ep.knownHosts}:${verdict.line}. ` +
            `This could be an attack or a reinstalled host; if you trust the new key, remove the old one with ssh-keygen -R '${name}' -f ${ep.knownHosts}`,
        };
      case 'unknown': {
        const ca = file.entries.find((e) => e.marker === '@cert-authority' && entryMatches(e.hosts, name));
        if (ca) {
          return {
            accept: false,
            state: 'host key unknown',
            message:
              `${ep.knownHosts}:${ca.line} trusts a @cert-authority for ${name}, but distray does not support host certificates and will not trust it silently; ` +
              `add the host's own key (${keyTypeOf(key)} ${fp}) to ${ep.knownHosts}`,
          };
        }
        if (ep.hostKeyPolicy === 'accept-new') {
          const added = await addKnownHost(ep.knownHosts, name, key, this.cache);
          return {
            accept: true,
            ...(added ? { warning: `added ${name} (${keyTypeOf(key)} ${fp}) to ${ep.knownHosts}` } : {}),
          };
        }
        if (!file.exists) {
          // Every host of a run fails alike here: the fix is the path, not each host's key.
          return {
            accept: false,
            state: 'host key unknown',
            message:
              `the known hosts file ${ep.knownHosts} does not exist, so no host key is known (${name} offered ${keyTypeOf(key)} ${fp}). ` +
              `Fix knownHosts: in the inventory, or create the file (ssh-keyscan -p ${ep.port} ${ep.host} >> ${ep.knownHosts}), or set hostKeyPolicy: accept-new`,
          };
        }
        return {
          accept: false,
          state: 'host key unknown',
          message:
            `${name} offered ${keyTypeOf(key)} ${fp}, which is not in ${ep.knownHosts}. ` +
            `Check the fingerprint, then add it (ssh -p ${ep.port} ${ep.user}@${ep.host} once, or ssh-keyscan -p ${ep.port} ${ep.host} >> ${ep.knownHosts}), or set hostKeyPolicy: accept-new`,
        };
      }
    }
  }
}
