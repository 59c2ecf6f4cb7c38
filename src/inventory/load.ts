import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { InventoryError } from '../errors.js';
import { parseDuration } from '../text/duration.js';
import { levenshtein } from '../text/closest.js';
import { SshConfigFile } from './sshConfig.js';
import { NotRegular, readRegularFile, readRegularFileSync } from '../regularFile.js';
import {
  DEFAULTS_FIELDS,
  HOST_FIELDS,
  JUMP_FIELDS,
  TOP_FIELDS,
  inventorySchema,
  type RawHost,
  type RawInventory,
  type RawJump,
} from './schema.js';
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

/** The closest candidate, never the word itself: suggesting back what was typed helps nobody. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === word) continue;
    const dist = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3))
    ? ` (did you mean "${best}"?)`
    : '';
}

class Locator {
  constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** "hosts.yaml:12" for the key (or list item) at `path`, or its nearest existing parent. */
  at(path: readonly PropertyKey[]): string {
    for (let p = [...path]; ; p = p.slice(0, -1)) {
      const line = this.line(p);
      if (line !== undefined) return `${this.file}:${line}`;
      if (p.length === 0) return this.file;
    }
  }

  /** The line of a mapping's key rather than of its value, which may start on the next line. */
  private line(path: readonly PropertyKey[]): number | undefined {
    const parent: unknown = path.length <= 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1) as unknown[], true);
    const last = path.at(-1);
    let node: unknown = parent;
    if (path.length > 0) {
      if (isMap(parent))
        node = parent.items.find((pair) => (isScalar(pair.key) ? pair.key.value : pair.key) === last)?.key;
      else if (isSeq(parent) && typeof last === 'number') node = parent.items[last];
      else node = undefined;
    }
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    return range ? this.lines.linePos(range[0]).line : undefined;
  }
}

const LEVELS: ReadonlyArray<{ fields: readonly string[]; where: string }> = [
  { fields: TOP_FIELDS, where: 'at the top level of the file' },
  { fields: DEFAULTS_FIELDS, where: 'under "defaults:"' },
  { fields: HOST_FIELDS, where: 'in a host entry under "hosts:"' },
  { fields: JUMP_FIELDS, where: 'in a "jump:" mapping' },
];

/** Which level of the file a schema path is in, for the fields known there. */
function levelOf(path: readonly PropertyKey[]): (typeof LEVELS)[number] {
  if (path.at(-1) === 'jump') return LEVELS[3]!;
  if (path[0] === 'hosts') return LEVELS[2]!;
  if (path[0] === 'defaults') return LEVELS[1]!;
  return LEVELS[0]!;
}

/** "host 2", "host 2's jump", "defaults", "the file": how a user finds the place. */
function subjectOf(path: readonly PropertyKey[]): string {
  if (path[0] === 'hosts' && typeof path[1] === 'number') {
    return `host ${path[1] + 1}${path.includes('jump') ? "'s jump" : ''}`;
  }
  if (path[0] === 'defaults') return path.includes('jump') ? "defaults' jump" : 'defaults';
  return 'the file';
}

function unknownField(key: string, path: readonly PropertyKey[], locator: Locator): string {
  const level = levelOf(path);
  const elsewhere = LEVELS.filter((l) => l !== level && l.fields.includes(key)).map((l) => l.where);
  const belongs = elsewhere.length ? `; "${key}:" belongs ${elsewhere.join(' or ')}` : '';
  const of =
    path[0] === 'hosts' && typeof path[1] === 'number'
      ? ` (host ${path[1] + 1})`
      : level === LEVELS[3]
        ? ' (under "defaults:")'
        : '';
  return `${locator.at([...path, key])}: unknown field "${key}" ${level.where}${of}${didYouMean(key, level.fields)}${belongs}`;
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'nothing';
  if (typeof value === 'object') return 'a mapping';
  const text: string | undefined = JSON.stringify(value);
  return text ?? 'nothing';
}

const TYPE_NAMES: Record<string, string> = {
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

/** What the field should hold, in words rather than the validator's. */
function problemOf(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is missing';
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${show(value)}`;
    case 'too_small':
      if (issue.origin === 'number') return `must be at least ${String(issue.minimum)}, got ${show(value)}`;
      if (issue.origin === 'string') return 'must not be empty';
      return issue.message.startsWith('Too small') ? `needs at least ${String(issue.minimum)} entries` : issue.message;
    case 'too_big':
      return issue.origin === 'number' ? `must be at most ${String(issue.maximum)}, got ${show(value)}` : issue.message;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}, got ${show(value)}`;
    default:
      return issue.message;
  }
}

