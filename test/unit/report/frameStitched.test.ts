import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { parseGrid, parseSize } from '../../../src/plan/tiles.js';
import { Scheduler } from '../../../src/scheduler/scheduler.js';
import { FrameStitcher, type FrameRecord } from '../../../src/stitch/frames.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-stitched-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('frame-stitched', () => {
  it('tells the run of each frame stitched, and of one that could not be', async () => {
    const size = parseSize('4x2');
    const plan = new Plan({
      frames: parseFrameSpec('1,2'),
      exec: 'r',
      args: [],
      ins: [],
      outs: [`t%d-%{tile}.png=${dir}/t%d-%{tile}.png`],
      tiles: { grid: parseGrid('2x1'), size },
      stitch: `${dir}/f%d.png`,
      hostNames: ['a'],
    });
    const records = plan.tasks.map((t) => Scheduler.record(t));
    const told: FrameRecord[] = [];
    const stitcher = new FrameStitcher(plan, records, size, {
      keepTiles: false,
      note: () => {},
      onFrame: (f) => told.push({ ...f }),
    });
    // Frame 1's tiles are real 2x2 images; frame 2's second tile is missing.
    for (const r of records) {
      if (r.task.frame === 2 && r.task.tile!.index === 1) continue;
      await sharp({ create: { width: 2, height: 2, channels: 3, background: '#808080' } })
        .png()
        .toFile(plan.tileImage(r.task)!);
    }
    for (const r of records) {
      r.status = 'done';
      stitcher.tileDone(r);
    }
    await stitcher.idle();
    expect(told.map((f) => [f.frame, f.status])).toEqual([
      [1, 'stitched'],
      [2, 'failed'],
    ]);
    expect(told[0]!.output).toBe(`${dir}/f1.png`);
    expect(told[1]!.error).toBeTruthy();
    expect(existsSync(`${dir}/f1.png`)).toBe(true);
  });
});
