import { exitCode } from '../outcome.js';
import { runHostScript, type HostScript } from '../hosts/hostScript.js';
import { loadInventory } from '../inventory/load.js';
import type { HostConfig } from '../inventory/types.js';
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

/** Reads what the script said (its records after its marker) into `row`; `output` is all the host printed. */
function parse(row: CleanRow, said: string | undefined, output: string): void {
  // Records end with a NUL; what follows the last one is no record (a script cut short).
  const records = said === undefined ? [] : said.split('\0').slice(0, -1);
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
  signal?: AbortSignal | undefined;
}): Promise<{ rows: CleanRow[]; exitCode: number; warnings: string[] }> {
  const hosts = loadInventory(opts.inventory, { sshConfigPath: opts.sshConfig });
  const manifest: Manifest = await readManifest(opts.manifestPath);
  const warnings: string[] = [];
  const dry = opts.dryRun ? '1' : '';
  const recorded = (host: HostConfig): readonly string[] => manifest[host.name]?.[host.workdir] ?? [];
  for (const host of hosts) {
    // Said rather than dropped in silence: its record goes once the host is clean.
    for (const p of recorded(host).filter((p) => p.includes('\n'))) {
      warnings.push(
        `${host.name}: ${shown(p)} in ${host.workdir} was not removed: a path with a newline cannot be sent to the host; remove it by hand`,
      );
    }
  }
  const script: HostScript = {
    script: CLEAN_SCRIPT,
    name: 'distray-clean',
    args: (_, workdir, marker) => [workdir, dry, marker],
    // The paths come on stdin, one a line: a run of a million frames has more than a command line holds.
    input: (host) =>
      recorded(host)
        .map(normalise)
        .filter((p) => p !== undefined)
        .map((p) => `${p}\n`)
        .join(''),
    what: 'cleaning',
    deadlineMs: CLEAN_TIMEOUT_MS,
  };
  const outcomes = await runHostScript(hosts, script, { warn: (m) => warnings.push(m), signal: opts.signal });
  const rows = outcomes.map((o): CleanRow => {
    const row: CleanRow = { name: o.host.name, state: 'ok', removed: [] };
    if (o.kind === 'failed') {
      row.state = o.state;
      row.message = o.message;
    } else parse(row, o.said, o.output);
    return row;
  });
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
