import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import PQueue from 'p-queue';
import { exitCode } from '../outcome.js';
import { ConnectionError, errorMessage } from '../errors.js';
import { loadInventory } from '../inventory/load.js';
import type { HostConfig } from '../inventory/types.js';
import { connectEndpoint, describeEndpoint, type Client, type ConnectContext } from '../ssh/connect.js';
import { execOnce } from '../ssh/exec.js';
import { HostKeyChecker } from '../ssh/hostKeys.js';
import { shellJoin } from '../ssh/quote.js';
import { environmentWithoutSecrets } from '../hosts/localSession.js';
import { readManifest, writeManifest, type Manifest } from './manifest.js';

/**
 * The removal itself, defined both in the script and in the shells `find`
 * starts for the temporary upload names. The way to a path is walked one
 * directory at a time, at the moment of removing it: a component that is a
 * symbolic link (it could lead out of the workdir) or not a directory
 * leaves the path alone, and after each `cd -P` the physical directory must
 * be the workdir's plus the components entered, so a directory swapped for
 * a link between the look and the `cd` is caught. The last name is removed
 * from inside its directory: a link itself is removed as a link (rm does
 * not follow it), its target untouched. Only builtins run per path (no
 * subshell): a run of a million frames records a million paths. Every
 * message is a record ended by a NUL byte, never a line: a file name on the
 * host can hold a newline (never a NUL), and a name is only ever an
 * argument, never read back from a line.
 */
const REMOVE = `say() { printf '%s\\0' "$1"; }
# Enters the directory of workdir-relative $1 (from the workdir), never through a link; fails if it cannot.
enter_dir() {
  ed_rest=$1 ed_at=\${wd_phys%/}
  while :; do
    case $ed_rest in */*) ;; *) return 0 ;; esac
    ed_c=\${ed_rest%%/*} ed_rest=\${ed_rest#*/}
    case $ed_c in ''|.) continue ;; ..) return 1 ;; esac
    [ -L "$ed_c" ] && return 1
    [ -d "$ed_c" ] || return 1
    cd -P -- "$ed_c" 2>/dev/null || return 1
    ed_at=$ed_at/$ed_c
    [ "$PWD" = "$ed_at" ] || return 1
  done
}
gone() {
  case $1 in /*|..|../*|*/..|*/../*|'') return 0 ;; esac
  : "\${wd_phys:=$(pwd -P)}"
  if enter_dir "$1"; then
    g_base=\${1##*/}
    if [ -e "$g_base" ] || [ -L "$g_base" ]; then
      if [ -z "$dry" ] && ! rm -rf -- "$g_base" 2>/dev/null; then say "failed $1"
      else say "remove $1"; fi
    fi
  fi
  cd -P -- "$wd_phys" || exit 1
}`;

/**
 * Runs in the workdir: removes .distray (run directories, leases), distray's
 * temporary upload names, and the paths given. A workdir whose leases are
 * held has a run going: it is left alone. The temporary names are found by
 * `find`, which hands them to a shell as arguments (POSIX `-exec ... {} +`,
 * not `-print0`, which a POSIX host need not have): a name such as
 * `.x.distray-1.part<newline>precious.blend` is one name, removed whole,
 * and never `precious.blend`.
 */
