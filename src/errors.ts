/**
 * The few error classes distray raises. Each has a stable `code`; the CLI maps
 * them to exit statuses in exactly one place (src/cli/exitCode.ts).
 * A task failure is not an exception: it is a value in the run's summary.
 */
export type ErrorCode =
  | 'USAGE' // bad command line, frame spec, placeholder or path: exit 2
  | 'INVENTORY' // bad hosts file: exit 2
  | 'CONNECTION' // a host could not be reached or logged into
  | 'TRANSFER' // a copy to or from a host failed
  | 'REMOTE' // the renderer failed
  | 'STITCH' // tiles could not be stitched
  | 'LOCAL'; // the controller could not write a local file: exit 4, no host is blamed

export class DistrayError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Anything the user must fix before a run can start: exit 2, nothing connects. */
export class UsageError extends DistrayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE', message, options);
  }
}

export class InventoryError extends DistrayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVENTORY', message, options);
  }
}

export type ConnectionFailure =
  | 'unreachable'
  | 'auth failed'
  | 'host key unknown'
  | 'host key mismatch'
  | 'host key revoked'
  | 'timeout'
  | 'lost'
  | 'workdir'
  | 'error';

/**
 * Whether another try can help: `never` for a refusal (a host key, a login,
 * a workdir), `soon` for a handshake the server dropped or reset (as sshd
 * does past MaxStartups), `later` for the rest (a host down or unreachable).
 */
export type Retry = 'never' | 'soon' | 'later';

const REFUSALS: ReadonlySet<ConnectionFailure> = new Set([
  'auth failed',
  'host key unknown',
  'host key mismatch',
  'host key revoked',
  'workdir',
]);

export class ConnectionError extends DistrayError {
  readonly state: ConnectionFailure;
  readonly retry: Retry;
  constructor(state: ConnectionFailure, message: string, options?: { cause?: unknown; retry?: Retry }) {
    super('CONNECTION', message, options);
    this.state = state;
    this.retry = options?.retry ?? (REFUSALS.has(state) ? 'never' : 'later');
  }
}

export class TransferError extends DistrayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRANSFER', message, options);
  }
}

/** A path on a host that is, or goes through, a symbolic link: distray will not use it. */
export class LinkRefused extends TransferError {}

export class StitchError extends DistrayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STITCH', message, options);
  }
}

/**
 * The controller could not write a file of its own on this machine (a log,
 * a fetched output, a report): its disk is full, read-only or not writable
 * there. Not a host's fault: the run stops, and no host is charged for it.
 * `errno` is the system's code (ENOSPC, EDQUOT, EROFS, EACCES, EPERM, EIO).
 */
export class LocalFault extends DistrayError {
  readonly path: string;
  readonly errno: string;
  constructor(path: string, errno: string, message: string, options?: { cause?: unknown }) {
    super('LOCAL', message, options);
    this.path = path;
    this.errno = errno;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
