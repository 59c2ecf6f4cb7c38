import { attemptFacts, refOf, type SchedulerEvent } from './events.js';
import { Attempt, clearStreak, type ActiveHost, type AttemptOwner, type Lane, type TaskRun } from './farm.js';
import { splitRecords } from './chunking.js';
import type { FarmPace } from './pace.js';
import type { SlotLists } from './slots.js';
import type { Expectations } from './speculation.js';
import type { StallWatch } from './stall.js';
import {
  RUN_STOPPED,
  type AttemptOutcome,
  type Chunks,
  type HostRecord,
  type SchedulerOptions,
  type TaskRecord,
} from './types.js';

/**
 * What the attempt lifecycle reaches of the scheduler: the parts it keeps
 * up to date (pace, slot lists, expectations, stall watch), the events it
 * tells, and the notes it leaves for the pass. It decides nothing the pass
 * decides: it records an attempt's facts on its task and host, and says
 * what the pass must look at.
 */
export interface AttemptsContext {
  readonly options: SchedulerOptions;
  /** Every task record: a chunk split by its outcome adds its parts. */
  readonly records: TaskRecord[];
  readonly chunks: Chunks | undefined;
  /** The run's stop (aborted with RUN_STOPPED by cancel()). */
  readonly stop: AbortSignal;
  readonly pace: FarmPace;
  readonly slots: SlotLists;
  readonly expectations: Expectations;
  readonly stall: StallWatch;
  /** True when an event would be heard: events are made only then. */
  observed(): boolean;
  event(e: SchedulerEvent): void;
  /** Emits 'task-end' (the stitcher reads the task's outputs). */
  taskEnd(rec: TaskRecord, host: HostRecord, outcome: AttemptOutcome): void;
  /** Runs `work` with the events it makes held back, and tells `first()` ahead of them (see Scheduler.buffered). */
  tellFirst(work: () => void, first: () => SchedulerEvent): void;
  /** The task goes back to the front of the queue (a note for the pass). */
  requeue(rec: TaskRecord): void;
  /** The host's connection is gone: it leaves the run at once (its state is a fact, not a choice). */
  lost(a: ActiveHost, message: string): void;
  /** Notes for the pass: `a` failed a task (it may be taken out), `a`'s own pace changed. */
  failed(a: ActiveHost, message: string): void;
  repaced(a: ActiveHost): void;
  /** Marks the state dirty and runs the pass. */
  schedule(): void;
}

function internalError(err: unknown): AttemptOutcome {
  return { kind: 'failed', message: `internal error: ${err instanceof Error ? err.message : String(err)}` };
}

/**
 * The attempt lifecycle: send, start, free, end (see the glossary in
 * scheduler.ts). It keeps the attempts that have not ended, by task and by
 * host, the attempt moving each task's outputs into place, and the counts
 * the pass and drained() read. An attempt's end is applied to its task
 * (done, back in the queue, failed after its retries, cancelled with the
 * run) by the rules of --retries, not by a look at the farm: which slot
 * takes what next is the pass's.
 */
export class Attempts {
  /** The attempt moving a task's outputs into place, while it does (see AttemptSlot.claim). */
  readonly claims = new Map<TaskRecord, Attempt>();
  /** Attempts not yet ended, and tasks with at least one of them (not yet settled: see TaskRun.open). */
  running = 0;
  openTasks = 0;
  /** Each task with attempts that have not ended: more than one while a speculative copy races the original. */
  readonly live = new Map<TaskRecord, TaskRun>();
  /** Entries made in `live` so far. */
  private runs = 0;
  /** Attempts whose run has not returned (outputs in, or not), and who waits for there to be none. */
  private unreturned = 0;
  private readonly whenReturned: Array<() => void> = [];
  /** Renders started so far (see oldestOf). */
  private renders = 0;
  /** Failed tasks put back by retry(): the attempts they had used by then, which no longer count against --retries. */
  private readonly retried = new Map<TaskRecord, number>();

