import { afterAll, describe, expect, it } from 'vitest';
import { ChunkSizer } from '../../../src/plan/chunkSizer.js';
import {
  chunkLabel,
  describeFrames,
  framesOfChunk,
  lastOf,
  MAX_CHUNK,
  parseChunk,
  runsOf,
  type ChunkSize,
} from '../../../src/plan/chunks.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type PlanOptions, type Task } from '../../../src/plan/plan.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunkRecords, prepare } from '../../../src/run.js';
import { parseRunArgs, type RunArgs } from '../../../src/cli/runArgs.js';
import { Scheduler } from '../../../src/scheduler/scheduler.js';

const base = (over: Partial<PlanOptions> = {}): PlanOptions => ({
  frames: parseFrameSpec('0,99,2'),
  exec: 'blender',
  args: ['-b', 'scene.blend', '-s', '%{first}', '-e', '%{last}', '-j', '2', '-a'],
  ins: [],
  outs: ['out/f%04d.png=anim/f%04d.png'],
  hostNames: ['a'],
  chunk: 5,
  ...over,
});

/** Takes chunks off a queued one until it is used up, as the scheduler's slots do. */
function carveAll(sizer: ChunkSizer, whole: Task, host = 'a'): Task[] {
  const out: Task[] = [];
  let rest: Task | undefined = whole;
  let index = 1;
  while (rest) {
    const c = sizer.carve(rest, host, index++);
    if (!c) {
      out.push(rest);
      rest = undefined;
    } else {
      out.push(c.taken);
      rest = c.rest;
    }
  }
  return out;
}

function sizer(plan: Plan, size: ChunkSize, targetMs?: number): ChunkSizer {
  return new ChunkSizer((first, count, index) => plan.chunkTask(first, count, index), size, targetMs);
}

describe('parseChunk', () => {
  it.each([
    ['5', 5],
    ['1', 1],
    ['auto', 'auto'],
    [undefined, undefined],
  ])('reads %j', (text, want) => {
    expect(parseChunk(text)).toBe(want);
  });

  it.each(['0', '-3', '2.5', 'big', '', '10001'])('refuses %j, naming the option', (text) => {
    expect(() => parseChunk(text)).toThrow(/--chunk .*a number of frames from 1 to 10000, or auto/);
  });
});

