/**
 * A farm of fake hosts on fake time (vi.useFakeTimers) for the scheduler's
 * tests that fold its events: hosts whose attempts take and end as a
 * behaviour says, and a seeded random generator for farms made at random.
 */
import type { Task } from '../../src/plan/plan.js';
import { isRunStop, type AttemptOutcome, type AttemptSlot, type SchedulerHost } from '../../src/scheduler/scheduler.js';

export type Final = AttemptOutcome;

/** What an attempt does: how long its renderer takes, then its outcome; `hang` never ends by itself. */
export interface Act {
  ms: number;
  outcome?: Final | 'hang';
  /** The renderer ends (slot released) after `ms`, its outputs come this much later. */
  fetchMs?: number;
  /** Goes on to its outcome though aborted (a losing copy whose host does not listen). */
  deaf?: boolean;
  /** A chunk's frames complete when the whole run is stopped (see isRunStop): kept, as a stopped run keeps what is finished. */
  stoppedDone?: readonly number[];
}

export type Behaviour = (task: Task, attempt: number) => Act;

/**
 * A host of fake time. Each slot runs its attempts one after another; with
 * `queues` an attempt given to a busy slot waits there and says it started
 * when its turn comes.
 */
export class FakeHost implements SchedulerHost {
  private readonly lanes: Array<Promise<unknown>> = [];
  constructor(
    readonly name: string,
    readonly slots: number,
    private readonly behave: Behaviour,
    readonly queues = false,
  ) {}

  run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    const before = this.lanes[slot.lane] ?? Promise.resolve();
    // The slot's next attempt goes on once this one has released the slot, or ended.
    let free = (): void => {};
    this.lanes[slot.lane] = new Promise<void>((resolve) => (free = resolve));
    const mine = before.then(() => this.render(task, attempt, signal, slot, free));
    mine.then(free, free);
    return mine;
  }

  private async render(
    task: Task,
    attempt: number,
    signal: AbortSignal,
    slot: AttemptSlot,
    free: () => void,
  ): Promise<AttemptOutcome> {
    if (signal.aborted) return { kind: 'cancelled' };
    slot.started();
    const act = this.behave(task, attempt);
    const aborted = await wait(act.outcome === 'hang' ? Infinity : act.ms, act.deaf ? undefined : signal);
    if (aborted)
      return act.stoppedDone?.length && isRunStop(signal)
        ? { kind: 'cancelled', done: act.stoppedDone }
        : { kind: 'cancelled' };
    const outcome: Final =
      act.outcome === undefined || act.outcome === 'hang' ? { kind: 'done', bytes: { in: 1, out: 2 } } : act.outcome;
    if (act.fetchMs === undefined) return outcome;
    free();
    slot.released?.();
    return (await wait(act.fetchMs, signal)) ? { kind: 'cancelled' } : outcome;
  }
}

/** Resolves after `ms` of fake time (never for Infinity): true when `signal` aborted it first. */
export function wait(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const t = Number.isFinite(ms) ? setTimeout(() => resolve(false), ms) : undefined;
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** A seeded generator of numbers in [0, 1) (mulberry32): the same seed, the same farm. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