  /** What an attempt's AttemptSlot calls reach. */
  private readonly owner: AttemptOwner = {
    started: (att) => this.onStarted(att),
    released: (att) => this.onReleased(att),
    claim: (att) => this.claim(att),
    unclaim: (att) => this.unclaim(att),
  };

  constructor(private readonly ctx: AttemptsContext) {}

  /** `rec`, failed, is put back by retry(): the attempts it has used so far no longer count against --retries. */
  countAfresh(rec: TaskRecord): void {
    this.retried.set(rec, rec.attempts);
  }

  /** Resolves when every attempt has returned. */
  async returned(): Promise<void> {
    while (this.unreturned > 0) await new Promise<void>((resolve) => this.whenReturned.push(resolve));
  }

  /** Sends `rec` to `lane` (behind its running attempt when the lane is busy); `against` makes it a speculative copy. */
  send(lane: Lane, rec: TaskRecord, against?: Attempt): Attempt {
    const { ctx } = this;
    const a = lane.host;
    const behind = lane.sent > 0;
    lane.sent++;
    this.running++;
    let run = this.live.get(rec);
    if (!run) {
      run = { atts: [], open: false, seq: this.runs++ };
      this.live.set(rec, run);
    }
    if (!run.open) {
      run.open = true;
      this.openTasks++;
    }
    const att = new Attempt(this.owner, run, rec, a, lane, ++rec.copies, against !== undefined, ctx.options.now());
    run.atts.push(att);
    att.onHost = a.live.push(att) - 1;
    rec.status = 'running';
    rec.host = a.host.name;
    rec.startedAt = att.start;
    rec.endedAt = null;
    if (ctx.observed()) {
      const task = refOf(rec.task);
      ctx.event({
        type: 'attempt-queued',
        at: att.start,
        task,
        attempt: att.number,
        host: a.host.name,
        lane: lane.index,
        behind,
        speculative: att.speculative,
      });
      if (against) {
        const reason = against.host.takenOut ? 'lost' : 'slow';
        ctx.event({
          type: 'speculation-started',
          at: att.start,
          task,
          attempt: att.number,
          host: a.host.name,
          against: { host: against.host.host.name, attempt: against.number },
          reason,
        });
      }
    }
    ctx.expectations.enter(att);
    this.unreturned++;
    this.run(att);
    ctx.slots.list(lane);
    return att;
  }

  /** AttemptSlot.started: the attempt's renderer has started on its host. */
  private onStarted(att: Attempt): void {
    if (att.rendering || att.ended) return;
    const { ctx } = this;
    const { rec, place: lane, host: a } = att;
    // A queued attempt's time counts from when its renderer started.
    att.start = ctx.options.now();
    att.rendering = true;
    rec.startedAt = att.start;
    // A lane renders one task at a time: its previous one has ended, though its attempt may not have returned yet.
    att.renderSeq = ++this.renders;
    lane.rendering = att;
    ctx.stall.watch(a);
    ctx.expectations.enter(att);
    if (ctx.observed())
      ctx.event({
        type: 'attempt-started',
        at: att.start,
        task: refOf(rec.task),
        attempt: att.number,
        host: a.host.name,
        lane: lane.index,
      });
  }

  /** AttemptSlot.claim. */
  private claim(att: Attempt): boolean {
    const { rec } = att;
    const claimant = this.claims.get(rec);
    // A task settled failed or cancelled while a replaced attempt was still being stopped keeps what it was reported.
    if (
      rec.won !== null ||
      rec.status === 'failed' ||
      rec.status === 'cancelled' ||
      (claimant !== undefined && claimant !== att)
    )
      return false;
    this.claims.set(rec, att);
    return true;
  }

  /** AttemptSlot.unclaim. */
  private unclaim(att: Attempt): void {
    if (this.claims.get(att.rec) === att) this.claims.delete(att.rec);
  }

