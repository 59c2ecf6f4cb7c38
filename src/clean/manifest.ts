import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
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

export async function readManifest(path = MANIFEST): Promise<Manifest> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Manifest;
  } catch {
    return {};
  }
}

export async function writeManifest(manifest: Manifest, path = MANIFEST): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.distray-tmp`;
  await writeFile(tmp, JSON.stringify(manifest, null, 1) + '\n');
  await rename(tmp, path);
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

/** Adds what a run is about to make to the manifest, before it connects: a run stopped half-way is cleaned too. */
export async function recordMade(entries: ReadonlyArray<{ host: string; workdir: string; paths: readonly string[] }>, path = MANIFEST): Promise<void> {
  const manifest = await readManifest(path);
  for (const e of entries) {
    const byWorkdir = (manifest[e.host] ??= {});
    byWorkdir[e.workdir] = [...new Set([...(byWorkdir[e.workdir] ?? []), ...e.paths])].sort();
  }
  await writeManifest(manifest, path);
}
