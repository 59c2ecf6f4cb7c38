import { readdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/**
 * Whether local files exist, from one listing per directory: checking a
 * million outputs on a first run costs a few listings, not a million stats.
 * A directory that cannot be listed has nothing in it, as far as a rerun
 * is concerned: its tasks are rendered.
 */
export class DirectoryListings {
  private readonly listings = new Map<string, ReadonlySet<string> | Promise<ReadonlySet<string>>>();

  async has(path: string): Promise<boolean> {
    const dir = dirname(path);
    let names = this.listings.get(dir);
    if (names === undefined) {
      const listing = readdir(dir).then(
        (entries): ReadonlySet<string> => new Set(entries),
        (): ReadonlySet<string> => new Set(),
      );
      this.listings.set(dir, listing);
      names = await listing;
      this.listings.set(dir, names);
    } else if (names instanceof Promise) {
      names = await names;
    }
    return names.has(basename(path));
  }
}
