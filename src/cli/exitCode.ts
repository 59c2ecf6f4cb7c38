import { DistrayError } from '../errors.js';

/** The one place errors become exit statuses (see the contract). */
export function exitCodeFor(err: unknown): number {
  if (err instanceof DistrayError && (err.code === 'USAGE' || err.code === 'INVENTORY')) return 2;
  return 1;
}
