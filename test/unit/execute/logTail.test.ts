import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostRunner } from '../../../src/execute/attempt.js';
import { LOG_KEPT } from '../../../src/tuning.js';
import { LocalSession } from '../../../src/hosts/localSession.js';
import { parseFrameSpec } from '../../../src/plan/frames.js';
import { Plan } from '../../../src/plan/plan.js';
import type { AttemptSlot, AttemptOutcome } from '../../../src/scheduler/scheduler.js';

// A renderer's output is kept as its tail: read at an offset, never whole (the same over SSH:
// test/integration/bounds.test.ts).

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-log-tail-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
});

const slot: AttemptSlot = { lane: 0, started: () => {} };

async function attempt(script: string): Promise<AttemptOutcome> {
  const plan = new Plan({
    frames: parseFrameSpec('1'),
    exec: 'sh',
    args: ['-c', script],
    ins: [],
    outs: [],
    hostNames: ['local'],
  });
  const session = await LocalSession.open('local', join(dir, 'work'), {}, 1, 0);
  try {
    const runner = new HostRunner(session, 1, { plan, logDir: join(dir, 'logs'), graceMs: 0 });
    return await runner.run(plan.tasks[0]!, 1, new AbortController().signal, slot);
  } finally {
    await session.close();
  }
}

describe("an attempt's log", () => {
  it('of a renderer that wrote 5 GB (sparse) keeps its last bytes, says how many were cut, and the failure shows its last words', async () => {
    // The log is the renderer's stdout: truncate makes it 5 GB of holes, and >> writes after them.
    const outcome = await attempt('truncate -s 5G /dev/stdout && echo "last words" >>/dev/stdout; exit 3');
    expect(outcome).toMatchObject({ kind: 'failed', failure: { stage: 'render', exitCode: 3 } });
    const failed = outcome as Extract<AttemptOutcome, { kind: 'failed' }>;
    expect(failed.message).toMatch(/exited with status 3 .*; last output:\n[^]*last words$/);
    const size = 5 * 1024 ** 3 + 'last words\n'.length;
    expect(statSync(failed.log!).size).toBeLessThan(LOG_KEPT + 1024);
    const text = readFileSync(failed.log!, 'latin1');
    expect(text).toContain(
      `# output cut: its first ${size - LOG_KEPT} bytes of ${size} are not kept, only the last ${LOG_KEPT}\n`,
    );
    expect(text).toMatch(/last words\n\n# exit status: 3\n$/);
  });

  it('of a renderer that wrote little is kept whole, with no word of cutting', async () => {
    const outcome = await attempt('echo "all of it"; exit 3');
    const failed = outcome as Extract<AttemptOutcome, { kind: 'failed' }>;
    const text = readFileSync(failed.log!, 'utf8');
    expect(text).toContain('all of it\n');
    expect(text).not.toContain('output cut');
  });
});
