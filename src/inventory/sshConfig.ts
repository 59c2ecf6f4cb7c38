import { existsSync, readdirSync, statSync } from 'node:fs';
import { readRegularFileSync } from '../regularFile.js';
import { homedir, userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import SSHConfig from 'ssh-config';

/** The settings distray takes from an OpenSSH client config, for one host name. */
export interface SshConfigHost {
  HostName?: string;
  User?: string;
  Port?: string;
  IdentityFile?: string[];
  IdentitiesOnly?: string;
  ProxyJump?: string;
}

const MAX_INCLUDE_DEPTH = 16;
const WANTED = new Set(['hostname', 'user', 'port', 'identityfile', 'identitiesonly', 'proxyjump']);

type Value = string | Array<{ val: string }>;
interface Line {
  type: number;
  param?: string;
  value?: Value;
  criteria?: Record<string, string | Array<{ val: string }>>;
  config?: Line[];
}

function values(v: Value | undefined): string[] {
  if (v === undefined) return [];
  return typeof v === 'string' ? v.split(/\s+/).filter(Boolean) : v.map((x) => x.val);
}

function globToRegExp(glob: string, anyChar = '.'): RegExp {
  return new RegExp(
    '^' +
      glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, `${anyChar}*`)
        .replace(/\?/g, anyChar) +
      '$',
    'i',
  );
}

/** OpenSSH pattern lists: comma or space separated, `*` and `?`, a `!` negation vetoes the match. */
export function matchPatternList(patterns: string[], name: string): boolean {
  let matched = false;
  for (const p of patterns.flatMap((x) => x.split(','))) {
    if (!p) continue;
    if (p.startsWith('!')) {
      if (globToRegExp(p.slice(1)).test(name)) return false;
    } else if (globToRegExp(p).test(name)) matched = true;
  }
  return matched;
}

/** Files an Include names: relative to ~/.ssh, a glob in the last component, sorted as OpenSSH does. */
function includedFiles(pattern: string): string[] {
  let path = pattern.startsWith('~/') ? join(homedir(), pattern.slice(2)) : pattern;
  if (!isAbsolute(path)) path = join(homedir(), '.ssh', path);
  const dir = dirname(path);
  const name = basename(path);
  if (!/[*?]/.test(name)) return existsSync(path) ? [path] : [];
  if (!existsSync(dir)) return [];
  const re = globToRegExp(name, '[^/]');
  return readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/**
 * OpenSSH's reading of a client config for one host: the first value of a
 * setting wins (IdentityFile accumulates), Host patterns with `*`, `?` and
 * `!`, `Match host|originalhost|user|localuser|all`, and `Include` followed
 * with globs, an Include inside a block that does not apply being skipped
 * whole. `Match exec` is never run: it does not match.
 * ssh-config parses the lines; its own compute() does not follow Include.
 */
export class SshConfigFile {
  private readonly lines: Line[] | undefined;
  private readonly cache = new Map<string, Line[]>();

  constructor(private readonly path: string) {
    this.lines = existsSync(path) ? this.parse(path) : undefined;
  }

  private parse(path: string): Line[] {
    let lines = this.cache.get(path);
    if (!lines) {
      lines = [...SSHConfig.parse(readRegularFileSync(path))];
      this.cache.set(path, lines);
    }
    return lines;
  }

  lookup(host: string, user?: string): SshConfigHost {
    if (!this.lines) return {};
    const found: Record<string, string | string[]> = {};
    if (user !== undefined) found.user = user;
    const localUser = userInfo().username;

    const criteriaMatch = (criteria: Line['criteria']): boolean => {
      for (const [key, raw] of Object.entries(criteria ?? {})) {
        const arg = values(raw);
        const hostName = (found.hostname as string | undefined)?.replace(/%h/g, host) ?? host;
        switch (key.toLowerCase()) {
          case 'all':
            break;
          case 'host':
            if (!matchPatternList(arg, hostName)) return false;
            break;
          case 'originalhost':
            if (!matchPatternList(arg, host)) return false;
            break;
          case 'user':
            if (!matchPatternList(arg, (found.user as string | undefined) ?? localUser)) return false;
            break;
          case 'localuser':
            if (!matchPatternList(arg, localUser)) return false;
            break;
          case 'final':
            break;
          default:
            // exec (never run), canonical, and anything unknown: no match.
            return false;
        }
      }
      return true;
    };

    const walk = (lines: Line[], active: boolean, neverMatch: boolean, depth: number): void => {
      for (const line of lines) {
        if (line.type !== (SSHConfig.DIRECTIVE as number) || !line.param) continue;
        const param = line.param.toLowerCase();
        if (param === 'host' || param === 'match') {
          const applies =
            !neverMatch &&
            (param === 'host' ? matchPatternList(values(line.value), host) : criteriaMatch(line.criteria));
          walk(line.config ?? [], applies, neverMatch, depth);
          continue;
        }
        if (param === 'include') {
          if (depth >= MAX_INCLUDE_DEPTH)
            throw new Error(`${this.path}: Include nests more than ${MAX_INCLUDE_DEPTH} deep`);
          for (const file of values(line.value).flatMap(includedFiles))
            walk(this.parse(file), active, neverMatch || !active, depth + 1);
          continue;
        }
        if (!active || !WANTED.has(param)) continue;
        const vals = values(line.value);
        if (param === 'identityfile')
          found.identityfile = [...((found.identityfile as string[] | undefined) ?? []), ...vals];
        else if (found[param] === undefined && vals[0] !== undefined) found[param] = vals.join(' ');
      }
    };
    walk(this.lines, true, false, 0);

    const result: SshConfigHost = {};
    const hostName = found.hostname as string | undefined;
    if (hostName !== undefined) result.HostName = hostName.replace(/%h/g, host);
    if (user === undefined && found.user !== undefined) result.User = found.user as string;
    if (found.port !== undefined) result.Port = found.port as string;
    if (found.identityfile !== undefined) result.IdentityFile = found.identityfile as string[];
    if (found.identitiesonly !== undefined) result.IdentitiesOnly = (found.identitiesonly as string).toLowerCase();
    if (found.proxyjump !== undefined) result.ProxyJump = found.proxyjump as string;
    return result;
  }
}
