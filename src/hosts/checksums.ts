import { ConnectionError } from '../errors.js';
import type { HashKind } from './session.js';

/** Lines of sha256sum: `HASH  NAME`, or `\\HASH  NAME` with \\\\ and \\n escaped in NAME. */
export function parseChecksums(output: string): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (const line of output.split('\n')) {
    const m = /^(\\?)([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (!m) continue;
    const name = m[1] ? m[3]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)) : m[3]!;
    result.push([name, m[2]!]);
  }
  return result;
}

/**
 * Lines of cksum: `CRC SIZE NAME`, in the order of `names` (the files that
 * exist among them). Read in that order, so a name may hold any character.
 */
export function parseCksums(output: string, names: readonly string[]): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  let at = 0;
  for (const name of names) {
    const m = /^(\d+) (\d+) /.exec(output.slice(at, at + 40));
    if (!m || !output.startsWith(`${name}\n`, at + m[0].length)) continue;
    result.push([name, `${m[1]} ${m[2]}`]);
    at += m[0].length + name.length + 1;
  }
  return result;
}

/**
 * One sha256sum (or shasum -a 256), or one POSIX cksum, for all the regular
 * files among `paths` that exist (a link is not a file here: it is replaced,
 * never followed, when the file is sent), through xargs, run by the host
 * shell (`command`): an exec of its own would start one more login shell.
 * Undefined if the host has no such tool.
 */
export async function hashFiles(
  host: string,
  command: (argv: readonly string[]) => Promise<{ code: number; output: string }>,
  paths: readonly string[],
  kind: HashKind,
): Promise<Map<string, string> | undefined> {
  const hashes = new Map<string, string>();
  const pick =
    kind === 'sha256'
      ? 'if command -v sha256sum >/dev/null 2>&1; then h=sha256sum; elif command -v shasum >/dev/null 2>&1; then h="shasum -a 256"; else exit 3; fi; '
      : 'command -v cksum >/dev/null 2>&1 || exit 3; h=cksum; ';
  const script = pick + 'for f; do [ -f "$f" ] && [ ! -L "$f" ] && printf "%s\\0" "$f"; done | xargs -0 $h --; exit 0';
  // Batches keep each command line well under any ARG_MAX.
  for (let i = 0; i < paths.length; i += 1000) {
    const batch = paths.slice(i, i + 1000);
    const { code, output } = await command(['sh', '-c', script, 'distray-hash', ...batch]);
    if (code === 3) return undefined;
    if (code !== 0)
      throw new ConnectionError(
        'error',
        `${host}: cannot hash files in the workdir (exit ${code}): ${output.trim().slice(-500)}`,
      );
    for (const [name, hash] of kind === 'sha256' ? parseChecksums(output) : parseCksums(output, batch))
      hashes.set(name, hash);
  }
  return hashes;
}
