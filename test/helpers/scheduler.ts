import { parseFrameSpec } from '../../src/plan/frames.js';
import { Plan, type Task } from '../../src/plan/plan.js';
import type { Scheduler, SchedulerHost } from '../../src/scheduler/scheduler.js';

/** The scheduler's onRefusedMove for tests: a host state change that cannot happen fails the test (a run would ignore it). */
export const refused = (host: string, from: string, to: string): never => {
  throw new Error(`host ${host}: ${from} -> ${to} is not a move a host can make`);
};

/** The tasks of frames 1..n of a plan that renders nothing (`r`, no copies). */
export function tasks(n: number): Task[] {
  return [
    ...new Plan({ frames: parseFrameSpec(`1,${n}`), exec: 'r', args: [], ins: [], outs: [], hostNames: ['x'] }).tasks,
  ];
}

/** Every host expected first, then added, as a run that connects them all does. */
export function startHosts(s: Scheduler, hosts: readonly SchedulerHost[]): void {
  for (const h of hosts) s.expectHost(h.name);
  for (const h of hosts) s.addHost(h);
}
