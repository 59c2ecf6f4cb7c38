import { UsageError } from '../errors.js';
import { didYouMean } from './load.js';
import type { HostConfig } from './types.js';

function names(list: string | undefined): string[] {
  return (list ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

/** The hosts `--hosts` picks (all when not given), less those `--exclude` names; a name not in the inventory is an error. */
export function selectHosts(hosts: readonly HostConfig[], only: string | undefined, exclude: string | undefined): HostConfig[] {
  const known = hosts.map((h) => h.name);
  const check = (option: string, list: string[]): Set<string> => {
    for (const n of list) {
      if (!known.includes(n)) throw new UsageError(`${option} ${n}: no host of that name in the inventory${didYouMean(n, known)}`);
    }
    return new Set(list);
  };
  const picked = only === undefined ? undefined : check('--hosts', names(only));
  const dropped = check('--exclude', names(exclude));
  const left = hosts.filter((h) => (picked === undefined || picked.has(h.name)) && !dropped.has(h.name));
  if (left.length === 0) throw new UsageError('--hosts and --exclude leave no host to run on');
  return left;
}
