import { execFileSync } from 'node:child_process';

/** Polls `check` every 100 ms until it holds or `ms` pass; returns whether it held. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/** Processes whose command line starts with `marker`, anywhere on this machine (the test hosts are on loopback). */
export function processesStartingWith(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', `^${marker}`]).toString().trim().split('\n').filter((l) => l && !l.includes('pgrep'));
  } catch {
    return [];
  }
}
