import type { RunSummary } from '../fold/types.js';

/** Host lines in the final summary: the rest are in the report. */
const MAX_HOST_LINES = 20;

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

const secs = (s: number | null | undefined): string => (s === null || s === undefined ? '-' : `${s.toFixed(1)}s`);

/**
 * The per-host figures at the end of a run: which machine is slow or flaky
 * at a glance, and how far the run was from spreading its work evenly.
 */
export function figureLines(summary: RunSummary): string[] {
  const f = summary.figures;
  if (!f) return [];
  const worked = summary.hosts.filter(
    (h) => h.tasksDone > 0 || h.failures > 0 || (h.lost ?? 0) > 0 || (h.bytesIn ?? 0) > 0 || (h.bytesOut ?? 0) > 0,
  );
  if (worked.length === 0) return [];
  const lines = ['per host: tasks done, failed, mean and median seconds per task, bytes in and out:'];
  const width = Math.max(...worked.slice(0, MAX_HOST_LINES).map((h) => h.name.length));
  for (const h of worked.slice(0, MAX_HOST_LINES)) {
    const lost = h.lost ? `, ${h.lost} lost` : '';
    lines.push(
      `  ${h.name.padEnd(width)}  ${h.tasksDone} done, ${h.failures} failed${lost}, mean ${secs(h.meanSeconds)}, median ${secs(h.medianSeconds)}, ` +
        `in ${formatBytes(h.bytesIn ?? 0)}, out ${formatBytes(h.bytesOut ?? 0)}`,
    );
  }
  if (worked.length > MAX_HOST_LINES)
    lines.push(`  ... and ${worked.length - MAX_HOST_LINES} more hosts (--report FILE has them all)`);
  if (f.makespan !== null && f.ideal !== null) {
    lines.push(
      `makespan ${secs(f.makespan)}, ideal ${secs(f.ideal)} (${secs(f.taskSeconds)} of tasks over ${f.slots} ${f.slots === 1 ? 'slot' : 'slots'})`,
    );
  }
  return lines;
}
