import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneRunLogs, runLogName } from '../../../src/report/logs.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('pruneRunLogs', () => {
  it('keeps the newest runs (counting the one starting) and nothing else it did not name', async () => {
    dir = mkdtempSync(join(tmpdir(), 'distray-logs-'));
    const names = Array.from({ length: 25 }, (_, i) => runLogName(new Date(Date.UTC(2026, 10, 1 + i, 10))));
    for (const n of names) {
      mkdirSync(join(dir, n));
      writeFileSync(join(dir, n, 'frame-1.h1.1.log'), 'x');
    }
    mkdirSync(join(dir, 'mine'));
    writeFileSync(join(dir, 'notes.txt'), 'keep me');
    const removed = await pruneRunLogs(dir, 20);
    expect(removed).toEqual(names.slice(0, 6));
    expect(readdirSync(dir).sort()).toEqual([...names.slice(6), 'mine', 'notes.txt'].sort());
  });

  it('keeps everything with 0, and does nothing where there are no logs', async () => {
    dir = mkdtempSync(join(tmpdir(), 'distray-logs-'));
    mkdirSync(join(dir, runLogName(new Date())));
    expect(await pruneRunLogs(dir, 0)).toEqual([]);
    expect(await pruneRunLogs(join(dir, 'absent'), 20)).toEqual([]);
    expect(readdirSync(dir)).toHaveLength(1);
  });
});