  /**
   * Runs the attempt on its host. Callbacks rather than an async function:
   * with thousands of attempts in flight, an async frame and its await
   * closures per attempt were much of what each scavenge copied. The steps
   * take the same turns as the awaits did (a host that throws at once is
   * answered at once).
   */
  private run(att: Attempt): void {
    if (this.ctx.stop.aborted) att.controller.abort(RUN_STOPPED);
    let running: Promise<AttemptOutcome>;
    try {
      running = att.host.host.run(att.rec.task, att.number, att.controller.signal, att);
    } catch (err) {
      this.onReturn(att, internalError(err));
      return;
    }
    void Promise.resolve(running).then(
      (outcome) => this.onReturn(att, outcome),
      (err: unknown) => this.onReturn(att, internalError(err)),
    );
  }

  /** AttemptSlot.released: the renderer ended well; the slot is free, and the attempt ends once its outputs are in. */
  private onReleased(att: Attempt): void {
    const { ctx } = this;
    if (att.freed || att.ended) return;
    this.freeSlot(att, true);
    // The slot is free now; the attempt still counts as running until its outputs are in.
    const { rec, host: a } = att;
    if (ctx.observed()) {
      const at = ctx.options.now();
      ctx.event({
        type: 'attempt-ended',
        at,
        task: refOf(rec.task),
        attempt: att.number,
        host: a.host.name,
        outcome: 'released',
        ignored: rec.won !== null,
        attempts: rec.attempts,
        settled: null,
        ...attemptFacts({ kind: 'done' }, (at - att.start) / 1000),
      });
    }
    ctx.schedule();
  }

  /** The host's run() has settled: the slot is free (if released() did not free it already), and the attempt ends. */
  private onReturn(att: Attempt, outcome: AttemptOutcome): void {
    try {
      if (!att.freed) this.freeSlot(att, outcome.kind === 'done');
      this.end(att, outcome);
    } finally {
      this.hasReturned();
    }
  }

  private hasReturned(): void {
    if (--this.unreturned === 0) for (const resolve of this.whenReturned.splice(0)) resolve();
  }

  /** The renderer has ended: its lane is free, and a render that completed times its host. */
  private freeSlot(att: Attempt, succeeded: boolean): void {
    const { ctx } = this;
    const { place: lane, host: a } = att;
    att.freed = true;
    if (lane.rendering === att) lane.rendering = undefined;
    lane.sent--;
    if (att.rendering && succeeded) {
      const ms = ctx.options.now() - att.start;
      const estimate = ctx.pace.timed(a, ms);
      ctx.chunks?.timed(att.rec.task, a.host.name, ms);
      if (estimate < ctx.slots.yieldLeast && ctx.slots.yieldingHosts.has(a)) ctx.slots.yieldLeast = estimate;
    }
    ctx.stall.watch(a);
    ctx.slots.list(lane);
    if (ctx.slots.queueYieldingHosts.has(a)) ctx.repaced(a);
  }

