import type { Plan } from './plan.js';

/**
 * The rule "a remote path the same for every task needs a host with one
 * slot", in one place: checked when the run starts and again for the hosts
 * an edited inventory brings while it runs. Two tasks at once on one host
 * would write that file at the same time. Returns the message, naming the
 * option, the host and the fix, or undefined when the hosts may run the plan.
 */
export function sharedRemotePathProblem(
  plan: Pick<Plan, 'sharedRemotePaths' | 'tiled'>,
  hosts: readonly { readonly name: string; readonly slots: number }[],
): string | undefined {
  const busy = hosts.find((h) => h.slots > 1);
  if (busy === undefined) return undefined;
  const shared = plan.sharedRemotePaths();
  if (shared.length === 0) return undefined;
  return (
    `${shared[0]}: its remote path is the same for every task, but ${busy.name} runs ${busy.slots} tasks at once, which would write it at the same time; ` +
    `put the task's placeholders in the remote path too (such as %d${plan.tiled ? ' and %{tile}' : ''}), or use slots: 1`
  );
}