describe('chunks of a frame spec', () => {
  it('takes N consecutive frames of the spec, respecting its step: 0,99,2 by 5 is 0-8, 10-18, ...', () => {
    const plan = new Plan(base());
    const frames = plan.tasks.map((t) => t.frame);
    const chunks = carveAll(sizer(plan, 5), plan.chunkTask(frames[0]!, frames.length, 0));
    expect(chunks.map((t) => t.label)).toEqual([
      'frames 0-8',
      'frames 10-18',
      'frames 20-28',
      'frames 30-38',
      'frames 40-48',
      'frames 50-58',
      'frames 60-68',
      'frames 70-78',
      'frames 80-88',
      'frames 90-98',
    ]);
    expect(plan.framesOf(chunks[1]!)).toEqual([10, 12, 14, 16, 18]);
    expect(chunks.flatMap((t) => plan.framesOf(t))).toEqual(frames);
  });

  it('keeps the last chunk short, and counts downwards for a negative step', () => {
    const plan = new Plan(base({ frames: parseFrameSpec('10,1') }));
    const chunks = carveAll(sizer(plan, 4), plan.chunkTask(10, 10, 0));
    expect(chunks.map((t) => t.label)).toEqual(['frames 10-7', 'frames 6-3', 'frames 2-1']);
    expect(plan.argv(chunks[2]!, 'a')).toEqual(['blender', '-b', 'scene.blend', '-s', '2', '-e', '1', '-j', '2', '-a']);
  });

  it('gives %{first}, %{last} and %{count} to the command, and one output per frame of the chunk', () => {
    const plan = new Plan(
      base({
        args: ['%{first}', '%{last}', '%{count}', '%{(last-first)/2}'],
        ins: ['cams/c%d.json=cams/%d.json', 'list-%{first}.txt=list.txt'],
      }),
    );
    const t = plan.chunkTask(10, 3, 7);
    expect(t).toMatchObject({ index: 7, frame: 10, label: 'frames 10-14', chunk: { first: 10, count: 3, step: 2 } });
    expect(plan.argv(t, 'a')).toEqual(['blender', '10', '14', '3', '2']);
    expect(plan.taskIns(t, 'a')).toEqual([
      { local: 'cams/c10.json', remote: 'cams/10.json' },
      { local: 'cams/c12.json', remote: 'cams/12.json' },
      { local: 'cams/c14.json', remote: 'cams/14.json' },
      { local: 'list-10.txt', remote: 'list.txt' },
    ]);
    expect(plan.frameOuts(t, 'a')).toEqual([
      { frame: 10, copies: [{ local: 'anim/f0010.png', remote: 'out/f0010.png' }] },
      { frame: 12, copies: [{ local: 'anim/f0012.png', remote: 'out/f0012.png' }] },
      { frame: 14, copies: [{ local: 'anim/f0014.png', remote: 'out/f0014.png' }] },
    ]);
    expect(plan.taskOuts(t, 'a').map((c) => c.remote)).toEqual(['out/f0010.png', 'out/f0012.png', 'out/f0014.png']);
    // A rerun looks for each frame's own outputs.
    expect(plan.localOutputs(plan.tasks[3]!)).toEqual(['anim/f0006.png']);
  });

  it('checks the command against the chunks a fixed N makes, not single frames', () => {
    const plan = new Plan(base({ frames: parseFrameSpec('1,10'), chunk: 5, args: ['%{100/(count-1)}'] }));
    expect(plan.argv(plan.chunkTask(1, 5, 0), 'a')).toEqual(['blender', '25']);
    expect(() => new Plan(base({ frames: parseFrameSpec('1,11'), chunk: 5, args: ['%{100/(count-1)}'] }))).toThrow(
      /division by zero/,
    );
  });

  it('labels a chunk of one frame as that frame', () => {
    const plan = new Plan(base());
    expect(plan.chunkTask(4, 1, 0).label).toBe('frame 4');
  });

  it.each([
    [
      { args: ['-f', '%d'] },
      /argument 2 "%d": with --chunk a task renders several frames, so %d .*has no one value; use %\{first\}, %\{last\} and %\{count\} \(Blender: -s %\{first\} -e %\{last\} -a\)/,
    ],
    [{ args: ['%{frame+1}'] }, /argument 1 "%\{frame\+1\}": with --chunk/],
    [
      { outs: ['out/%{first}.mp4=clips/%{first}.mp4'] },
      /--out "out\/%\{first\}.mp4=clips\/%\{first\}.mp4": an output is one frame's \(%d\), whatever chunk rendered it/,
    ],
    [{ outs: ['out/f%d.png=anim/f%d-of-%{count}.png'] }, /remove %\{first\}, %\{last\} and %\{count\}/],
    [{ tiles: { grid: { cols: 2, rows: 2 }, size: { width: 64, height: 64 } } }, /--chunk and --tiles together/],
    [
      { chunk: undefined, args: ['-s', '%{first}'] },
      /unknown name "first" in %\{first\} \(first, last and count need --chunk\)/,
    ],
    [{ args: ['%{10/(count-5)}'] }, /argument 1 .*division by zero/],
  ])('refuses %j before anything connects', (over, message) => {
    expect(() => new Plan(base(over as Partial<PlanOptions>))).toThrow(message);
  });
});

describe('partial chunks', () => {
  const chunk = { first: 0, count: 9, step: 2 };

  it('cuts a chunk into runs of frames done and not', () => {
    const done = new Set([0, 2, 4]);
    expect(runsOf(chunk, (f) => done.has(f))).toEqual([
      { first: 0, count: 3, done: true },
      { first: 6, count: 6, done: false },
    ]);
  });

  it('keeps scattered frames apart: each run of missing frames is a chunk of its own', () => {
    const done = new Set([0, 2, 8, 14, 16]);
    expect(runsOf(chunk, (f) => done.has(f)).map((r) => [framesOfChunk({ ...r, step: 2 }), r.done])).toEqual([
      [[0, 2], true],
      [[4, 6], false],
      [[8], true],
      [[10, 12], false],
      [[14, 16], true],
    ]);
  });

  it('splits a task: the first part keeps its index, the others get new ones', () => {
    const plan = new Plan(base());
    const s = sizer(plan, 5);
    let next = 40;
    const parts = s.split(plan.chunkTask(0, 5, 3), new Set([0, 2, 6]), () => next++);
    expect(parts.map((p) => [p.task.index, p.task.label, p.done])).toEqual([
      [3, 'frames 0-2', true],
      [40, 'frame 4', false],
      [41, 'frame 6', true],
      [42, 'frame 8', false],
    ]);
  });

  it('names frames as runs in messages, the first few of many', () => {
    expect(describeFrames([10, 12, 14, 18], 2)).toBe('frames 10-14, 18');
    expect(describeFrames([7], 1)).toBe('frame 7');
    expect(describeFrames([1, 3, 5, 7, 9, 11, 13, 15], 1)).toBe('frames 1, 3, 5, 7, 9, 11, ... (8 in all)');
  });
});

