import { UsageError } from '../errors.js';
import { didYouMean } from './load.js';
import type { HostConfig } from './types.js';

/**
 * The hosts `--hosts` picks (all when not given), less those `--exclude`
 * names; a name not in the inventory is an error, except in an inventory
 * re-read during a run (`reread`), where the name may have been removed from
 * the file on purpose: the filter then applies to the hosts that are there.
 */
export function selectHosts(
  hosts: readonly HostConfig[],
  only: readonly string[] | undefined,
  exclude: readonly string[] | undefined,
  options: { reread?: boolean } = {},
): HostConfig[] {
  const known = hosts.map((h) => h.name);
  const check = (option: string, list: readonly string[]): Set<string> => {
    for (const n of list) {
      if (!known.includes(n) && !options.reread)
        throw new UsageError(`${option} ${n}: no host of that name in the inventory${didYouMean(n, known)}`);
    }
    return new Set(list);
  };
  const picked = only === undefined ? undefined : check('--hosts', only);
  const dropped = check('--exclude', exclude ?? []);
  const left = hosts.filter((h) => (picked === undefined || picked.has(h.name)) && !dropped.has(h.name));
  if (left.length === 0) throw new UsageError('--hosts and --exclude leave no host to run on');
  return left;
}
