import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
// Node's own timers, which a test's fake timers (vi.useFakeTimers) do not replace: a deadline runs on real time.
import { clearTimeout, setTimeout } from 'node:timers';

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
 * What `promise` settles to, or a rejection naming `what` was awaited when it
 * has not settled within `ms`. Like `eventually`, `ms` only ends a test that
 * would otherwise hang (until the suite's own limit, with no word of what it
 * waited for): give it enough for a loaded machine at a quarter of its speed.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting, after ${ms} ms, for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long a test waits for something it is sure will happen: a limit for a hang, never a timing claim. */
export const WAIT_MS = 60_000;

/** How long a test waits for a distray run to end (as runCli does). */
export const RUN_MS = 180_000;

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
