import { exitCode } from './outcome.js';
import { runHostScript, type HostScript } from './hosts/hostScript.js';
import { loadInventory } from './inventory/load.js';
import type { HostConfig } from './inventory/types.js';

export interface CheckRow {
  name: string;
  /** ok, unreachable, timeout, auth failed, host key unknown/mismatch/revoked, workdir, exec missing, error */
  state: string;
  cpus?: number;
  memoryBytes?: number;
  diskFreeBytes?: number;
  server?: string;
  /** Where --exec was found, or null when it was not. */
  exec?: string | null;
  message?: string;
}

/** What `check` runs on a host: facts only, plus creating the workdir (the contract says it is created if missing). */
const PROBE = `wd=$1 exe=$2
printf '\\n%s\\n' "$3"
if mkdir -p -- "$wd" 2>/dev/null && [ -d "$wd" ] && [ -w "$wd" ]; then echo "workdir ok"; else echo "workdir bad"; fi
echo "cpus $(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
echo "mem $(awk '/^MemTotal:/ {print $2 * 1024}' /proc/meminfo 2>/dev/null || sysctl -n hw.memsize 2>/dev/null)"
echo "disk $(df -Pk -- "$wd" 2>/dev/null | awk 'NR==2 {print $4 * 1024}')"
if [ -n "$exe" ]; then
  cd -- "$wd" 2>/dev/null
  case $exe in
    */*) if [ -x "$exe" ]; then echo "exec $exe"; else echo "exec -"; fi ;;
    *) if p=$(command -v -- "$exe"); then echo "exec $p"; else echo "exec -"; fi ;;
  esac
fi`;

const PROBE_TIMEOUT_MS = 30_000;

/** Reads what the probe said (its lines after its marker) into `row`; `output` is all the host printed. */
function parseProbe(row: CheckRow, said: string, output: string, host: HostConfig, exec: string | undefined): void {
  const facts = new Map<string, string>();
  for (const line of said.split('\n')) {
    const m = /^(workdir|cpus|mem|disk|exec) (.*)$/.exec(line.trim());
    if (m) facts.set(m[1]!, m[2]!);
  }
  const num = (k: string): number | undefined => {
    const v = Number(facts.get(k));
    return facts.get(k) && Number.isFinite(v) ? v : undefined;
  };
  const cpus = num('cpus');
  const mem = num('mem');
  const disk = num('disk');
  if (cpus !== undefined) row.cpus = cpus;
  if (mem !== undefined) row.memoryBytes = mem;
  if (disk !== undefined) row.diskFreeBytes = disk;
  if (facts.get('workdir') !== 'ok') {
    row.state = 'workdir';
    row.message = `the workdir "${host.workdir}" cannot be created or is not writable${output.trim() && !facts.size ? `: ${output.trim()}` : ''}`;
    return;
  }
  if (exec !== undefined) {
    const where = facts.get('exec');
    row.exec = where && where !== '-' ? where : null;
    if (row.exec === null) {
      row.state = 'exec missing';
      row.message = exec.includes('/')
        ? `${exec} is not an executable file in the workdir ${host.workdir}`
        : `${exec} is not in the PATH of a non-interactive login on ${host.name}; install it or give its full path`;
    }
  }
}

/** Probes every host in parallel (through its jump host) and reports what it found; runs no renderer. */
export async function check(opts: {
  inventory: string;
  exec?: string | undefined;
  sshConfig?: string | undefined;
  signal?: AbortSignal | undefined;
}): Promise<{ rows: CheckRow[]; exitCode: number; warnings: string[] }> {
  const hosts = loadInventory(opts.inventory, { sshConfigPath: opts.sshConfig });
  const warnings: string[] = [];
  const probe: HostScript = {
    script: PROBE,
    name: 'distray-check',
    args: (_, workdir, marker) => [workdir, opts.exec ?? '', marker],
    what: 'the probe',
    deadlineMs: PROBE_TIMEOUT_MS,
  };
  const outcomes = await runHostScript(hosts, probe, { warn: (m) => warnings.push(m), signal: opts.signal });
  const rows = outcomes.map((o): CheckRow => {
    const row: CheckRow = { name: o.host.name, state: 'ok' };
    if (o.kind === 'failed') {
      row.state = o.state;
      row.message = o.message;
    } else parseProbe(row, o.said ?? '', o.output, o.host, opts.exec);
    if (o.server !== undefined) row.server = o.server;
    return row;
  });
  const usable = rows.filter((r) => r.state === 'ok').length;
  return { rows, exitCode: exitCode({ kind: 'hosts', usable: usable, total: rows.length }), warnings };
}

function bytes(n: number | undefined): string {
  if (n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

/** The table `distray check` prints, then one line per problem. */
export function formatCheck(rows: readonly CheckRow[], exec: string | undefined): string {
  const header = [
    'HOST',
    'STATE',
    'CPUS',
    'MEMORY',
    'DISK FREE',
    'SERVER',
    ...(exec !== undefined ? [exec.toUpperCase()] : []),
  ];
  const table = rows.map((r) => [
    r.name,
    r.state,
    r.cpus === undefined ? '-' : String(r.cpus),
    bytes(r.memoryBytes),
    bytes(r.diskFreeBytes),
    r.server ?? '-',
    ...(exec !== undefined ? [r.exec === undefined ? '-' : (r.exec ?? 'not found')] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const problems = rows.filter((r) => r.message).map((r) => `${r.name}: ${r.state}: ${r.message}`);
  return [line(header), ...table.map(line), ...(problems.length ? ['', ...problems] : [])].join('\n');
}
