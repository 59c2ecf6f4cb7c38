import { describe, expect, it } from 'vitest';
import { simulate } from '../../../bench/sim.js';
import { tasksOfRecords } from '../../../src/fold/summary.js';
import { TaskFold } from '../../../src/fold/taskFold.js';
import type { TaskRecord } from '../../../src/scheduler/scheduler.js';

/**
 * The dispatcher on a farm larger than any test can host: bench/sim.ts's
 * fake hosts on a virtual clock (no real time passes), with slow, dying and
 * hanging hosts. What `npm run bench -- sim` times, checked here for what
 * it does: every task done, and with speculation no later than the
 * list-scheduling bound allows.
 */
describe('the dispatcher on a simulated farm', () => {
  it('gets every task done on 100 hosts of 8 slots, some slow, dying or hanging, within 1.1x of the bound', async () => {
    const r = await simulate({ hosts: 100, slots: 8, tasks: 6000, speculate: true });
    expect(r.finished).toBe(true);
    expect(r.done).toBe(6000);
    expect(r.makespan / r.bound).toBeLessThanOrEqual(1.1);
  });

  it('lets a fast slot that frees up late take over a task whose copies all went to slow hosts (200 hosts of 4 slots)', async () => {
    // With this farm (seed 42) the last task's copies went to two 4x slower hosts while the fast ones were busy:
    // capped at three attempts, the task ended at 1.25x the bound until a faster copy could replace the slowest.
    let replaced = 0;
    const r = await simulate({
      hosts: 200,
      slots: 4,
      tasks: 6000,
      speculate: true,
      seed: 42,
      watch: (s) => s.on('event', (e) => void (e.type === 'speculation-lost' && e.replaced && replaced++)),
    });
    expect(r.finished).toBe(true);
    expect(r.done).toBe(6000);
    expect(replaced).toBeGreaterThan(0);
    expect(r.makespan / r.bound).toBeLessThanOrEqual(1.1);
  });

  it("folds the farm's events into the same report tasks as its records: copies, replaced copies, lost and hung hosts, retries", async () => {
    const fold = new TaskFold(0);
    let records: readonly TaskRecord[] = [];
    let replaced = 0;
    await simulate({
      hosts: 200,
      slots: 4,
      tasks: 6000,
      speculate: true,
      seed: 42,
      watch: (s, recs) => {
        records = recs;
        fold.begin(recs);
        s.on('event', (e) => {
          fold.add(e);
          if (e.type === 'speculation-lost' && e.replaced) replaced++;
        });
      },
    });
    expect(replaced).toBeGreaterThan(0);
    const fromEvents = fold.list();
    const fromRecords = tasksOfRecords(records, 0);
    expect(fromEvents.tasks.length).toBe(6000);
    expect(JSON.stringify(fromEvents)).toBe(JSON.stringify(fromRecords));
  });

  it('gets every task done on 200 hosts of 4 slots, with and without speculation', async () => {
    for (const speculate of [true, false]) {
      const r = await simulate({ hosts: 200, slots: 4, tasks: 6000, speculate });
      expect(r.finished).toBe(true);
      expect(r.done).toBe(6000);
    }
  });
});
