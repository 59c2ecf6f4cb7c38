import { exitCode } from '../outcome.js';

/** The exit status for an error that ended a command (see src/outcome.ts, the one place statuses are decided). */
export function exitCodeFor(err: unknown): number {
  return exitCode({ kind: 'error', error: err });
}
