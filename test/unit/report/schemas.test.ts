import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeSchemas } from '../../../scripts/schemas.mjs';
import { ChunkSizer } from '../../../src/plan/chunkSizer.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan, type Task } from '../../../src/plan/plan.js';
import { parseGrid, parseSize } from '../../../src/plan/tiles.js';
import { HostFigures } from '../../../src/fold/hostFigures.js';
import { EVENTS_VERSION } from '../../../src/fold/runEvents.js';
import { endSummary, summarise } from '../../../src/fold/summary.js';
import { chunkRecords } from '../../../src/run.js';
import { Scheduler, type SchedulerEvent, type SchedulerHost } from '../../../src/scheduler/scheduler.js';
import { FakeHost, type Act } from '../../helpers/fakeFarm.js';
import { checkEventLines, checkReport } from '../../helpers/schemas.js';
import { refused, startHosts } from '../../helpers/scheduler.js';

// The schemas in schemas/ are made from the TypeScript types (scripts/schemas.mjs): a type changed without them fails
// here, and what a run really writes (its report and events, with failures, retries, lost hosts, copies, chunks and
// tiles) must validate. test/integration/report.test.ts validates a real run's files too.

/** A host of fake time: frame `fails` fails on it (and a chunk holding it keeps the frames before), `lost` loses its connection on its first attempt, others take `ms`. */
function host(name: string, plan: Plan, ms: number, opts: { fails?: number; lost?: boolean } = {}): SchedulerHost {
  let lose = opts.lost === true;
  return new FakeHost(name, 2, (task: Task): Act => {
    if (lose) {
      lose = false;
      return { ms, outcome: { kind: 'lost', message: 'connection reset' } };
    }
    const frames = plan.framesOf(task);
    if (frames.includes(opts.fails ?? NaN)) {
      const done = frames.filter((f) => f < opts.fails!);
      return {
        ms,
        outcome: {
          kind: 'failed',
          message: 'r exited with status 3',
          failure: { stage: 'render', exitCode: 3, signal: null, timedOut: false, stalled: false, notFound: false },
          done: done.length ? done : undefined,
          bytes: { in: 10, out: 0 },
        },
      };
    }
    return { ms, outcome: { kind: 'done', bytes: { in: 10, out: 100 * frames.length } } };
  });
}

async function farm(plan: Plan, chunk?: number) {
  let records = plan.tasks.map((t) => Scheduler.record(t));
  if (chunk) records = chunkRecords(plan, records);
  const s = new Scheduler(records, {
    retries: 1,
    maxConsecutiveFailures: 3,
    now: () => Date.now(),
    speculate: true,
    onRefusedMove: refused,
    chunks: chunk ? new ChunkSizer((first, count, index) => plan.chunkTask(first, count, index), chunk) : undefined,
  });
  const events: SchedulerEvent[] = [];
  const figures = new HostFigures();
  s.on('event', (e) => {
    events.push(e);
    figures.add(e);
  });
  startHosts(s, [
    host('a', plan, 100, { fails: 6 }),
    host('b', plan, 300, { lost: true, fails: 6 }),
    host('c', plan, 50, { fails: 6 }),
  ]);
  await vi.runAllTimersAsync();
  await s.drained();
  return {
    events,
    summary: summarise(s.records, s.hosts.values(), {
      exitCode: 1,
      startedAt: new Date(0),
      seconds: 1,
      errors: ['an error'],
    }),
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the JSON Schemas of the report and the events', () => {
  it('are what the TypeScript types give (npm run schemas writes them)', () => {
    const made = makeSchemas();
    expect(Object.keys(made).sort()).toEqual(['events.schema.json', 'report.schema.json']);
    for (const [file, text] of Object.entries(made))
      expect(
        readFileSync(new URL(`../../../schemas/${file}`, import.meta.url), 'utf8'),
        `schemas/${file} is stale: run npm run schemas`,
      ).toBe(text);
  });

  it('describe every event and the report of runs with failures, retries, a lost host and copies: frames, chunks and tiles', async () => {
    const frames = new Plan({
      frames: parseFrameSpec('1,12'),
      exec: 'r',
      args: [],
      ins: [],
      outs: ['o/f%d.png=f%d.png'],
      hostNames: ['a', 'b', 'c'],
    });
    const chunks = new Plan({
      frames: parseFrameSpec('1,12'),
      exec: 'r',
      args: ['%{first}', '%{last}'],
      ins: [],
      outs: ['o/f%d.png=f%d.png'],
      hostNames: ['a', 'b', 'c'],
      chunk: 4,
    });
    const tiles = new Plan({
      frames: parseFrameSpec('1,3'),
      exec: 'r',
      args: [],
      ins: [],
      outs: ['o/t%d-%{tile}.png=t%d-%{tile}.png'],
      hostNames: ['a', 'b', 'c'],
      tiles: { grid: parseGrid('2x2'), size: parseSize('64x64') },
    });
    const seen = new Set<string>();
    for (const [plan, chunk] of [[frames], [chunks, 4], [tiles]] as Array<[Plan, number?]>) {
      const { events, summary } = await farm(plan, chunk);
      for (const e of events) seen.add(e.type);
      // As the stream writes them: the run-end carries the summary (see RunLog.finish).
      const lines = events.map((e) => ({
        v: EVENTS_VERSION,
        ...e,
        ...(e.type === 'run-end' ? { summary: endSummary(summary) } : {}),
      }));
      checkEventLines(lines.map((l) => JSON.stringify(l)).join('\n'));
      checkReport(JSON.parse(JSON.stringify(summary)));
    }
    // The runs did reach the events that matter most.
    for (const type of [
      'attempt-ended',
      'task-done',
      'chunk-split',
      'chunk-formed',
      'host-state',
      'speculation-started',
    ])
      expect(seen).toContain(type);
  });

  it('catch a report or event that does not match', () => {
    expect(() => checkReport({ ok: true })).toThrow(/does not match/);
    expect(() => checkEventLines(JSON.stringify({ v: 1, type: 'task-done', at: 1, surprise: true }))).toThrow(
      /does not match/,
    );
  });
});
