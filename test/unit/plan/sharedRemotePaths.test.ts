import { describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type PlanOptions } from '../../../src/plan/plan.js';
import { sharedRemotePathProblem } from '../../../src/plan/sharedRemotePaths.js';

const plan = (over: Partial<PlanOptions> = {}): Plan =>
  new Plan({
    frames: parseFrameSpec('1,3'),
    exec: 'build/ray',
    args: ['%d'],
    ins: [],
    outs: [],
    hostNames: ['a', 'b'],
    ...over,
  });

const oneSlot = { name: 'a', slots: 1 };
const twoSlots = { name: 'b', slots: 2 };

describe('sharedRemotePathProblem', () => {
  it('names the option, the host with more than one slot and both fixes', () => {
    expect(sharedRemotePathProblem(plan({ outs: ['shared.txt=f/%d.txt'] }), [oneSlot, twoSlots])).toBe(
      "--out shared.txt=f/%d.txt: its remote path is the same for every task, but b runs 2 tasks at once, which would write it at the same time; put the task's placeholders in the remote path too (such as %d), or use slots: 1",
    );
  });

  it('suggests %{tile} too when the frames are tiled', () => {
    const tiles = { grid: { cols: 2, rows: 1 }, size: { width: 10, height: 10 } };
    expect(sharedRemotePathProblem(plan({ tiles, ins: ['cams/%d-%{tile}.json=cam.json'] }), [twoSlots])).toMatch(
      /^--in cams\/%d-%\{tile\}\.json=cam\.json: .*\(such as %d and %\{tile\}\), or use slots: 1$/,
    );
  });

  it.each([
    ['every host has one slot', { outs: ['shared.txt=f/%d.txt'] }, [oneSlot]],
    ['no host at all', { outs: ['shared.txt=f/%d.txt'] }, []],
    ['every remote path is the task’s own', { outs: ['out/%d.txt'] }, [twoSlots]],
    ['a per-host output', { outs: ['stats.txt=stats/%{host}.txt'] }, [twoSlots]],
  ])('finds nothing wrong with %s', (_, over: Partial<PlanOptions>, hosts) => {
    expect(sharedRemotePathProblem(plan(over), hosts)).toBeUndefined();
  });
});
