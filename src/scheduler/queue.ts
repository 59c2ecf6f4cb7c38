/**
 * The queue of tasks waiting for a slot: fresh ones in plan order, those put
 * back (retries, a lost host's) at the front, and which of them a host's
 * slot may take. With --chunk it also counts the frames queued, since a
 * queued chunk is as many tasks as a slot takes frames at a time.
 */
import type { ActiveHost } from './farm.js';
import { Fifo } from './fifo.js';
import type { HostStates } from './hostStates.js';
import type { Task } from '../plan/plan.js';
import type { Chunks, TaskRecord } from './types.js';

/** candidate(): the first fresh task (never tried), or none. */
export const FRESH = -1;
export const NONE = -2;

export function framesIn(t: Task): number {
  return t.chunk?.count ?? 1;
}

export class TaskQueue {
  private readonly fifo = new Fifo<TaskRecord>();
  /** With --chunk: the frames of the queued chunks. */
  private frames = 0;

  constructor(
    private readonly chunks: Chunks | undefined,
    /** The hosts in the run now, and the hosts the run still counts on: where a task that failed may go. */
    private readonly usable: ReadonlySet<ActiveHost>,
    private readonly states: HostStates,
  ) {}

  get length(): number {
    return this.fifo.length;
  }

  /** No task has been put back: every queued one is fresh. */
  get allFresh(): boolean {
    return this.fifo.front.length === 0;
  }

  /** Tasks in the queue, for its pace: with --chunk, its frames over the frames a task takes now. */
  get tasks(): number {
    return this.chunks === undefined
      ? this.fifo.length
      : Math.max(this.fifo.length, this.frames / this.chunks.frames());
  }

  /** A fresh task, at the back. */
  push(rec: TaskRecord): void {
    this.fifo.push(rec);
    if (this.chunks) this.frames += framesIn(rec.task);
  }

  /** A task back at the front (a retry, a lost host's, the rest of a split chunk). */
  putBack(rec: TaskRecord): void {
    this.fifo.unshift(rec);
    if (this.chunks) this.frames += framesIn(rec.task);
  }

  /** Empties the queue: its tasks, front first. */
  drain(): TaskRecord[] {
    this.frames = 0;
    return this.fifo.drain();
  }

  /**
   * The first queued task `a` may take (`queued`: queue behind its running
   * one). A task goes back to a host it failed on only when no other host can
   * take it, now or once the hosts still connecting are up. Tasks never tried
   * are all alike here: only the first of them is looked at.
   */
  candidate(a: ActiveHost, queued: boolean): number {
    const front = this.fifo.front;
    for (let i = front.length - 1; i >= 0; i--) if (this.may(front[i]!, a, queued)) return i;
    const rec = this.fifo.peekPushed();
    return rec && this.may(rec, a, queued) ? FRESH : NONE;
  }

  /** The task candidate() found. */
  at(i: number): TaskRecord {
    return i === FRESH ? this.fifo.peekPushed()! : this.fifo.front[i]!;
  }

  /** Takes the task candidate() found out of the queue. */
  take(i: number): TaskRecord {
    const rec = i === FRESH ? this.fifo.shiftPushed()! : this.fifo.front.splice(i, 1)[0]!;
    if (this.chunks) this.frames -= framesIn(rec.task);
    return rec;
  }

  /** A slot took `part`, the first frames of a queued chunk (the rest stays queued). */
  tookPart(part: Task): void {
    this.frames -= framesIn(part);
  }

  private may(r: TaskRecord, a: ActiveHost, queued: boolean): boolean {
    return (
      this.mayRunOn(r, a) &&
      (!queued ||
        (a.host.canQueue?.(this.chunks ? (this.chunks.carve(r.task, a.host.name, -1)?.taken ?? r.task) : r.task) ??
          true))
    );
  }

  private mayRunOn(r: TaskRecord, a: ActiveHost): boolean {
    if (!r.failedOn.has(a.host.name)) return true;
    if (this.states.pending > 0 || r.failedOn.size < this.usable.size) return false;
    for (const u of this.usable) if (!r.failedOn.has(u.host.name)) return false;
    return true;
  }
}
