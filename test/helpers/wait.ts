import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';

/**
 * Polls `check` every 100 ms until it holds or `ms` pass; returns whether it held.
 * `ms` is a limit for a test that would otherwise hang, not a timing claim:
 * give it enough for a loaded machine at a quarter of its speed.
 */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/**
 * A `sleep SECONDS` command whose command line no other process on this
 * machine has: other checkouts run this suite at the same time, and
 * processesStartingWith sees their renderers too.
 */
export function uniqueSleep(seconds: number): string {
  return `sleep ${seconds}.${randomInt(100_000, 1_000_000)}`;
}

/** Processes whose command line starts with `marker`, anywhere on this machine (the test hosts are on loopback); see uniqueSleep. */
export function processesStartingWith(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', `^${marker}`])
      .toString()
      .trim()
      .split('\n')
      .filter((l) => l && !l.includes('pgrep'));
  } catch {
    return [];
  }
}