function describeIssue(issue: z.core.$ZodIssue, locator: Locator, data: unknown): string {
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => unknownField(k, issue.path, locator)).join('\n');
  if (issue.code === 'invalid_union') {
    // A host or jump is "a string or a mapping": report the mapping's problem, which is the informative one.
    const branch = issue.errors.find(
      (errs) => errs.length > 0 && !errs.every((e) => e.code === 'invalid_type' && e.path.length === 0),
    );
    if (branch)
      return branch.map((e) => describeIssue({ ...e, path: [...issue.path, ...e.path] }, locator, data)).join('\n');
    return `${locator.at(issue.path)}: ${subjectOf(issue.path)} must be "[user@]host[:port]" or a mapping with "host:", got ${show(valueAt(data, issue.path))}`;
  }
  const path = issue.path;
  if (path.length === 0) return `${locator.file}: the file must be a mapping with a "hosts:" list, got ${show(data)}`;
  if (path.length === 1 && path[0] === 'hosts' && valueAt(data, path) === undefined) {
    return `${locator.file}: there is no "hosts:" list; add one with at least one host (see hosts.example.yaml)`;
  }
  const field = path
    .filter((k) => typeof k === 'string' && k !== 'hosts' && k !== 'defaults' && k !== 'jump')
    .map(String)
    .join('.');
  const subject = subjectOf(path);
  const what = field ? `${subject}: ${field}` : subject;
  return `${locator.at(path)}: ${what} ${problemOf(issue, valueAt(data, path))}`;
}

/** "file:3:8: invalid YAML: ..." then the line itself and a caret under the column. */
function yamlError(
  file: string,
  text: string,
  e: { message: string; linePos?: [{ line: number; col: number }, ...unknown[]] },
): string {
  const headline = (e.message.split('\n')[0] ?? '')
    .replace(/\s*at line \d+, column \d+:?\s*$/, '')
    .replace(/:\s*$/, '');
  const pos = e.linePos?.[0];
  if (!pos) return `${file}: invalid YAML: ${headline}`;
  const source = (text.split(/\r?\n/)[pos.line - 1] ?? '').replace(/\t/g, ' ');
  return `${file}:${pos.line}:${pos.col}: invalid YAML: ${headline}\n  ${source}\n  ${' '.repeat(Math.max(0, pos.col - 1))}^`;
}

export interface LoadOptions {
  /** ~/.ssh/config unless the inventory names one; tests point it elsewhere. */
  sshConfigPath?: string | undefined;
}

function unreadable(file: string, err: unknown): InventoryError {
  if (err instanceof NotRegular)
    return new InventoryError(`the inventory ${err.message}; name the inventory's YAML file itself`);
  return new InventoryError(`cannot read the inventory ${file}: ${(err as Error).message}`);
}

/** Reads and checks the inventory file (a regular file: see readRegularFile). */
export function loadInventory(file: string, options: LoadOptions = {}): HostConfig[] {
  let text: string;
  try {
    text = readRegularFileSync(file);
  } catch (err) {
    throw unreadable(file, err);
  }
  return parseInventory(file, text, options);
}

/** The same, reading without blocking the event loop: for a run, which has hosts to look after meanwhile. */
export async function loadInventoryAsync(file: string, options: LoadOptions = {}): Promise<HostConfig[]> {
  let text: string;
  try {
    text = await readRegularFile(file);
  } catch (err) {
    throw unreadable(file, err);
  }
  return parseInventory(file, text, options);
}

