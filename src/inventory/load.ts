import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { InventoryError } from '../errors.js';
import { parseDuration } from '../plan/duration.js';
import { SshConfigFile } from './sshConfig.js';
import { KNOWN_FIELDS, inventorySchema, type RawHost, type RawInventory, type RawJump } from './schema.js';
import type { Endpoint, HostConfig } from './types.js';

export const DEFAULT_WORKDIR = 'distray-work';
export const DEFAULT_LOCAL_WORKDIR = '.distray/work';
/** OpenSSH's defaults, in its order, less the kinds ssh2 cannot use (security keys, XMSS, DSA). */
const DEFAULT_IDENTITIES = ['~/.ssh/id_rsa', '~/.ssh/id_ecdsa', '~/.ssh/id_ed25519'];

export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return path;
}

/** `[user@]host[:port]`, with `[v6::addr]:port` for IPv6. */
export function parseHostString(text: string): { host: string; user?: string; port?: number } {
  const at = text.lastIndexOf('@');
  const user = at >= 0 ? text.slice(0, at) : undefined;
  let rest = at >= 0 ? text.slice(at + 1) : text;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracketed) {
    rest = bracketed[1]!;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else {
    const m = /^([^:]+):(\d+)$/.exec(rest);
    if (m) {
      rest = m[1]!;
      port = Number(m[2]);
    }
  }
  if (!rest || /[\s/]/.test(rest) || (port !== undefined && (port < 1 || port > 65535)) || user === '') {
    throw new Error(`"${text}" is not [user@]host[:port]`);
  }
  return { host: rest, ...(user ? { user } : {}), ...(port ? { port } : {}) };
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

export function didYouMean(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

class Locator {
  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}
  /** "hosts.yaml:12" for the node at `path`, or its nearest existing parent. */
  at(path: readonly PropertyKey[]): string {
    for (let p = [...path]; ; p = p.slice(0, -1)) {
      const node = (p.length === 0 ? this.doc.contents : this.doc.getIn(p as unknown[], true)) as { range?: [number, number, number] } | null;
      if (node?.range) return `${this.file}:${this.lines.linePos(node.range[0]).line}`;
      if (p.length === 0) return this.file;
    }
  }
}

function describeIssue(issue: z.core.$ZodIssue, locator: Locator): string {
  const path = issue.path.map(String);
  const field = path.length ? path.join('.') : 'the file';
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((k) => `${locator.at([...issue.path, k])}: unknown field "${k}" in ${field}${didYouMean(k, KNOWN_FIELDS)}`)
      .join('\n');
  }
  if (issue.code === 'invalid_union') {
    // A host or jump is "a string or a mapping": report the mapping's problem, which is the informative one.
    const branch = issue.errors.find((errs) => errs.length > 0 && !errs.every((e) => e.code === 'invalid_type' && e.path.length === 0));
    if (branch) return branch.map((e) => describeIssue({ ...e, path: [...issue.path, ...e.path] }, locator)).join('\n');
  }
  return `${locator.at(issue.path)}: ${field}: ${issue.message}`;
}

export interface LoadOptions {
  /** ~/.ssh/config unless the inventory names one; tests point it elsewhere. */
  sshConfigPath?: string | undefined;
}

