import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { EventStream } from '../../../src/report/eventStream.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-events-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('EventStream', () => {
  it('writes one JSON object a line, the schema version first', async () => {
    const path = join(dir, 'e.ndjson');
    const notes: string[] = [];
    const s = EventStream.open(path, (m) => notes.push(m));
    s.write({ type: 'run-start', at: 1, tasks: 2 });
    s.write({ type: 'host-state', at: 2, host: 'a', state: 'ok', reason: 'line\nbreak' });
    await s.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.slice(0, -1).map((l) => JSON.parse(l) as unknown)).toEqual([
      { v: 1, type: 'run-start', at: 1, tasks: 2 },
      { v: 1, type: 'host-state', at: 2, host: 'a', state: 'ok', reason: 'line\nbreak' },
    ]);
    expect(lines[0]!.startsWith('{"v":1,')).toBe(true);
    expect(notes).toEqual([]);
  });

  it('hands each event on as it is written, before the stream is closed', async () => {
    const out = new PassThrough();
    const got: string[] = [];
    out.on('data', (c: Buffer) => got.push(c.toString()));
    const s = EventStream.open('-', () => {}, out);
    s.write({ type: 'a', at: 0 });
    await new Promise((r) => setImmediate(r));
    expect(got.join('')).toBe('{"v":1,"type":"a","at":0}\n');
    await s.close();
  });

  it('reports a reader that went away once, and the run goes on', async () => {
    let writes = 0;
    const broken = new Writable({
      write(_chunk, _enc, cb) {
        writes++;
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const notes: string[] = [];
    const s = EventStream.open('-', (m) => notes.push(m), broken);
    for (let i = 0; i < 5; i++) {
      s.write({ type: 'x', at: i });
      await new Promise((r) => setImmediate(r));
    }
    await s.close();
    expect(notes).toEqual(['--events stdout: cannot write the event stream: its reader went away (a broken pipe); the run goes on without it']);
    expect(writes).toBe(1);
  });

  it('reports a file it cannot write once, without throwing', async () => {
    const notes: string[] = [];
    const s = EventStream.open(join(dir, 'no-such-dir', 'e.ndjson'), (m) => notes.push(m));
    s.write({ type: 'x', at: 0 });
    await s.close();
    s.write({ type: 'y', at: 1 });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^--events .*no-such-dir.*: cannot write the event stream: .*ENOENT/);
  });
});
