import { pathsMade, recordMade } from '../clean/manifest.js';
import { errorMessage } from '../errors.js';
import { describeDiff, diffInventory } from '../inventory/diff.js';
import { loadInventoryAsync } from '../inventory/load.js';
import { selectHosts } from '../inventory/select.js';
import type { HostConfig } from '../inventory/types.js';
import { InventoryWatcher } from '../inventory/watch.js';
import type { Plan } from '../plan/plan.js';
import type { HostLifecycle } from './hostLifecycle.js';

export interface LiveInventoryOptions {
  file: string;
  sshConfig?: string | undefined;
  /** --hosts and --exclude, applied to every reading. */
  only?: readonly string[] | undefined;
  exclude?: readonly string[] | undefined;
  plan: Plan;
  lifecycle: HostLifecycle;
  note: (text: string) => void;
  debounceMs?: number | undefined;
  /** Notes where the hosts that join will have files (for `distray clean`); the manifest by default. */
  record?: ((entries: Array<{ host: string; workdir: string; paths: string[] }>) => Promise<void>) | undefined;
}

/** A problem is one line on the terminal: the first of several, with a count of the rest. */
function oneLine(message: string): string {
  const lines = message.split('\n').filter((l) => l.trim() !== '');
  return lines.length > 1 ? `${lines[0]} (and ${lines.length - 1} more)` : (lines[0] ?? message);
}

/** What the run's command line cannot work with, whatever the inventory says (prepare() checks the same at the start). */
function planProblem(plan: Plan, hosts: readonly HostConfig[], added: readonly HostConfig[]): string | undefined {
  const shared = plan.sharedRemotePaths();
  const busy = hosts.find((h) => h.slots > 1);
  if (busy && shared.length > 0) {
    return `${shared[0]}: its remote path is the same for every task, so ${busy.name} cannot run ${busy.slots} tasks at once (slots: 1, or put the task's placeholders in the remote path)`;
  }
  const first = plan.tasks[0];
  for (const h of added) {
    try {
      plan.hostIns(h.name);
      plan.hostOuts(h.name);
      if (first) {
        plan.argv(first, h.name);
        plan.taskIns(first, h.name);
        plan.taskOuts(first, h.name);
      }
    } catch (err) {
      return `${h.source}: host ${h.name}: ${errorMessage(err)}`;
    }
  }
  return undefined;
}

/**
 * The inventory during a run: read again when its file changes (or on
 * SIGHUP), and the difference handed to the host lifecycle. A reading that
 * fails (a YAML error, an unknown field, a half-written file, a selection
 * that leaves no host) is reported in one line and ignored: the run goes on
 * with the hosts it had, and the next good edit is compared with those.
 */
export class LiveInventory {
  private hosts: HostConfig[];
  private readonly watcher: InventoryWatcher;

  constructor(
    hosts: readonly HostConfig[],
    private readonly opts: LiveInventoryOptions,
  ) {
    this.hosts = [...hosts];
    this.watcher = new InventoryWatcher(opts.file, (why) => this.reload(why), opts.debounceMs);
  }

  start(): void {
    this.watcher.start();
  }

  async stop(): Promise<void> {
    await this.watcher.stop();
  }

  async reload(why: string): Promise<void> {
    const { file, plan, note } = this.opts;
    let next: HostConfig[];
    try {
      next = selectHosts(
        await loadInventoryAsync(file, { sshConfigPath: this.opts.sshConfig }),
        this.opts.only,
        this.opts.exclude,
        { reread: true },
      );
    } catch (err) {
      note(
        `inventory ${file} (${why}): ${oneLine(errorMessage(err))}; edit ignored, the run goes on with the hosts it had`,
      );
      return;
    }
    const diff = diffInventory(this.hosts, next);
    const text = describeDiff(diff);
    if (text === '') {
      if (why === 'SIGHUP') note(`inventory ${file} (SIGHUP): no host changed`);
      return;
    }
    const joining = [...diff.added, ...diff.changed.map((c) => c.after)];
    const problem = planProblem(plan, next, joining);
    if (problem !== undefined) {
      note(`inventory ${file} (${why}): ${oneLine(problem)}; edit ignored, the run goes on with the hosts it had`);
      return;
    }
    // `distray clean` finds what the run leaves on the hosts that join, as on the others.
    const made = pathsMade(
      plan,
      joining.map((h) => h.name),
    );
    await (this.opts.record ?? recordMade)(
      joining.map((h) => ({ host: h.name, workdir: h.workdir, paths: made.get(h.name) ?? [] })),
    ).catch(() => {});
    this.hosts = next;
    note(`inventory ${file} re-read (${why}): ${text}`);
    this.opts.lifecycle.update(diff);
  }
}