export function loadInventory(file: string, options: LoadOptions = {}): HostConfig[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InventoryError(`cannot read the inventory ${file}: ${(err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new InventoryError(`${file}${line ? `:${line}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const locator = new Locator(file, doc, lines);
  const parsed = inventorySchema.safeParse(doc.toJS());
  if (!parsed.success) {
    throw new InventoryError(parsed.error.issues.map((i) => describeIssue(i, locator)).join('\n'));
  }
  return resolveInventory(parsed.data, locator, options);
}

function list(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function resolveInventory(raw: RawInventory, locator: Locator, options: LoadOptions): HostConfig[] {
  const sshConfigPath = expandHome(raw.sshConfig ?? options.sshConfigPath ?? '~/.ssh/config');
  let sshConfig: SshConfigFile;
  try {
    sshConfig = new SshConfigFile(sshConfigPath);
  } catch (err) {
    throw new InventoryError(`cannot read the SSH config ${sshConfigPath}: ${(err as Error).message}`);
  }
  const defaults = raw.defaults ?? {};
  const localUser = userInfo().username;

  const checkIdentity = (files: string[], where: string): void => {
    for (const f of files) {
      if (!existsSync(f)) throw new InventoryError(`${where}: identityFile ${f} does not exist; fix the path or remove it`);
    }
  };

  const endpointFrom = (
    target: {
      host: string;
      user?: string | undefined;
      port?: number | undefined;
      identityFile?: string | string[] | undefined;
      identitiesOnly?: boolean | undefined;
      knownHosts?: string | undefined;
      hostKeyPolicy?: Endpoint['hostKeyPolicy'] | undefined;
    },
    inherited: {
      identityFile?: string | string[] | undefined;
      identitiesOnly?: boolean | undefined;
      knownHosts?: string | undefined;
      hostKeyPolicy?: Endpoint['hostKeyPolicy'] | undefined;
      jump?: RawJump | undefined;
    },
    where: string,
    depth: number,
    followProxyJump = true,
  ): Endpoint => {
    if (depth > 8) throw new InventoryError(`${where}: jump hosts nest more than 8 deep; is there a loop in ProxyJump?`);
    const cfg = sshConfig.lookup(target.host, target.user);
    const inventoryIdentities = list(target.identityFile ?? inherited.identityFile).map(expandHome);
    checkIdentity(inventoryIdentities, where);
    const identityFiles = inventoryIdentities.length
      ? inventoryIdentities
      : cfg.IdentityFile?.length
        ? cfg.IdentityFile.map(expandHome)
        : DEFAULT_IDENTITIES.map(expandHome);
    const endpoint: Endpoint = {
      host: cfg.HostName ?? target.host,
      port: target.port ?? (cfg.Port ? Number(cfg.Port) : 22),
      user: target.user ?? cfg.User ?? localUser,
      identityFiles,
      identityFilesRequired: inventoryIdentities.length > 0,
      identitiesOnly: target.identitiesOnly ?? inherited.identitiesOnly ?? cfg.IdentitiesOnly === 'yes',
      knownHosts: expandHome(target.knownHosts ?? inherited.knownHosts ?? '~/.ssh/known_hosts'),
      hostKeyPolicy: target.hostKeyPolicy ?? inherited.hostKeyPolicy ?? 'strict',
    };
    const jumpInherited = {
      identityFile: inherited.identityFile,
      identitiesOnly: inherited.identitiesOnly,
      knownHosts: inherited.knownHosts,
      hostKeyPolicy: inherited.hostKeyPolicy,
    };
    if (inherited.jump !== undefined) {
      const j = typeof inherited.jump === 'string' ? parseJump(inherited.jump, where) : inherited.jump;
      endpoint.jump = endpointFrom(j, jumpInherited, `${where} (jump ${j.host})`, depth + 1);
    } else {
      const proxyJump = followProxyJump ? cfg.ProxyJump : undefined;
      if (proxyJump && proxyJump.toLowerCase() !== 'none') {
        // ProxyJump a,b: reach a, then b through a, then the target through b.
        let chain: Endpoint | undefined;
        for (const hopText of proxyJump.split(',')) {
          const hop = parseJump(hopText.trim(), where);
          const ep = endpointFrom(hop, jumpInherited, `${where} (ProxyJump ${hop.host})`, depth + 1, false);
          chain = { ...ep, jump: chain };
        }
        endpoint.jump = chain;
      }
    }
    return endpoint;
  };

  const parseJump = (text: string, where: string): { host: string; user?: string; port?: number } => {
    try {
      return parseHostString(text);
    } catch (err) {
      throw new InventoryError(`${where}: jump ${(err as Error).message}`);
    }
  };

  const hosts: HostConfig[] = [];
  const seen = new Map<string, string>();
  raw.hosts.forEach((entry: RawHost, i) => {
    const where = locator.at(['hosts', i]);
    const own = typeof entry === 'string' ? parseOwn(entry, where) : entry;
    const isLocal = own.local === true;
    if (!isLocal && !own.host) throw new InventoryError(`${where}: a host needs "host:" (or "local: true")`);
    const name = own.name ?? (isLocal ? 'local' : own.host!);
    const prev = seen.get(name);
    if (prev) throw new InventoryError(`${where}: the host name "${name}" is already used at ${prev}; give one of them a distinct "name:"`);
    seen.set(name, where);
    const merged = { ...defaults, ...own };
    const endpoint = isLocal
      ? { host: 'localhost', port: 0, user: localUser, identityFiles: [], identityFilesRequired: false, identitiesOnly: false, knownHosts: '', hostKeyPolicy: 'strict' as const }
      : endpointFrom(
          {
            host: own.host!,
            user: merged.user,
            port: merged.port,
            identityFile: merged.identityFile,
            identitiesOnly: merged.identitiesOnly,
            knownHosts: merged.knownHosts,
            hostKeyPolicy: merged.hostKeyPolicy,
          },
          {
            identityFile: merged.identityFile,
            identitiesOnly: merged.identitiesOnly,
            knownHosts: merged.knownHosts,
            hostKeyPolicy: merged.hostKeyPolicy,
            jump: merged.jump,
          },
          where,
          0,
        );
    hosts.push({
      ...endpoint,
      name,
      local: isLocal,
      slots: merged.slots ?? 1,
      workdir: normaliseWorkdir(merged.workdir ?? (isLocal ? DEFAULT_LOCAL_WORKDIR : DEFAULT_WORKDIR)),
      password: merged.password ?? false,
      env: { ...(defaults.env ?? {}), ...(typeof entry === 'string' ? {} : (entry.env ?? {})) },
      loginTimeoutMs: loginTimeout(merged.loginTimeout, where),
      source: where,
    });
  });
  return hosts;
}

/** A login that takes longer is taken for a hung one (a ~/.bashrc waiting on something). */
export const DEFAULT_LOGIN_TIMEOUT_MS = 30_000;

function loginTimeout(value: string | number | undefined, where: string): number {
  if (value === undefined) return DEFAULT_LOGIN_TIMEOUT_MS;
  try {
    return parseDuration(String(value), 'loginTimeout');
  } catch (err) {
    throw new InventoryError(`${where}: ${(err as Error).message}`);
  }
}

function parseOwn(text: string, where: string): { host: string; user?: string; port?: number; name?: undefined; local?: undefined } {
  try {
    return parseHostString(text);
  } catch (err) {
    throw new InventoryError(`${where}: ${(err as Error).message}`);
  }
}

/** `~/renders` is the login directory's `renders`: SFTP and the login shell both start there. */
function normaliseWorkdir(workdir: string): string {
  if (workdir === '~') return '.';
  if (workdir.startsWith('~/')) return workdir.slice(2) || '.';
  return workdir;
}
