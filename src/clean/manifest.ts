import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
    for (const [workdir, paths] of Object.entries(byWorkdir)) mine[workdir] = [...new Set([...(mine[workdir] ?? []), ...paths])].sort();
  }
}

/** The run records each manifest was read from: writing it back folds in those, and only those. */
const consumed = new WeakMap<Manifest, string[]>();

/** The manifest: the file `clean` last wrote, with every run's own record since. */
export async function readManifest(path = MANIFEST): Promise<Manifest> {
  const manifest: Manifest = {};
  const parse = async (file: string): Promise<void> => {
    try {
      merge(manifest, JSON.parse(await readFile(file, 'utf8')) as Manifest);
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

async function writeAtomically(file: string, manifest: Manifest): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.distray-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(manifest, null, 1) + '\n');
  await rename(tmp, file);
}

/** Replaces the manifest (after `clean`): the run records it was read from are folded into it; later ones stay. */
export async function writeManifest(manifest: Manifest, path = MANIFEST): Promise<void> {
  await writeAtomically(path, manifest);
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
  const sample = (host: string): string => (first ? JSON.stringify([plan.taskIns(first, host), plan.taskOuts(first, host)]) : '');
  const shared = hosts[0] === undefined ? [] : perTask(hosts[0]);
  const made = new Map<string, string[]>();
  for (const host of hosts) {
    const tasks = host === hosts[0] || sample(host) === sample(hosts[0]!) ? shared : perTask(host);
    made.set(host, [...new Set([...plan.hostIns(host).map((c) => c.remote), ...plan.hostOuts(host).map((c) => c.remote), ...tasks])]);
  }
  return made;
}

/** Records what a run is about to make, before it connects: a run stopped half-way is cleaned too. */
export async function recordMade(entries: ReadonlyArray<{ host: string; workdir: string; paths: readonly string[] }>, path = MANIFEST): Promise<void> {
  const manifest: Manifest = {};
  for (const e of entries) merge(manifest, { [e.host]: { [e.workdir]: [...e.paths] } });
  await writeAtomically(join(runsDir(path), `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.json`), manifest);
}
