import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const DEFAULT_KEEP_LOGS = 20;

/** The name of a run's log directory: its start time, safe in file names, and sorting as time does. */
export function runLogName(startedAt: Date): string {
  return startedAt.toISOString().replace(/[:.]/g, '-');
}

const RUN_LOG_NAME = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/**
 * Removes the oldest run directories under `base` so that, with the run
 * starting now, `keep` remain. Only directories named as runLogName names
 * them are touched: anything else a user put there stays. `keep` 0 keeps all.
 */
export async function pruneRunLogs(base: string, keep: number): Promise<string[]> {
  if (keep <= 0) return [];
  let entries;
  try {
    entries = await readdir(base, { withFileTypes: true });
  } catch {
    return [];
  }
  const runs = entries
    .filter((e) => e.isDirectory() && RUN_LOG_NAME.test(e.name))
    .map((e) => e.name)
    .sort();
  const old = runs.slice(0, Math.max(0, runs.length - (keep - 1)));
  await Promise.all(old.map((name) => rm(join(base, name), { recursive: true, force: true })));
  return old;
}
