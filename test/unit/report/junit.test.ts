import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { junitChunks, writeJunit, xmlText } from '../../../src/report/junit.js';
import type { RunSummary, TaskSummary } from '../../../src/fold/types.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-junit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function task(frame: number, status: TaskSummary['status'], more: Partial<TaskSummary> = {}): TaskSummary {
  return {
    frame,
    tile: null,
    status,
    host: 'render1',
    attempts: 1,
    copies: 1,
    exitCode: 0,
    signal: null,
    timedOut: false,
    stalled: false,
    lost: 0,
    cancelled: false,
    seconds: 1.25,
    ...more,
  };
}

/** Everything a renderer may print that XML cannot hold, or must escape. */
const NASTY = 'ray: <b>&"quoted"\'\n\u0000nul \u001b[31mred\u001b[0m \u0007bell \uD800lone \uFFFF end\ttab\r';

const summary: RunSummary = {
  ok: false,
  exitCode: 1,
  startedAt: '2026-11-22T10:00:00.000Z',
  seconds: 12.5,
  tasks: [
    task(1, 'done'),
    task(2, 'failed', {
      exitCode: 3,
      stage: 'render',
      error: `ray exited with status 3 (log: x.log); last output:\n${NASTY}`,
      log: '/tmp/a&b.log',
      host: 'gpu<1>',
    }),
    task(3, 'skipped', { host: null, seconds: 0 }),
    task(4, 'cancelled', { error: 'stopped' }),
    task(5, 'done', { tile: 2 }),
  ],
  hosts: [],
  errors: ['render2: a per-host output could not be fetched'],
};

function parse(xml: string): Record<string, unknown> {
  expect(XMLValidator.validate(xml)).toBe(true);
  return new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    isArray: (name) => ['testcase', 'property'].includes(name),
  }).parse(xml) as Record<string, unknown>;
}

type Case = {
  name: string;
  time: string;
  failure?: { '#text': string; message: string; type: string };
  skipped?: { message: string };
  properties?: { property: Array<{ name: string; value: string }> };
};

describe('JUnit XML', () => {
  it('is well-formed, one testcase per task, with failures, skips and the host as a property', async () => {
    const path = join(dir, 'junit.xml');
    await writeJunit(path, summary);
    const xml = readFileSync(path, 'utf8');
    const doc = parse(xml) as {
      testsuites: {
        testsuite: {
          tests: string;
          failures: string;
          skipped: string;
          time: string;
          testcase: Case[];
          'system-err': string;
        };
      };
    };
    const suite = doc.testsuites.testsuite;
    expect([suite.tests, suite.failures, suite.skipped, suite.time]).toEqual(['5', '1', '2', '12.500']);
    expect(suite.testcase.map((c) => c.name)).toEqual(['frame 1', 'frame 2', 'frame 3', 'frame 4', 'frame 5 tile 2']);
    expect(suite.testcase[0]!.time).toBe('1.250');
    expect(suite.testcase[0]!.properties!.property).toEqual([{ name: 'host', value: 'render1' }]);
    const failed = suite.testcase[1]!;
    expect(failed.properties!.property[0]!.value).toBe('gpu<1>');
    expect(failed.failure!.type).toBe('render');
    expect(failed.failure!.message).toBe('ray exited with status 3 (log: x.log); last output:');
    // The renderer's last lines, escaped: what XML can hold comes back as it was, the rest made visible.
    const text = failed.failure!['#text'];
    expect(text).toContain('ray: <b>&"quoted"\'');
    expect(text).toContain('\\x00nul \\x1b[31mred\\x1b[0m \\x07bell \\ud800lone \\uffff end\ttab');
    expect(text).toContain('(log: /tmp/a&b.log)');
    expect(suite.testcase[2]!.skipped!.message).toBe('already complete');
    expect(suite.testcase[2]!.properties).toBeUndefined();
    expect(suite.testcase[3]!.skipped!.message).toMatch(/the run was stopped \(stopped\)/);
    expect(suite['system-err']).toContain('could not be fetched');
    expect(readdirSync(dir).filter((f) => f.includes('.distray-'))).toEqual([]);
  });

  it('makes a run that could not start one failed testcase', () => {
    const xml = [
      ...junitChunks({
        ok: false,
        exitCode: 2,
        startedAt: summary.startedAt,
        seconds: 0,
        tasks: [],
        hosts: [],
        errors: ['--retries "x": expected a whole number'],
      }),
    ].join('');
    const suite = (parse(xml) as { testsuites: { testsuite: { tests: string; failures: string; testcase: Case[] } } })
      .testsuites.testsuite;
    expect([suite.tests, suite.failures]).toEqual(['1', '1']);
    expect(suite.testcase[0]!.failure!.message).toBe('--retries "x": expected a whole number');
  });

  it('writes a large run a batch at a time, still one document', () => {
    const many = { ...summary, tasks: Array.from({ length: 2500 }, (_, i) => task(i, 'done')) };
    const chunks = [...junitChunks(many)];
    expect(chunks.length).toBeGreaterThan(3);
    const suite = (parse(chunks.join('')) as { testsuites: { testsuite: { testcase: Case[] } } }).testsuites.testsuite;
    expect(suite.testcase).toHaveLength(2500);
  });

  it.each([
    ['a & b', 'a &amp; b'],
    ['<x attr="1">', '&lt;x attr=&quot;1&quot;&gt;'],
    ['\u0000\u0008\u000b\u000c\u001f', '\\x00\\x08\\x0b\\x0c\\x1f'],
    ['ok \t\n\r é 😀', 'ok \t\n\r é 😀'],
    ['\uDC00 \uFFFE', '\\udc00 \\ufffe'],
  ])('escapes %j', (input, expected) => {
    expect(xmlText(input)).toBe(expected);
  });

  it('with --chunk counts frames: a testcase per frame, named by it, the chunk a property', () => {
    const chunk = (
      frame: number,
      last: number,
      status: TaskSummary['status'],
      more: Partial<TaskSummary> = {},
    ): TaskSummary =>
      task(frame, status, { last, count: last - frame + 1, label: `frames ${frame}-${last}`, seconds: 4, ...more });
    const xml = [
      ...junitChunks({
        ...summary,
        errors: [],
        tasks: [chunk(1, 4, 'done'), chunk(5, 6, 'failed', { error: 'died half-way' })],
      }),
    ].join('');
    const doc = parse(xml) as {
      testsuites: { tests: string; failures: string; testsuite: { tests: string; failures: string; testcase: Case[] } };
    };
    const suite = doc.testsuites.testsuite;
    expect([doc.testsuites.tests, suite.tests, suite.failures]).toEqual(['6', '6', '2']);
    expect(suite.testcase.map((c) => [c.name, c.time, c.failure ? 'failed' : 'ok'])).toEqual([
      ['frame 1', '1.000', 'ok'],
      ['frame 2', '1.000', 'ok'],
      ['frame 3', '1.000', 'ok'],
      ['frame 4', '1.000', 'ok'],
      ['frame 5', '2.000', 'failed'],
      ['frame 6', '2.000', 'failed'],
    ]);
    expect(suite.testcase[5]!.properties!.property).toEqual([
      { name: 'host', value: 'render1' },
      { name: 'chunk', value: 'frames 5-6' },
    ]);
  });
});
