import { DistrayError, LocalFault } from './errors.js';

/**
 * How a command ended, and the one function that turns it into an exit
 * status (the contract's table). Every path through the CLI, and the report's
 * exitCode, come from here.
 */
export type Outcome =
  /** Something went wrong before or outside the work itself: a usage or inventory error is 2, anything else 1. */
  | { kind: 'error'; error: unknown }
  /**
   * A run: stopped by a local fault (the controller could not write a file of its own); interrupted; no host was
   * usable for tasks that needed one; some task or frame failed.
   */
  | { kind: 'run'; localFault?: boolean; interrupted: boolean; noHostUsable: boolean; failed: boolean }
  /** check and clean: how many hosts were usable (or cleaned) of how many. */
  | { kind: 'hosts'; usable: number; total: number; interrupted?: boolean };

export const EXIT = { ok: 0, failed: 1, usage: 2, noHost: 3, local: 4, interrupted: 130 } as const;

export function exitCode(o: Outcome): number {
  switch (o.kind) {
    case 'error':
      if (o.error instanceof LocalFault) return EXIT.local;
      return o.error instanceof DistrayError && (o.error.code === 'USAGE' || o.error.code === 'INVENTORY')
        ? EXIT.usage
        : EXIT.failed;
    case 'run':
      // The run was stopped because of it: that, not the stop, is what the status says.
      if (o.localFault === true) return EXIT.local;
      if (o.interrupted) return EXIT.interrupted;
      if (o.noHostUsable) return EXIT.noHost;
      return o.failed ? EXIT.failed : EXIT.ok;
    case 'hosts':
      if (o.interrupted) return EXIT.interrupted;
      if (o.usable === o.total) return EXIT.ok;
      return o.usable === 0 ? EXIT.noHost : EXIT.failed;
  }
}