/** The hosts of an inventory file's text (`file` names it in messages). */
export function parseInventory(file: string, text: string, options: LoadOptions = {}): HostConfig[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new InventoryError(yamlError(file, text, doc.errors[0]!));
  const locator = new Locator(file, doc, lines);
  const data: unknown = doc.toJS();
  const parsed = inventorySchema.safeParse(data);
  if (!parsed.success) {
    // An unknown field first: it is usually the cause of what follows ("host:" typed, so "hosts:" is missing).
    const issues = [...parsed.error.issues].sort(
      (a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'),
    );
    throw new InventoryError(issues.map((i) => describeIssue(i, locator, data)).join('\n'));
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
      if (!existsSync(f))
        throw new InventoryError(`${where}: identityFile ${f} does not exist; fix the path or remove it`);
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
    if (depth > 8)
      throw new InventoryError(`${where}: jump hosts nest more than 8 deep; is there a loop in ProxyJump?`);
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
      const j =
        typeof inherited.jump === 'string' ? parseJump(inherited.jump, where) : withHostString(inherited.jump, where);
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

  const owns = raw.hosts.map((entry: RawHost, i) => {
    const where = locator.at(['hosts', i]);
    const own = typeof entry === 'string' ? parseOwn(entry, where) : withHostString(entry, where);
    if (own.local !== true && !own.host) throw new InventoryError(`${where}: a host needs "host:" (or "local: true")`);
    return { entry, own, where };
  });
  const names = defaultNames(
    owns.map(({ own }) => ({ ...own, user: own.user ?? defaults.user, port: own.port ?? defaults.port })),
  );

  const hosts: HostConfig[] = [];
  const seen = new Map<string, string>();
  owns.forEach(({ entry, own, where }, i) => {
    const isLocal = own.local === true;
    const name = names[i]!;
    const prev = seen.get(name);
    if (prev)
      throw new InventoryError(
        `${where}: the host name "${name}" is already used at ${prev}; give one of them a distinct "name:"`,
      );
    seen.set(name, where);
    const merged = { ...defaults, ...own };
    const endpoint = isLocal
      ? {
          host: 'localhost',
          port: 0,
          user: localUser,
          identityFiles: [],
          identityFilesRequired: false,
          identitiesOnly: false,
          knownHosts: '',
          hostKeyPolicy: 'strict' as const,
        }
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

/**
 * A host's name when it has no `name:`: the host itself, or `host:port` when
 * several entries share the host (a farm of sshd ports on one machine), and
 * `user@host:port` when even that repeats.
 */
function defaultNames(
  owns: ReadonlyArray<{
    host?: string | undefined;
    user?: string | undefined;
    port?: number | undefined;
    name?: string | undefined;
    local?: boolean | undefined;
  }>,
): string[] {
  const count = (key: (o: (typeof owns)[number]) => string): Map<string, number> => {
    const m = new Map<string, number>();
    for (const o of owns) if (o.name === undefined && o.local !== true) m.set(key(o), (m.get(key(o)) ?? 0) + 1);
    return m;
  };
  const hostPort = (o: (typeof owns)[number]): string => `${o.host!}:${o.port ?? 22}`;
  const byHost = count((o) => o.host!);
  const byHostPort = count(hostPort);
  return owns.map((o) => {
    if (o.name !== undefined) return o.name;
    if (o.local === true) return 'local';
    if ((byHost.get(o.host!) ?? 0) < 2) return o.host!;
    if ((byHostPort.get(hostPort(o)) ?? 0) < 2) return hostPort(o);
    // The same host, port and user twice is a real duplicate: the error names it as written.
    return o.user === undefined ? o.host! : `${o.user}@${hostPort(o)}`;
  });
}

/** `host: user@h:port` in a mapping means what the plain string does; a field written twice must agree. */
function withHostString<T extends { host?: string | undefined; user?: string | undefined; port?: number | undefined }>(
  entry: T,
  where: string,
): T {
  if (entry.host === undefined || !/[@:]/.test(entry.host)) return entry;
  let parsed: { host: string; user?: string; port?: number };
  try {
    parsed = parseHostString(entry.host);
  } catch (err) {
    throw new InventoryError(`${where}: host: ${(err as Error).message}`);
  }
  if (parsed.user !== undefined && entry.user !== undefined && parsed.user !== entry.user) {
    throw new InventoryError(
      `${where}: "host: ${entry.host}" names user ${parsed.user} but "user:" says ${entry.user}; keep one`,
    );
  }
  if (parsed.port !== undefined && entry.port !== undefined && parsed.port !== entry.port) {
    throw new InventoryError(
      `${where}: "host: ${entry.host}" names port ${parsed.port} but "port:" says ${entry.port}; keep one`,
    );
  }
  return {
    ...entry,
    host: parsed.host,
    ...(parsed.user !== undefined ? { user: parsed.user } : {}),
    ...(parsed.port !== undefined ? { port: parsed.port } : {}),
  };
}

function parseOwn(
  text: string,
  where: string,
): { host: string; user?: string; port?: number; name?: undefined; local?: undefined } {
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
