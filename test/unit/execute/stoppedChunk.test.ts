import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HostRunner } from '../../../src/execute/attempt.js';
import { KEEP_FINISHED_MS } from '../../../src/tuning.js';
import type { HostSession } from '../../../src/hosts/session.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import { RUN_STOPPED, type AttemptSlot } from '../../../src/scheduler/scheduler.js';
import { WAIT_MS, within } from '../../helpers/wait.js';

// A chunk whose frames are being brought back when the run is stopped keeps, for KEEP_FINISHED_MS,
// bringing back what is finished. When that bound ends the download under way, the frames that had
// already come in are in place here, complete: the attempt must say they are done. It said only
// 'cancelled', so the report and the summary counted as not done frames whose files were there.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-stopped-chunk-'));
});
afterEach(() => {
  vi.useRealTimers();
  rmSync(dir, { recursive: true, force: true });
});

describe('a chunk being brought back when the run is stopped', () => {
  it('counts done the frames already in place when the bound stops the rest', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const plan = new Plan({
      frames: parseFrameSpec('1,2'),
      exec: 'r',
      args: ['%{first}', '%{last}'],
      ins: [],
      outs: [`f%d.exr=${dir}/f%d.exr`],
      hostNames: ['fake'],
      chunk: 2,
    });
    let second!: () => void;
    const secondAsked = new Promise<void>((r) => (second = r));
    const session = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () =>
        Promise.resolve({
          token: 'tok',
          fileOp: (_op: string, paths: readonly string[]) => Promise.resolve(paths.map(() => 'done')),
          run: () => Promise.resolve({ code: 0, wrote: false, outputs: ['file', 'file'] }),
          forget: () => {},
        }),
      // Frame 1 comes at once; frame 2 is large, and is still coming when the bound ends.
      fetchFile: (path: string, local: string, options: { signal?: AbortSignal } = {}) => {
        if (path === 'f1.exr') {
          writeFileSync(local, 'frame 1', { flag: 'wx' });
          return Promise.resolve(7);
        }
        second();
        return new Promise<number>((_resolve, reject) =>
          options.signal?.addEventListener('abort', () => reject(new Error('the transfer was stopped'))),
        );
      },
    } as unknown as HostSession;
    const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
    const stop = new AbortController();
    let released = false;
    const slot: AttemptSlot = { lane: 0, started: () => {}, released: () => (released = true) };
    const outcome = runner.run(plan.chunkTask(1, 2, 0), 1, stop.signal, slot);
    await within(secondAsked, WAIT_MS, "the chunk's second frame to be fetched");
    expect(released).toBe(true);
    stop.abort(RUN_STOPPED);
    await vi.advanceTimersByTimeAsync(KEEP_FINISHED_MS);
    const ended = await outcome;
    expect(readFileSync(join(dir, 'f1.exr'), 'utf8')).toBe('frame 1');
    expect(existsSync(join(dir, 'f2.exr'))).toBe(false);
    expect(ended).toMatchObject({ kind: 'cancelled', done: [1] });
  }, 20_000);
});
