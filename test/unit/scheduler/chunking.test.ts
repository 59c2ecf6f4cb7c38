import { describe, expect, it } from 'vitest';
import { carvePart, splitRecords } from '../../../src/scheduler/chunking.js';
import { NO_HOSTS, newTaskRecord, type AttemptFailure } from '../../../src/scheduler/types.js';
import { tasks } from '../../helpers/scheduler.js';

// The records only: which frames a part holds is Chunks' business (see test/unit/plan/chunks.test.ts).
const all = tasks(3);
const [t1, t2, t3] = [all[0]!, all[1]!, all[2]!];
const failure: AttemptFailure = {
  stage: 'render',
  exitCode: 1,
  signal: null,
  timedOut: false,
  stalled: false,
  notFound: false,
};

/** A chunk that failed once on `a` already. */
function failedOnce() {
  const rec = newTaskRecord(t1);
  rec.attempts = 1;
  rec.failedOn = new Set(['a']);
  rec.error = 'earlier';
  rec.failure = failure;
  rec.copies = 2;
  return rec;
}

describe('carvePart', () => {
  it("gives the part taken the chunk's history, and leaves the chunk queued as the rest", () => {
    const rec = failedOnce();
    rec.partial = 1;
    const part = carvePart(rec, t2, t3);
    expect(rec.task).toBe(t3);
    expect(part).toMatchObject({ task: t2, status: 'pending', attempts: 1, partial: 1, error: 'earlier', failure });
    expect(part.failedOn).toBe(rec.failedOn);
    expect(part.copies).toBe(0);
  });
});

describe('splitRecords', () => {
  const by = { host: 'b', attempt: 3, start: 1000, now: 3000 };

  it('makes the first part the chunk itself; a part done is won by the attempt, a part left carries its failure, not against its retries', () => {
    const rec = failedOnce();
    const [first, second] = splitRecords(
      rec,
      [
        { task: t2, done: true },
        { task: t3, done: false },
      ],
      by,
      { kind: 'failed', message: 'frame 3 missing', log: 'b.log', failure },
    );
    if (!first || !second) throw new Error('two parts expected');
    expect(first).toBe(rec);
    expect(first).toMatchObject({
      task: t2,
      host: 'b',
      attempts: 2,
      error: undefined,
      failure: undefined,
      won: { host: 'b', attempt: 3 },
    });
    expect(second).toMatchObject({
      task: t3,
      host: 'b',
      attempts: 2,
      partial: 1,
      error: 'frame 3 missing',
      log: 'b.log',
      failure,
      won: null,
    });
    expect([...second.failedOn]).toEqual(['a', 'b']);
    expect(second.startedAt).toBe(1000);
    expect(second.endedAt).toBe(3000);
    expect(second.seconds).toBe(2);
    expect(second.copies).toBe(2);
  });

  it('leaves the parts of a chunk stopped with the run what its earlier attempts said (its host is not blamed)', () => {
    const rec = newTaskRecord(t1);
    const [, left] = splitRecords(
      rec,
      [
        { task: t2, done: true },
        { task: t3, done: false },
      ],
      by,
      { kind: 'cancelled' },
    );
    if (!left) throw new Error('two parts expected');
    expect(left).toMatchObject({ attempts: 1, partial: 1, error: undefined, failure: undefined });
    expect(left.failedOn).toBe(NO_HOSTS);
  });
});