  /** The attempt's outcome is final: it is applied to its task (unless another attempt has won or replaced it). */
  private end(att: Attempt, outcome: AttemptOutcome): void {
    const { ctx } = this;
    const { rec, host: a } = att;
    att.ended = true;
    const last = a.live.pop()!;
    if (last !== att) {
      a.live[att.onHost] = last;
      last.onHost = att.onHost;
    }
    if (this.claims.get(rec) === att) this.claims.delete(rec);
    this.running--;
    const atts = att.run.atts;
    atts.splice(atts.indexOf(att), 1);
    if (atts.length === 0) this.live.delete(rec);
    const stopped = ctx.stop.aborted;
    // Attempts being stopped to make room for a faster copy end ignored: the task goes on only with the others (all of them
    // once the run is stopped), and with the one moving its outputs into place (it may yet be done).
    let others = atts.length;
    if (!stopped) for (const x of atts) if (x.controller.signal.aborted && this.claims.get(rec) !== x) others--;
    // Once a copy has won, the others' outcomes change nothing (a losing copy is being stopped).
    // A copy stopped to make room for a faster one (see Expectations.copyFor) is a losing copy too, unless its result came in complete first.
    const replaced = outcome.kind !== 'done' && att.controller.signal.aborted && !stopped;
    const ignored = rec.won !== null || (rec.status !== 'running' && rec.status !== 'pending') || replaced;
    const at = ctx.options.now();
    // The task as this attempt ran it: a chunk split by its outcome is its first part afterwards.
    const task = rec.task;
    let partial = false;
    const ended = (): SchedulerEvent => {
      const message = outcome.kind === 'failed' || outcome.kind === 'lost' ? outcome.message : undefined;
      const settled =
        !ignored && !partial && (rec.status === 'done' || rec.status === 'failed' || rec.status === 'cancelled')
          ? rec.status
          : null;
      return {
        type: 'attempt-ended',
        at,
        task: refOf(task),
        attempt: att.number,
        host: a.host.name,
        outcome: outcome.kind,
        message,
        ignored,
        attempts: rec.attempts,
        settled,
        ...attemptFacts(outcome, (at - att.start) / 1000),
      };
    };
    if (ignored) {
      // Lost with its host all the same (a copy elsewhere won meanwhile): the report counts it on the task and the host.
      if (outcome.kind === 'lost') rec.lost++;
      if (ctx.observed()) ctx.event(ended());
      if (outcome.kind === 'done') clearStreak(a);
      // A replaced attempt that had claimed the outputs, and failed to move them, was the task's last: it goes back to the queue.
      if (replaced && others === 0 && rec.status === 'running' && rec.won === null) {
        rec.status = 'pending';
        this.close(rec, att.run);
        ctx.requeue(rec);
      }
      ctx.schedule();
      return;
    }
    rec.endedAt = at;
    rec.seconds += (rec.endedAt - att.start) / 1000;
    // A chunk that failed with frames done is split (see splitChunk): it goes on as its parts, none of them final by this attempt.
    // So is one stopped with the run after some of its frames were complete: those are kept, the rest cancelled.
    partial =
      (outcome.kind === 'failed' || outcome.kind === 'cancelled') &&
      outcome.done !== undefined &&
      outcome.done.length > 0 &&
      ctx.chunks !== undefined &&
      others === 0;
    ctx.tellFirst(() => {
      if (partial && (outcome.kind === 'failed' || outcome.kind === 'cancelled')) this.splitChunk(att, outcome);
      else this.applyOutcome(att, outcome, others);
    }, ended);
    if (!partial) ctx.taskEnd(rec, a.record, outcome);
    ctx.schedule();
  }

  /** The outcome of the task's deciding attempt, applied to the task and its host by the rules of --retries. */
  private applyOutcome(att: Attempt, outcome: AttemptOutcome, others: number): void {
    const { ctx } = this;
    const { rec, host: a } = att;
    switch (outcome.kind) {
      case 'done':
        rec.host = a.host.name;
        rec.startedAt = att.start;
        rec.attempts++;
        rec.error = undefined;
        rec.failure = undefined;
        rec.won = Object.freeze({ host: a.host.name, attempt: att.number });
        a.record.tasksDone++;
        clearStreak(a);
        // Its other copies are stopped here, not by the pass: the task is done, so nothing is left to choose (whatever they
        // do now is ignored), and each is told speculation-lost before the task-done that names the winner.
        for (const loser of att.run.atts) {
          // One replaced by a faster copy was told so (speculation-lost replaced) and is being stopped already.
          if (loser.controller.signal.aborted && !ctx.stop.aborted) continue;
          if (ctx.observed())
            ctx.event({
              type: 'speculation-lost',
              at: ctx.options.now(),
              task: refOf(rec.task),
              attempt: loser.number,
              host: loser.host.host.name,
              winner: rec.won,
            });
          loser.controller.abort();
        }
        this.settle(rec, 'done', att.run);
        return;
      case 'cancelled':
        if (others === 0) this.settle(rec, 'cancelled', att.run);
        return;
      case 'lost':
        rec.error = outcome.message;
        rec.lost++;
        if (others === 0) {
          if (ctx.stop.aborted) this.settle(rec, 'cancelled', att.run);
          else {
            rec.status = 'pending';
            this.close(rec, att.run);
            ctx.requeue(rec);
          }
        }
        if (!a.takenOut) ctx.lost(a, outcome.message);
        return;
      case 'failed':
        rec.attempts++;
        rec.error = outcome.message;
        rec.log = outcome.log;
        rec.failure = outcome.failure;
        rec.failedOn = new Set([...rec.failedOn, a.host.name]);
        a.record.failures++;
        a.streak.add(rec.task.index);
        if (others > 0) {
          // Another copy still runs: the task goes on there.
        } else if (ctx.stop.aborted) {
          this.settle(rec, 'cancelled', att.run);
        } else if (rec.attempts - Math.max(rec.partial ?? 0, this.retried.get(rec) ?? 0) > ctx.options.retries) {
          this.settle(rec, 'failed', att.run);
        } else {
          rec.status = 'pending';
          this.close(rec, att.run);
          ctx.requeue(rec);
        }
        ctx.failed(a, outcome.message);
        return;
    }
  }

