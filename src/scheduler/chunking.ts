/**
 * With --chunk: the records of chunks as slots take parts of them and as
 * attempts complete some of their frames. The Chunks the run gives (see
 * types.ts) decides the frames; these functions keep each record's history
 * right; the scheduler queues, settles and tells.
 */
import type { Task } from '../plan/plan.js';
import { newTaskRecord, type AttemptOutcome, type TaskRecord } from './types.js';

/**
 * A slot takes `taken`, the first frames of the queued chunk `rec`, which
 * stays queued as `rest`. The part is a record of its own that keeps the
 * chunk's history: a chunk put back after failing keeps it in its parts.
 */
export function carvePart(rec: TaskRecord, taken: Task, rest: Task): TaskRecord {
  rec.task = rest;
  const part = newTaskRecord(taken);
  part.attempts = rec.attempts;
  part.failedOn = rec.failedOn;
  part.partial = rec.partial;
  part.error = rec.error;
  part.failure = rec.failure;
  return part;
}

/** The attempt that split a chunk: where it ran, its number, when its renderer started, when it ended. */
export interface SplitBy {
  readonly host: string;
  readonly attempt: number;
  readonly start: number;
  readonly now: number;
}

/**
 * The records of chunk `rec` split by an attempt that completed some of its
 * frames (`parts`, in frame order, from Chunks.split): the first is `rec`
 * itself, the others new (the caller adds them to the run's records). A part
 * done is won by the attempt; a part not done counts the attempt but not
 * against its retries (TaskRecord.partial: each such attempt leaves fewer
 * frames, so retrying cannot go on for ever), with the attempt's failure, or,
 * for a chunk stopped with the run (not failed: its host is not blamed), what
 * its earlier attempts said.
 */
export function splitRecords(
  rec: TaskRecord,
  parts: ReadonlyArray<{ readonly task: Task; readonly done: boolean }>,
  by: SplitBy,
  outcome: Extract<AttemptOutcome, { kind: 'failed' | 'cancelled' }>,
): TaskRecord[] {
  const failed = outcome.kind === 'failed';
  const failedOn = new Set([...rec.failedOn, by.host]);
  const before = { error: rec.error, log: rec.log, failure: rec.failure, failedOn: rec.failedOn };
  const won = Object.freeze({ host: by.host, attempt: by.attempt });
  const attempts = rec.attempts;
  const partial = (rec.partial ?? 0) + 1;
  return parts.map((p, i) => {
    let r = rec;
    if (i === 0) rec.task = p.task;
    else {
      r = newTaskRecord(p.task);
      r.copies = rec.copies;
    }
    r.host = by.host;
    r.startedAt = by.start;
    r.endedAt = by.now;
    if (r !== rec) r.seconds = (by.now - by.start) / 1000;
    r.attempts = attempts + 1;
    if (p.done) {
      r.error = undefined;
      r.failure = undefined;
      r.won = won;
      return r;
    }
    r.partial = partial;
    r.error = failed ? outcome.message : before.error;
    r.log = failed ? outcome.log : before.log;
    r.failure = failed ? outcome.failure : before.failure;
    r.failedOn = failed ? failedOn : before.failedOn;
    return r;
  });
}
