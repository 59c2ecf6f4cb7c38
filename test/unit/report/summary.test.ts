import { mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeReport } from '../../../src/report/json.js';
import type { RunSummary } from '../../../src/fold/types.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function summary(tasks: number): RunSummary {
  return {
    ok: false,
    exitCode: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    seconds: 1.5,
    tasks: Array.from({ length: tasks }, (_, i) => ({
      frame: i,
      tile: null,
      status: i % 7 ? 'done' : 'failed',
      host: 'h',
      attempts: 1,
      copies: 1,
      exitCode: null,
      signal: null,
      timedOut: false,
      stalled: false,
      lost: 0,
      cancelled: false,
      seconds: 0.25,
      error: i % 7 ? undefined : 'a "quoted"\nline',
    })),
    hosts: [{ name: 'h', state: 'done', tasksDone: tasks, failures: 0 }],
    errors: ['x'],
  };
}

describe('writeReport', () => {
  it.each([0, 1, 2, 1000, 2500])('writes %i tasks as JSON, one task a line', async (n) => {
    const path = join(dir, `r${n}.json`);
    const s = summary(n);
    await writeReport(path, s);
    const text = readFileSync(path, 'utf8');
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(s)));
    expect(text.split('\n').filter((l) => l.startsWith('    {"frame":'))).toHaveLength(n);
    expect(readdirSync(dir).filter((f) => f.includes('.distray-'))).toEqual([]);
  });

  it('leaves no temporary file behind when the report cannot be renamed into place', async () => {
    await expect(writeReport(dir, summary(1))).rejects.toThrow();
    expect(
      readdirSync(join(dir, '..')).filter((f) => f.startsWith('.distray-report-') && f.includes('.distray-')),
    ).toEqual([]);
  });

  it('never writes through a link at a temporary name beside the report (its names are random, and created afresh)', async () => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'keep me\n');
    symlinkSync(victim, join(dir, 'linked.json.distray-tmp'));
    await writeReport(join(dir, 'linked.json'), summary(3));
    expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
    expect(JSON.parse(readFileSync(join(dir, 'linked.json'), 'utf8'))).toMatchObject({ exitCode: 1 });
  });
});
