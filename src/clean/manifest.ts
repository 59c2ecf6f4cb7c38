import { createHash } from 'node:crypto';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../fsutil/atomicWrite.js';
import type { Plan } from '../plan/plan.js';

/**
 * What runs made in each host's workdir, kept on this machine beside the
 * logs: `distray clean` removes these paths, and only these (with distray's
 * own .distray directory and temporary files), so a renderer's or a user's
 * other files in the workdir are never touched.
 */
export const MANIFEST = join('.distray', 'made.json');

/** host name -> workdir -> paths relative to it. */
export type Manifest = Record<string, Record<string, string[]>>;

/** Where each run records what it made: a file of its own, so runs started at once never race on one file. */
function runsDir(path: string): string {
  return `${path.replace(/\.json$/, '')}.d`;
}

function merge(into: Manifest, from: Manifest): void {
  for (const [host, byWorkdir] of Object.entries(from)) {
    const mine = (into[host] ??= {});
    for (const [workdir, paths] of Object.entries(byWorkdir))
      mine[workdir] = [...new Set([...(mine[workdir] ?? []), ...paths])].sort();
  }
}

/** The run records each manifest was read from: writing it back folds in those, and only those. */
const consumed = new WeakMap<Manifest, string[]>();

/** The manifest: the file `clean` last wrote, with every run's own record since. */
export async function readManifest(path = MANIFEST): Promise<Manifest> {
  const manifest: Manifest = {};
  const parse = async (file: string): Promise<void> => {
    try {
      merge(manifest, expand(JSON.parse(await readFile(file, 'utf8')) as Manifest | RunRecord));
    } catch {
      // Missing, or half-written by a run that was killed: nothing to take from it.
    }
  };
  await parse(path);
  const runs = await readdir(runsDir(path)).catch(() => [] as string[]);
  const files = runs.filter((f) => f.endsWith('.json')).map((f) => join(runsDir(path), f));
  for (const f of files.sort()) await parse(f);
  consumed.set(manifest, files);
  return manifest;
}

/** Replaces the manifest (after `clean`): the run records it was read from are folded into it; later ones stay. */
export async function writeManifest(manifest: Manifest, path = MANIFEST): Promise<void> {
  await writeFileAtomically(path, JSON.stringify(manifest, null, 1) + '\n');
  await Promise.all((consumed.get(manifest) ?? []).map((f) => rm(f, { force: true })));
}

/**
 * Every remote path a run may create on each host: its inputs' destinations,
 * its outputs' sources. The per-task paths are expanded for every task once,
 * and again for another host only when they name the host (%{host}).
 */
export function pathsMade(plan: Plan, hosts: readonly string[]): Map<string, string[]> {
  const perTask = (host: string): string[] => {
    const paths = new Set<string>();
    for (const t of plan.tasks) {
      for (const c of plan.taskIns(t, host)) paths.add(c.remote);
      for (const c of plan.taskOuts(t, host)) paths.add(c.remote);
    }
    return [...paths];
  };
  const first = plan.tasks[0];
  const sample = (host: string): string =>
    first ? JSON.stringify([plan.taskIns(first, host), plan.taskOuts(first, host)]) : '';
  const shared = hosts[0] === undefined ? [] : perTask(hosts[0]);
  const made = new Map<string, string[]>();
  // Hosts whose paths are the same share one list (recordMade writes each distinct list once).
  const lists = new Map<string, string[]>();
  for (const host of hosts) {
    const own = [...plan.hostIns(host).map((c) => c.remote), ...plan.hostOuts(host).map((c) => c.remote)];
    const sameTasks = host === hosts[0] || sample(host) === sample(hosts[0]!);
    const key = sameTasks ? JSON.stringify(own) : undefined;
    let list = key === undefined ? undefined : lists.get(key);
    if (!list) {
      list = [...new Set([...own, ...(sameTasks ? shared : perTask(host))])];
      if (key !== undefined) lists.set(key, list);
    }
    made.set(host, list);
  }
  return made;
}

/**
 * A run's own record: each distinct list of paths once, and per host and
 * workdir the index of its list. Hosts of one run mostly share the same
 * per-task paths: written out per host, a million tasks on 20 hosts made a
 * 360 MB file.
 */
interface RunRecord {
  lists: string[][];
  hosts: Record<string, Record<string, number>>;
}

function expand(record: Manifest | RunRecord): Manifest {
  if (!('lists' in record && Array.isArray(record.lists))) return record as Manifest;
  const r = record as RunRecord;
  const manifest: Manifest = {};
  for (const [host, byWorkdir] of Object.entries(r.hosts)) {
    manifest[host] = {};
    for (const [workdir, i] of Object.entries(byWorkdir)) manifest[host][workdir] = r.lists[i] ?? [];
  }
  return manifest;
}

/**
 * Records what a run is about to make, before it connects: a run stopped
 * half-way is cleaned too. Named by its content, so the same command run
 * again records nothing new.
 */
export async function recordMade(
  entries: ReadonlyArray<{ host: string; workdir: string; paths: readonly string[] }>,
  path = MANIFEST,
): Promise<void> {
  const lists: string[][] = [];
  const index = new Map<readonly string[], number>();
  const record: RunRecord = { lists, hosts: {} };
  for (const e of entries) {
    let i = index.get(e.paths);
    if (i === undefined) {
      i = lists.push([...e.paths]) - 1;
      index.set(e.paths, i);
    }
    (record.hosts[e.host] ??= {})[e.workdir] = i;
  }
  const text = JSON.stringify(record);
  const name = createHash('sha256').update(text).digest('hex').slice(0, 32);
  const file = join(runsDir(path), `${name}.json`);
  await writeFileAtomically(file, text);
}
