import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { EventStream } from '../../../src/report/eventStream.js';
import { WAIT_MS, within } from '../../helpers/wait.js';

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
    expect(notes).toEqual([
      '--events stdout: cannot write the event stream: its reader went away (a broken pipe); the run goes on without it',
    ]);
    expect(writes).toBe(1);
  });

  it('gives up a stdout whose reader takes nothing, once, and closing does not wait for it', async () => {
    // Never calls back: nothing written is ever taken.
    const stuck = new Writable({ highWaterMark: 16, write: () => {} });
    const notes: string[] = [];
    const s = EventStream.open('-', (m) => notes.push(m), stuck, { readerWaitMs: 300 });
    for (let i = 0; i < 5; i++) s.write({ type: 'x', at: i });
    await s.close();
    expect(notes).toEqual([
      '--events stdout: cannot write the event stream: its reader took nothing for 0.3 s; the run goes on without it',
    ]);
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

describe('EventStream to a FIFO', () => {
  const fifo = (name: string): string => {
    const path = join(dir, name);
    execFileSync('mkfifo', [path]);
    return path;
  };

  it('gives up a FIFO that no reader opens, once, without blocking', async () => {
    const path = fifo('nobody');
    const notes: string[] = [];
    const s = EventStream.open(path, (m) => notes.push(m), undefined, { readerWaitMs: 300 });
    s.write({ type: 'x', at: 0 });
    await s.close();
    expect(notes).toEqual([
      `--events ${path}: cannot write the event stream: no reader opened the FIFO within 0.3 s; the run goes on without it`,
    ]);
  });

  it('writes to a reader that reads, however late it opened within the wait', async () => {
    const path = fifo('reader');
    const s = EventStream.open(path, () => {}, undefined, { readerWaitMs: 120_000 });
    s.write({ type: 'a', at: 0 });
    // The reader comes after the first event; the event waited for it.
    const reader = spawn('cat', [path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let got = '';
    reader.stdout.on('data', (c: Buffer) => (got += c.toString()));
    const ended = new Promise((resolve) => reader.on('close', resolve));
    s.write({ type: 'b', at: 1 });
    await s.close();
    await within(ended, WAIT_MS, 'the reader (cat) to reach the end of the stream');
    expect(got).toBe('{"v":1,"type":"a","at":0}\n{"v":1,"type":"b","at":1}\n');
  });

  it('drops a reader that takes nothing, once, and closing does not wait for it', async () => {
    const path = fifo('stuck');
    // Open for reading and never read: the FIFO fills up.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const notes: string[] = [];
      const s = EventStream.open(path, (m) => notes.push(m), undefined, { readerWaitMs: 300 });
      const big = 'x'.repeat(4096);
      for (let i = 0; i < 200; i++) s.write({ type: 'x', at: i, big });
      await s.close();
      expect(notes).toEqual([
        `--events ${path}: cannot write the event stream: its reader took nothing for 0.3 s; the run goes on without it`,
      ]);
    } finally {
      closeSync(fd);
    }
  });
});
