import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
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

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Runs `fn` holding `path.lock` (created exclusively), so that every distray
 * (and every host of one run) adding keys at once adds each exactly once.
 * Synchronous on purpose: ssh2 asks for a host key verdict synchronously.
 */
function withFileLock<T>(path: string, fn: () => T): T {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) unlinkSync(lock);
      } catch {
        // It went away between the two calls: try again.
      }
      if (Date.now() > deadline) throw new Error(`${lock} is held by another process; remove it if no distray is running`);
      sleepSync(20);
    }
  }
  try {
    return fn();
  } finally {
    unlinkSync(lock);
  }
}

/** Appends a key line under the lock: re-read, written to a temporary file, renamed over the original. */
export function addKnownHost(path: string, name: string, key: Buffer): boolean {
  mkdirSync(dirname(path), { recursive: true });
  return withFileLock(path, () => {
    const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (checkHostKey(parseKnownHosts(current), name, key).verdict === 'known') return false;
    const mode = existsSync(path) ? statSync(path).mode & 0o777 : 0o644;
    const tmp = `${path}.distray-${randomBytes(4).toString('hex')}`;
    const sep = current === '' || current.endsWith('\n') ? '' : '\n';
    writeFileSync(tmp, `${current}${sep}${name} ${keyTypeOf(key)} ${key.toString('base64')}\n`, { mode });
    renameSync(tmp, path);
    return true;
  });
}

export type HostKeyDecision =
  | { accept: true; warning?: string }
  | { accept: false; state: 'host key unknown' | 'host key mismatch' | 'host key revoked'; message: string };

/**
 * Decides whether to trust the key a server offers, per the endpoint's
 * hostKeyPolicy. known_hosts files are read fresh for every connection, so
 * keys added by `ssh` (or by another host's accept-new) are seen.
 */
export class HostKeyChecker {
  private readonly entries = (path: string): KnownHostEntry[] =>
    existsSync(path) ? parseKnownHosts(readFileSync(path, 'utf8')) : [];

  preferredTypes(ep: Endpoint): string[] {
    if (ep.hostKeyPolicy === 'off') return [];
    return knownKeyTypes(this.entries(ep.knownHosts), knownHostsName(ep.host, ep.port));
  }

  decide(ep: Endpoint, key: Buffer): HostKeyDecision {
    const name = knownHostsName(ep.host, ep.port);
    const fp = fingerprint(key);
    if (ep.hostKeyPolicy === 'off') {
      return { accept: true, warning: `hostKeyPolicy is off: trusting ${name} (${keyTypeOf(key)} ${fp}) without checking it` };
    }
    const verdict = checkHostKey(this.entries(ep.knownHosts), name, key);
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
        const ca = this.entries(ep.knownHosts).find((e) => e.marker === '@cert-authority' && entryMatches(e.hosts, name));
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
          const added = addKnownHost(ep.knownHosts, name, key);
          return { accept: true, ...(added ? { warning: `added ${name} (${keyTypeOf(key)} ${fp}) to ${ep.knownHosts}` } : {}) };
        }
        if (!existsSync(ep.knownHosts)) {
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
