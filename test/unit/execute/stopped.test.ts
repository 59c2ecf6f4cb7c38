import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostRunner } from '../../../src/execute/attempt.js';
import type { HostSession } from '../../../src/hosts/session.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import type { AttemptSlot } from '../../../src/scheduler/scheduler.js';

// An attempt the scheduler stops (a copy elsewhere replaced it, or won) ends `cancelled` whatever it
// was doing: stopped while its per-task inputs are still being sent, it did not fail, and must not
// use up one of its task's attempts, mark its host as failing that task, or count toward taking the
// host out.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-stopped-attempt-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const slot: AttemptSlot = { lane: 0, started: () => {} };

describe('an attempt stopped while its inputs are being sent', () => {
  it('ends cancelled, not failed', async () => {
    writeFileSync(join(dir, 'in1.txt'), 'scene');
    const plan = new Plan({ frames: parseFrameSpec('1'), exec: 'r', args: [], ins: [`${dir}/in%d.txt=in%d.txt`], outs: [], hostNames: ['fake'] });
    let sending!: () => void;
    const sent = new Promise<void>((r) => (sending = r));
    // A host whose upload goes on until it is stopped, and then fails as an aborted SFTP write does.
    const session = {
      name: 'fake',
      lost: new Promise<Error>(() => {}),
      shell: () => Promise.resolve({ token: 'tok', fileOp: () => Promise.resolve(['done']) }),
      unlink: () => Promise.resolve(),
      putFile: (_local: string, _path: string, _mode: number, _size?: number, signal?: AbortSignal) =>
        new Promise<void>((_resolve, reject) => {
          sending();
          signal?.addEventListener('abort', () => reject(new Error('the transfer was stopped')));
        }),
    } as unknown as HostSession;
    const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
    const stop = new AbortController();
    const running = runner.run(plan.tasks[0]!, 1, stop.signal, slot);
    await sent;
    stop.abort();
    expect(await running).toMatchObject({ kind: 'cancelled' });
  });
});