describe('reruns', () => {
  it('re-chunks the frames still missing: a record per run of frames complete or not, each run from its own first frame', () => {
    const plan = new Plan(base({ frames: parseFrameSpec('1,20') }));
    const frames = plan.tasks.map((t) => Scheduler.record(t));
    for (const f of [1, 2, 3, 9, 10, 20]) frames[f - 1]!.status = 'skipped';
    const records = chunkRecords(plan, frames);
    expect(records.map((r) => [r.task.index, r.task.label, r.status])).toEqual([
      [0, 'frames 1-3', 'skipped'],
      [1, 'frames 4-8', 'pending'],
      [2, 'frames 9-10', 'skipped'],
      [3, 'frames 11-19', 'pending'],
      [4, 'frame 20', 'skipped'],
    ]);
    const s = sizer(plan, 4);
    expect(carveAll(s, records[3]!.task).map((t) => t.label)).toEqual(['frames 11-14', 'frames 15-18', 'frame 19']);
  });

  it('holds a million frames of a first run as one record', () => {
    const plan = new Plan(base({ frames: parseFrameSpec('1,1000000'), outs: [] }));
    const records = chunkRecords(
      plan,
      plan.tasks.map((t) => Scheduler.record(t)),
    );
    expect(records).toHaveLength(1);
    expect(records[0]!.task.label).toBe('frames 1-1000000');
  });
});

describe('auto sizing', () => {
  it('starts at one frame, then sizes chunks to the target from the measured start-up and time per frame', () => {
    const plan = new Plan(base({ chunk: 'auto' }));
    const s = sizer(plan, 'auto', 120_000);
    expect(s.frames('a')).toBe(1);
    // A frame in 10 s: start-up and frame cannot be told apart yet, so 12 frames make two minutes.
    s.timed(plan.chunkTask(0, 1, 0), 'a', 10_000);
    expect(s.frames('a')).toBe(12);
    // A host not measured yet goes by the farm's pace.
    expect(s.frames('b')).toBe(12);
    // 12 frames in 60 s: 50 s more for 11 more frames, so 4.55 s a frame after a start-up of 5.45 s.
    s.timed(plan.chunkTask(2, 12, 1), 'a', 60_000);
    const perFrame = 50_000 / 11;
    expect(s.frames('a')).toBe(Math.round((120_000 - (10_000 - perFrame)) / perFrame));
    expect(s.frames('a')).toBe(25);
    // A host of its own pace, measured once: 17 s a frame, 7 frames.
    s.timed(plan.chunkTask(30, 4, 2), 'b', 4 * 17_000);
    expect(s.frames('b')).toBe(7);
  });

  it('follows a change of pace: older chunks weigh less', () => {
    const plan = new Plan(base({ chunk: 'auto' }));
    const s = sizer(plan, 'auto', 60_000);
    for (let i = 0; i < 5; i++) s.timed(plan.chunkTask(0, 10, 0), 'a', 10 * 1_000);
    expect(s.frames('a')).toBe(60);
    // The scene gets heavy: 6 s a frame from now on.
    for (let i = 0; i < 12; i++) s.timed(plan.chunkTask(0, 10, 0), 'a', 10 * 6_000);
    expect(s.frames('a')).toBe(10);
  });

  it('falls back to the time per frame when noise makes the start-up negative', () => {
    const plan = new Plan(base({ chunk: 'auto' }));
    const s = sizer(plan, 'auto', 60_000);
    // Larger chunks slower per frame than a whole start-up explains: no line fits with a start-up of 0 or more.
    s.timed(plan.chunkTask(0, 1, 0), 'a', 1_000);
    s.timed(plan.chunkTask(0, 3, 0), 'a', 9_000);
    // 10 s over 4 frames, older ones weighing less: about 2.4 s a frame.
    expect(s.frames('a')).toBeGreaterThanOrEqual(22);
    expect(s.frames('a')).toBeLessThanOrEqual(27);
  });

  it('keeps to N with a fixed size, whatever the times', () => {
    const plan = new Plan(base());
    const s = sizer(plan, 5);
    s.timed(plan.chunkTask(0, 5, 0), 'a', 1);
    expect(s.frames('a')).toBe(5);
  });

  it('never makes a chunk of less than a frame, or more than the limit', () => {
    const plan = new Plan(base({ chunk: 'auto' }));
    const s = sizer(plan, 'auto', 1000);
    s.timed(plan.chunkTask(0, 1, 0), 'slow', 3_600_000);
    expect(s.frames('slow')).toBe(1);
    s.timed(plan.chunkTask(0, 1, 0), 'fast', 0);
    expect(s.frames('fast')).toBe(10_000);
  });
});

