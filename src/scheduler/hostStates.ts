import type { ConnectionFailure } from '../errors.js';

/**
 * A host's state in a run, in one place: every change goes through
 * HostStates.move, which knows the moves that make sense, keeps the count of
 * hosts the run still counts on, and says when a move came too late (from a
 * connection that is no longer the host's).
 *
 *   connecting    its first connection is being made (the run counts on it)
 *   reconnecting  it was lost, or its inventory entry changed: a new
 *                 connection is being made (the run counts on it)
 *   ok            ready: its slots take tasks
 *   lost          its connection was lost and it has not come back (it is
 *                 retried, but the run no longer waits for it)
 *   blocked       taken out after failing different tasks in a row
 *   removed       taken out of the inventory during the run: it takes no
 *                 new task and leaves once its running ones end
 *   cancelled     the run was stopped (or ended) before or while it was used
 *   done          it was usable until the run ended, and was closed
 * and why it never became usable, with the ConnectionError that said so
 * ('unreachable', 'auth failed', 'host key unknown' / 'mismatch' /
 * 'revoked', 'workdir', 'timeout', 'error'); those say with `retry` whether
 * another try can help (see errors.ts).
 *
 * `ok` is the contract's word for ready and `done` for closed.
 */
export type HostState =
  'connecting' | 'reconnecting' | 'ok' | 'blocked' | 'removed' | 'cancelled' | 'done' | ConnectionFailure;

/** States in which the run counts on a host: it does not give up on a task while one of them might still come. */
const COUNTED: ReadonlySet<HostState> = new Set(['connecting', 'reconnecting']);

export function isCounted(state: HostState): boolean {
  return COUNTED.has(state);
}

const TRYING: readonly HostState[] = ['connecting', 'reconnecting', 'ok'];
const REFUSALS: readonly HostState[] = [
  'unreachable',
  'auth failed',
  'host key unknown',
  'host key mismatch',
  'host key revoked',
  'workdir',
  'timeout',
  'lost',
  'error',
];

function movesFrom(list: ReadonlyArray<[HostState, readonly HostState[]]>): Map<HostState, ReadonlySet<HostState>> {
  return new Map(list.map(([from, to]) => [from, new Set(to)]));
}

/**
 * The moves a host can make. Every state but done and cancelled can be
 * stopped (cancelled) or taken out of the inventory (removed). Moving to
 * the same state again only updates the reason (ok excepted: a host is
 * made ready once per connection).
 */
const MOVES: ReadonlyMap<HostState, ReadonlySet<HostState>> = movesFrom([
  // Connecting: ready, or why not; a replaced entry starts again.
  ['connecting', [...TRYING, ...REFUSALS, 'cancelled', 'removed']],
  // Reconnecting: the same, and `lost` when the run stops waiting for it (it is still retried).
  ['reconnecting', [...TRYING, ...REFUSALS, 'cancelled', 'removed']],
  // Ready: lost, taken out, its entry changed, or the run ends with it.
  ['ok', ['lost', 'blocked', 'reconnecting', 'removed', 'done', 'cancelled']],
  // Lost: retried; or given up on for a refusal (a changed host key) found when retried.
  ['lost', ['lost', 'reconnecting', 'connecting', ...REFUSALS, 'removed', 'cancelled']],
  // Taken out: only an edit of its inventory entry brings it back.
  ['blocked', ['reconnecting', 'removed', 'cancelled']],
  // Removed: only being added back to the inventory.
  ['removed', ['connecting', 'cancelled']],
  ['done', []],
  ['cancelled', []],
  // Never usable: an edit of its entry tries again.
  ...REFUSALS.filter((s) => s !== 'lost').map((s): [HostState, readonly HostState[]] => [
    s,
    [s, 'connecting', 'reconnecting', 'removed', 'cancelled'],
  ]),
]);

/** Whether a host may go from `from` (undefined: not seen yet) to `to`. */
export function canMove(from: HostState | undefined, to: HostState): boolean {
  return from === undefined || (MOVES.get(from)?.has(to) ?? false);
}

/** A host's state and why: read-only to all but HostStates.move. */
export interface HostStateRecord {
  readonly name: string;
  readonly state: HostState;
  /** Why it is in its state, in words (absent for ok). */
  readonly message?: string | undefined;
}

type Writable = { -readonly [K in keyof HostStateRecord]: HostStateRecord[K] };

/**
 * The run's hosts' states. The scheduler owns one; the lifecycle moves hosts
 * through the scheduler; the view and the report read the records.
 */
export class HostStates {
  private counted = 0;
  private ready = false;

  constructor(private readonly onRefused?: (name: string, from: HostState, to: HostState) => void) {}

  /** Hosts connecting or reconnecting: while there are any, the run counts on them. */
  get pending(): number {
    return this.counted;
  }

  /** True once any host has been ready. */
  get everReady(): boolean {
    return this.ready;
  }

  /**
   * Moves the host, or says (false) that it cannot: a host that ended cannot
   * move on, and a late word from a connection that is no longer the host's
   * (a failure after the host is ready again) is not taken.
   */
  move(rec: HostStateRecord, to: HostState, message?: string, isNew = false): boolean {
    const from = isNew ? undefined : rec.state;
    if (!canMove(from, to)) {
      this.onRefused?.(rec.name, rec.state, to);
      return false;
    }
    if (from !== undefined && isCounted(from)) this.counted--;
    if (isCounted(to)) this.counted++;
    if (to === 'ok') this.ready = true;
    const w = rec as Writable;
    w.state = to;
    w.message = to === 'ok' ? undefined : message;
    return true;
  }
}