export const CLEAN_SCRIPT = `wd=$1 dry=$2 marker=$3
# What the login printed before this is not the script's.
printf '\\n%s\\n' "$marker"
${REMOVE}
cd -- "$wd" 2>/dev/null || { say noworkdir; exit 0; }
if command -v flock >/dev/null 2>&1; then
  # Every host shell holds .distray/active (shared) for its whole life: a run is going.
  if [ -f .distray/active ] && [ ! -L .distray/active ]; then flock -n -x .distray/active true || { say busy; exit 0; }; fi
  for f in .distray/leases/*.lock; do
    [ -f "$f" ] && [ ! -L "$f" ] || continue
    flock -n "$f" true || { say busy; exit 0; }
  done
fi
gone .distray
# The paths come on stdin, one a line: a run of a million frames has more than a command line holds (a recorded path with a newline is never sent).
while IFS= read -r p; do gone "$p"; done
find . -path ./.distray -prune -o -name '.*.distray-*.part*' -prune -exec sh -c '${REMOVE.replaceAll("'", `'\\''`)}
dry=$1; shift
for p do gone "\${p#./}"; done' distray-clean "$dry" {} + 2>/dev/null
say cleaned`;

const CLEAN_TIMEOUT_MS = 120_000;

export interface CleanRow {
  name: string;
  /** ok, busy (a run is using the workdir), no workdir, or why the host could not be reached. */
  state: string;
  removed: string[];
  message?: string;
}

/** "a/./b/" -> "a/b": a trailing slash would make rm follow a link; ".." or an absolute path is never cleaned. */
function normalise(path: string): string | undefined {
  if (path.startsWith('/')) return undefined;
  // Sent one a line: a name with a newline in it is not cleaned.
  if (path.includes('\n')) return undefined;
  const parts = path.split('/').filter((s) => s !== '' && s !== '.');
  return parts.length === 0 || parts.includes('..') ? undefined : parts.join('/');
}

function parse(row: CleanRow, output: string, marker: string): void {
  // Only what follows the script's marker line: a login's own lines could look like ours.
  const at = output.indexOf(`${marker}\n`);
  // Records end with a NUL; what follows the last one is no record (a script cut short).
  const records =
    at < 0
      ? []
      : output
          .slice(at + marker.length + 1)
          .split('\0')
          .slice(0, -1);
  const named = (kind: string): string[] =>
    records.filter((r) => r.startsWith(`${kind} `)).map((r) => r.slice(kind.length + 1));
  row.removed = named('remove');
  const failed = named('failed');
  if (records.includes('noworkdir')) row.state = 'no workdir';
  else if (records.includes('busy')) {
    row.state = 'busy';
    row.message = 'a run is using this workdir; clean it when the run has ended';
  } else if (failed.length > 0) {
    row.state = 'error';
    row.message = `could not remove ${failed.map(shown).join(', ')}; check their permissions on the host and clean again`;
  } else if (!records.includes('cleaned')) {
    row.state = 'error';
    row.message = output.replaceAll('\0', '\n').trim() || 'the clean-up script did not finish';
  }
}

/** A name from the host as it is, or quoted with escapes when it holds a control character (a newline would read as two names). */
export function shown(name: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(name) ? JSON.stringify(name) : name;
}

function cleanLocal(host: HostConfig, dry: string, marker: string, paths: readonly string[]): Promise<string> {
  return new Promise((done, fail) => {
    // Without distray's secrets: nothing distray starts gets them.
    const child = spawn('sh', ['-c', CLEAN_SCRIPT, 'distray-clean', resolve(host.workdir), dry, marker], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: environmentWithoutSecrets(),
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill(), CLEAN_TIMEOUT_MS);
    child.on('error', (err) => fail(err));
    child.on('close', () => {
      clearTimeout(timer);
      done(output);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(paths.map((p) => `${p}\n`).join(''));
  });
}

async function cleanRemote(
  client: Client,
  host: HostConfig,
  dry: string,
  marker: string,
  paths: readonly string[],
): Promise<string> {
  const command = `exec sh ${shellJoin(['-c', CLEAN_SCRIPT, 'distray-clean', host.workdir, dry, marker])}`;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(
      () => fail(new ConnectionError('timeout', `cleaning did not finish within ${CLEAN_TIMEOUT_MS / 1000} s`)),
      CLEAN_TIMEOUT_MS,
    );
  });
  try {
    return (await Promise.race([execOnce(client, command, paths.map((p) => `${p}\n`).join('')), timeout])).output;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Removes from every host's workdir what distray runs made there: .distray
 * (run directories, leases), temporary upload names, and the inputs and
 * outputs recorded in the local manifest by runs from this directory.
 */
export async function clean(opts: {
  inventory: string;
  dryRun?: boolean;
  sshConfig?: string | undefined;
  manifestPath?: string | undefined;
}): Promise<{ rows: CleanRow[]; exitCode: number; warnings: string[] }> {
  const hosts = loadInventory(opts.inventory, { sshConfigPath: opts.sshConfig });
  const manifest: Manifest = await readManifest(opts.manifestPath);
  const warnings: string[] = [];
  const jumps = new Map<string, Promise<Client>>();
  const ctx: ConnectContext = { hostKeys: new HostKeyChecker(), warn: (m) => warnings.push(m), jumps };
  const queue = new PQueue({ concurrency: 10 });
  const rows = await Promise.all(
    hosts.map((host) =>
      queue.add(async (): Promise<CleanRow> => {
        const row: CleanRow = { name: host.name, state: 'ok', removed: [] };
        const dry = opts.dryRun ? '1' : '';
        const marker = `distray-clean-${randomBytes(8).toString('hex')}`;
        const recorded = manifest[host.name]?.[host.workdir] ?? [];
        // Said rather than dropped in silence: its record goes once the host is clean.
        for (const p of recorded.filter((p) => p.includes('\n'))) {
          warnings.push(
            `${host.name}: ${shown(p)} in ${host.workdir} was not removed: a path with a newline cannot be sent to the host; remove it by hand`,
          );
        }
        const paths = recorded.map(normalise).filter((p) => p !== undefined);
        let client: Client | undefined;
        try {
          if (host.local) parse(row, await cleanLocal(host, dry, marker, paths), marker);
          else {
            client = await connectEndpoint(host, ctx);
            parse(row, await cleanRemote(client, host, dry, marker, paths), marker);
          }
        } catch (err) {
          row.state = err instanceof ConnectionError ? err.state : 'error';
          const message = errorMessage(err);
          row.message = host.jump || !message.includes(host.host) ? `${describeEndpoint(host)}: ${message}` : message;
        } finally {
          client?.end();
        }
        return row;
      }),
    ),
  );
  for (const j of jumps.values()) j.then((c) => c.end()).catch(() => {});
  if (!opts.dryRun) {
    // What was removed need not be removed again; a host that could not be cleaned keeps its record.
    let changed = false;
    for (const row of rows) {
      const host = hosts.find((h) => h.name === row.name)!;
      const byWorkdir = manifest[row.name];
      if ((row.state === 'ok' || row.state === 'no workdir') && byWorkdir?.[host.workdir]) {
        delete byWorkdir[host.workdir];
        if (Object.keys(byWorkdir).length === 0) delete manifest[row.name];
        changed = true;
      }
    }
    if (changed) await writeManifest(manifest, opts.manifestPath);
  }
  const cleaned = rows.filter((r) => r.state === 'ok' || r.state === 'no workdir').length;
  return { rows, exitCode: exitCode({ kind: 'hosts', usable: cleaned, total: rows.length }), warnings };
}

/** One line per host: what was (or, with --dry-run, would be) removed, or why nothing was. */
export function formatClean(rows: readonly CleanRow[], dryRun: boolean): string {
  return rows
    .map((r) => {
      if (r.state === 'ok') {
        if (r.removed.length === 0) return `${r.name}: nothing to remove`;
        return `${r.name}: ${dryRun ? 'would remove' : 'removed'} ${r.removed.length}: ${r.removed.map(shown).join(', ')}`;
      }
      if (r.state === 'no workdir') return `${r.name}: no workdir, nothing to remove`;
      return `${r.name}: ${r.state}${r.message ? `: ${r.message}` : ''}`;
    })
    .join('\n');
}