describe('the command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'distray-chunks-'));
  const inventory = join(dir, 'farm.yaml');
  writeFileSync(inventory, 'hosts:\n  - local: true\n    workdir: w\n');
  const opts = (over: Partial<RunArgs>): RunArgs => ({
    inventory,
    frames: '1,100',
    exec: 'blender',
    args: ['-s', '%{first}', '-e', '%{last}', '-a'],
    outs: ['f%d.png'],
    ...over,
  });

  it('takes --chunk N, --chunk auto and --chunk-target', () => {
    expect(parseRunArgs(opts({ chunk: '10' }))).toMatchObject({ chunk: 10, chunkTargetMs: 120_000 });
    expect(parseRunArgs(opts({ chunk: 'auto', chunkTarget: '30s' }))).toMatchObject({
      chunk: 'auto',
      chunkTargetMs: 30_000,
    });
  });

  it.each([
    [{ chunk: '0' }, /--chunk "0": expected a number of frames from 1 to 10000, or auto/],
    [{ chunk: '10', chunkTarget: '1m' }, /--chunk-target sizes chunks of --chunk auto/],
    [{ chunkTarget: '1m' }, /--chunk-target sizes chunks of --chunk auto/],
    [{ chunk: 'auto', chunkTarget: 'soon' }, /--chunk-target "soon": expected a duration/],
    [{ chunk: 'auto', order: 'preview' }, /--order preview and --chunk/],
    [
      { chunk: '4', tiles: '2x2', size: '64x64', args: ['%{first}', '%{tile}'], outs: ['t%d-%{tile}.png'] },
      /--chunk and --tiles together/,
    ],
  ])('refuses %j before anything connects', (over, message) => {
    expect(() => prepare(parseRunArgs(opts(over)))).toThrow(message);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));
});

describe('a chunk, its edges', () => {
  it('takes 1 to MAX_CHUNK frames or auto, and says so when refusing', () => {
    expect(parseChunk(undefined)).toBeUndefined();
    expect(parseChunk('1')).toBe(1);
    expect(parseChunk(`${MAX_CHUNK}`)).toBe(MAX_CHUNK);
    for (const text of ['0', `${MAX_CHUNK + 1}`, '-1', '1.5', ' 4', 'Auto', ''])
      expect(() => parseChunk(text)).toThrow(
        `--chunk "${text}": expected a number of frames from 1 to ${MAX_CHUNK}, or auto (sized from the measured time per frame)`,
      );
  });

  it('names its frames by its first and last, a step apart', () => {
    expect(lastOf({ first: 10, count: 4, step: 3 })).toBe(19);
    expect(lastOf({ first: 10, count: 1, step: 3 })).toBe(10);
    expect(chunkLabel({ first: 10, count: 4, step: 3 })).toBe('frames 10-19');
    expect(chunkLabel({ first: 7, count: 1, step: 1 })).toBe('frame 7');
    expect(chunkLabel({ first: 9, count: 3, step: -2 })).toBe('frames 9-5');
    expect(framesOfChunk({ first: 9, count: 3, step: -2 })).toEqual([9, 7, 5]);
  });

  it('cuts a chunk into runs of one state each', () => {
    expect(runsOf({ first: 1, count: 5, step: 1 }, () => true)).toEqual([{ first: 1, count: 5, done: true }]);
    expect(runsOf({ first: 1, count: 5, step: 1 }, (f) => f !== 3)).toEqual([
      { first: 1, count: 2, done: true },
      { first: 3, count: 1, done: false },
      { first: 4, count: 2, done: true },
    ]);
  });

  it('shows six runs at most, then how many frames in all', () => {
    expect(describeFrames([1, 3, 5, 7, 9, 11], 1)).toBe('frames 1, 3, 5, 7, 9, 11');
    expect(describeFrames([1, 2, 3, 5, 6, 9, 11, 13, 15, 20], 1)).toBe(
      'frames 1-3, 5-6, 9, 11, 13, 15, ... (10 in all)',
    );
    expect(describeFrames([6, 4, 2], -2)).toBe('frames 6-2');
    expect(describeFrames([1, 2], 1)).toBe('frames 1-2');
  });
});
