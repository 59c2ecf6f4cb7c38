import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Endpoint } from '../inventory/types.js';
import {
  checkHostKey,
  fingerprint,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  parseKnownHosts,
  type KnownHostEntry,
} from './knownHosts.js';

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
      case 'unknown':
        if (ep.hostKeyPolicy === 'accept-new') {
          mkdirSync(dirname(ep.knownHosts), { recursive: true });
          appendFileSync(ep.knownHosts, `${name} ${keyTypeOf(key)} ${key.toString('base64')}\n`);
          return { accept: true, warning: `added ${name} (${keyTypeOf(key)} ${fp}) to ${ep.knownHosts}` };
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