  /**
   * A chunk that produced some of its frames (see splitRecords): its parts
   * done are settled done, won by this attempt; its parts not done go back
   * to the front of the queue as chunks of their own (or are cancelled with
   * a stopped run).
   */
  private splitChunk(att: Attempt, outcome: Extract<AttemptOutcome, { kind: 'failed' | 'cancelled' }>): void {
    const { ctx } = this;
    const { rec, host: a } = att;
    const host = a.host.name;
    const now = ctx.options.now();
    const from = rec.task;
    let next = ctx.records.length;
    const parts = ctx.chunks!.split(from, new Set(outcome.done), () => next++);
    const records = splitRecords(rec, parts, { host, attempt: att.number, start: att.start, now }, outcome);
    for (const r of records) if (r !== rec) ctx.records.push(r);
    // A chunk stopped with the run did not fail: its host is not blamed.
    if (outcome.kind === 'failed') a.record.failures++;
    if (ctx.observed()) {
      ctx.event({
        type: 'chunk-split',
        at: now,
        task: refOf(from),
        attempt: att.number,
        host,
        parts: parts.map((p) => ({ ...refOf(p.task), done: p.done })),
      });
    }
    const again: TaskRecord[] = [];
    let told = false;
    records.forEach((r, i) => {
      const run = r === rec ? att.run : undefined;
      if (parts[i]!.done) {
        a.record.tasksDone++;
        this.settle(r, 'done', run);
        ctx.taskEnd(r, a.record, { kind: 'done' });
        return;
      }
      if (ctx.stop.aborted) this.settle(r, 'cancelled', run);
      else {
        r.status = 'pending';
        this.close(r, run);
        again.push(r);
      }
      // Said once, of the first part left: the message names every frame done and left.
      if (!told) ctx.taskEnd(r, a.record, outcome);
      told = true;
    });
    // The front of the queue is taken last-in first: the chunk's first run goes first.
    for (const r of again.reverse()) ctx.requeue(r);
  }

  /** The task is settled or back in the queue: the run no longer waits for it. */
  private close(rec: TaskRecord, run = this.live.get(rec)): void {
    if (run?.open) {
      run.open = false;
      this.openTasks--;
    }
  }

  /** `run`: the task's live attempts, when settled by one of them (its entry may have left `live` already). */
  settle(rec: TaskRecord, status: 'done' | 'failed' | 'cancelled', run?: TaskRun): void {
    const { ctx } = this;
    rec.status = status;
    this.close(rec, run);
    if (ctx.observed()) {
      ctx.event({
        type: 'task-done',
        at: ctx.options.now(),
        task: refOf(rec.task),
        status,
        host: rec.host,
        attempts: rec.attempts,
        winner: rec.won,
        copies: rec.copies,
        error: status === 'done' ? undefined : rec.error,
      });
    }
  }
}
