import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { ConnectionError, LocalFault, errorMessage } from '../errors.js';
import { LocalSession } from '../hosts/localSession.js';
import type { HostSession } from '../hosts/session.js';
import { SshSession } from '../hosts/sshSession.js';
import type { HostConfig } from '../inventory/types.js';
import type { Plan } from '../plan/plan.js';
import type { AttemptOutcome, AttemptSlot, Scheduler, SchedulerHost } from '../scheduler/scheduler.js';
import {
  CONNECT_CONCURRENCY,
  HANDSHAKE_BACKOFF_MS,
  MAX_BACKOFF_MS,
  MAX_HANDSHAKE_TRIES,
  REJOIN_WINDOW_MS,
} from '../tuning.js';
import type { Task } from '../plan/plan.js';
import { download } from '../transfer/copies.js';
import type { ConnectContext } from '../ssh/connect.js';
import { LocalHashes, syncInputs } from '../transfer/inputs.js';
import { HostRunner, type AttemptOptions } from './attempt.js';

/** Refusals that another try will not change: a host key, a login, a workdir. */
function isPermanent(err: unknown): boolean {
  return err instanceof ConnectionError && err.retry === 'never';
}

/** A dropped or reset handshake, as sshd does past MaxStartups: worth another try soon. */
function isTransient(err: unknown): boolean {
  return err instanceof ConnectionError && err.retry === 'soon';
}

/** A host's inventory entry was replaced or removed while it connected: it does not join. */
class EntryGone extends Error {}

/**
 * A host as the scheduler sees it, counting the attempts it has been given
 * until they have ended (outputs in): a host that leaves the run closes its
 * connection only once they have.
 */
class TrackedHost implements SchedulerHost {
  private active = 0;
  private waiters: Array<() => void> = [];
  constructor(private readonly runner: HostRunner) {}
  get name(): string {
    return this.runner.name;
  }
  get slots(): number {
    return this.runner.slots;
  }
  get queues(): boolean {
    return this.runner.queues;
  }
  canQueue(task: Task): boolean {
    return this.runner.canQueue(task);
  }
  async run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    this.active++;
    try {
      return await this.runner.run(task, attempt, signal, slot);
    } finally {
      this.ended();
    }
  }
  private ended(): void {
    if (--this.active === 0) for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once every attempt it was given has ended. */
  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** A host in the run: the inventory entry it joined with, its connection, and what the scheduler was given. */
interface Joined {
  readonly config: HostConfig;
  readonly session: HostSession;
  readonly host: TrackedHost;
}

/**
 * Brings hosts into the run and keeps them there: connects them (bounded
 * handshakes, retried when dropped), sends the once-per-host inputs, hands
 * them to the scheduler, and when one is lost reconnects it with backoff so
 * it rejoins the run. Authentication and host key refusals are never retried.
 */
export class HostLifecycle {
  readonly sessions = new Map<string, HostSession>();
  private readonly handshakes = new PQueue({ concurrency: CONNECT_CONCURRENCY });
  private readonly stopped = new AbortController();
  private readonly pending = new Set<Promise<void>>();
  /** Attempts held by a lost connection, waiting for their host to come back (to adopt their tasks). */
  private readonly rejoinWaiters = new Map<string, Set<(runner: HostRunner | undefined) => void>>();
  private readonly hashes = new LocalHashes();
  /**
   * Each host's inventory entry now. Connecting, reconnecting and joining go
   * on only while a host's entry is the one they started with: an edit of the
   * inventory (see update) replaces or removes it.
   */
  private readonly wanted = new Map<string, HostConfig>();
  /** Aborted when an entry is replaced or removed: its connecting and reconnecting give up. */
  private readonly entryAbort = new Map<HostConfig, AbortController>();
  private readonly joined = new Map<string, Joined>();
  /** What went wrong collecting the once-per-host outputs of hosts that left during the run. */
  readonly errors: string[] = [];

  constructor(
    private readonly scheduler: Scheduler,
    private readonly plan: Plan,
    private readonly ctx: ConnectContext,
    private readonly attempt: Omit<AttemptOptions, 'onOutputs' | 'rejoined'> & {
      verify?:
        ((task: Parameters<NonNullable<AttemptOptions['onOutputs']>>[0], host: string) => Promise<void>) | undefined;
      /** Files copied once per host: its inputs as it joins, its outputs as it leaves. */
      onHostFiles?:
        | ((host: string, direction: 'in' | 'out', copied: { files: number; bytes: number; seconds: number }) => void)
        | undefined;
    },
  ) {}

  /** The runner of `host` once it has rejoined the run, if that happens within `withinMs`. */
  private rejoined(host: string, withinMs: number, signal: AbortSignal): Promise<HostRunner | undefined> {
    if (this.stopped.signal.aborted || signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiters = this.rejoinWaiters.get(host) ?? new Set();
      this.rejoinWaiters.set(host, waiters);
      // An attempt that is stopped (a copy elsewhere won, or the run is over) stops waiting too.
      const onAbort = (): void => done(undefined);
      const done = (runner: HostRunner | undefined): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        waiters.delete(done);
        resolve(runner);
      };
      const timer = setTimeout(() => done(undefined), withinMs);
      signal.addEventListener('abort', onAbort, { once: true });
      waiters.add(done);
    });
  }

  /** Connects the run's first hosts (the scheduler counts on them already). */
  start(hosts: readonly HostConfig[]): void {
    for (const host of hosts) {
      this.wanted.set(host.name, host);
      this.track(this.connectFirst(host, true));
    }
  }

  /** The hosts of the inventory as it is now (after the edits made during the run). */
  current(): HostConfig[] {
    return [...this.wanted.values()];
  }

  /**
   * The inventory was edited during the run: hosts added connect and take
   * tasks; hosts removed take no new task, finish what they were given (it is
   * not stopped) and leave; a host whose entry changed (slots, port, user,
   * ...) does the same on its old connection while a new one, with the new
   * entry, takes its next tasks. The remote host shells share their lease
   * files, so a host runs no more than its new slot count once the old
   * connection's tasks have ended.
   */
  update(diff: {
    added: readonly HostConfig[];
    removed: readonly HostConfig[];
    changed: ReadonlyArray<{ after: HostConfig }>;
  }): void {
    // Once every task has ended, an edit has nothing to change (a host joining now would only be cancelled).
    if (this.stopped.signal.aborted || this.scheduler.cancelled || this.scheduler.done) return;
    for (const h of diff.removed)
      this.retire(
        h.name,
        'removed',
        'removed from the inventory: it takes no new task and leaves once its running ones end',
      );
    for (const { after } of diff.changed) {
      // Counted on before the old entry is taken out, so the run never sees a moment without it.
      this.scheduler.expectHost(after.name, 'reconnecting', 'its inventory entry changed');
      this.retire(
        after.name,
        'reconnecting',
        'its inventory entry changed: its running tasks finish, a new connection takes the next ones',
      );
      this.wanted.set(after.name, after);
      this.track(this.connectFirst(after, true));
    }
    for (const h of diff.added) this.add(h);
  }

  private add(host: HostConfig): void {
    this.wanted.set(host.name, host);
    this.track(this.connectFirst(host));
  }

  /** The host's entry is gone: whatever it was doing to join stops, and a joined host leaves after its running tasks. */
  private retire(name: string, state: 'removed' | 'reconnecting', message: string): void {
    const entry = this.wanted.get(name);
    if (entry === undefined) return;
    this.wanted.delete(name);
    this.entryAbort.get(entry)?.abort();
    this.entryAbort.delete(entry);
    // Attempts waiting for the old entry's connection to come back give up now (their tasks go back to the queue).
    for (const w of [...(this.rejoinWaiters.get(name) ?? [])]) w(undefined);
    const j = this.joined.get(name);
    // Not joined (connecting, or lost and being retried): that stops now, and says so itself.
    if (!j || j.config !== entry) return;
    this.joined.delete(name);
    if (this.sessions.get(name) === j.session) this.sessions.delete(name);
    this.scheduler.removeHost(name, state, message);
    this.track(this.farewell(j));
  }

  /** A host that left the inventory: once what it runs has ended, its once-per-host outputs come back and it disconnects. */
  private async farewell(j: Joined): Promise<void> {
    await j.host.idle();
    const name = j.config.name;
    let lost = false;
    void j.session.lost.then(() => (lost = true));
    await Promise.resolve();
    if (!lost && !this.scheduler.cancelled) await this.collectHostOutputs(name, j.session);
    await j.session.close();
    // A changed entry goes on under the same name on its new connection.
    this.ctx.warn(
      this.wanted.has(name)
        ? `host ${name}: its old connection is closed (its tasks there are done)`
        : `host ${name} left the run (its tasks are done)`,
    );
  }

  /**
   * Fetches the host's once-per-host outputs (after its last task); what
   * fails is kept in `errors`, and what came is told as a host-files event.
   */
  async collectHostOutputs(name: string, session: HostSession, signal?: AbortSignal): Promise<void> {
    const copies = this.plan.hostOuts(name);
    if (copies.length === 0) return;
    const started = performance.now();
    let files = 0;
    let bytes = 0;
    for (const copy of copies) {
      try {
        bytes += await download(session, copy, { signal });
        files++;
      } catch (err) {
        // This machine's disk, not the host's outputs: the run stops (nothing more can be written here).
        if (err instanceof LocalFault && this.attempt.onLocalFault) {
          this.attempt.onLocalFault(err);
          break;
        }
        this.errors.push(`${name}: ${errorMessage(err)}`);
      }
    }
    this.attempt.onHostFiles?.(name, 'out', { files, bytes, seconds: (performance.now() - started) / 1000 });
  }

  private entrySignal(host: HostConfig): AbortSignal {
    let c = this.entryAbort.get(host);
    if (!c) this.entryAbort.set(host, (c = new AbortController()));
    return AbortSignal.any([this.stopped.signal, c.signal]);
  }

  private isWanted(host: HostConfig): boolean {
    return this.wanted.get(host.name) === host;
  }

  /** No more connecting: the run is over. */
  async stop(): Promise<void> {
    this.stopped.abort();
    for (const waiters of this.rejoinWaiters.values()) for (const w of [...waiters]) w(undefined);
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    // No host joins any more: the input archives are not needed.
    await this.hashes.dispose();
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    // Its failure is the caller's (stop() waits for it with allSettled): this chain must not add an unhandled one.
    void p.finally(() => this.pending.delete(p)).catch(() => {});
  }

  /**
   * Opens a host; a dropped handshake is tried again (with jitter, so retries
   * spread), MAX_HANDSHAKE_TRIES times in all. The run's end gives up at once.
   */
  private async open(host: HostConfig): Promise<HostSession> {
    const signal = this.entrySignal(host);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.handshakes.add((): Promise<HostSession> => {
          if (signal.aborted)
            throw this.isWanted(host)
              ? new ConnectionError('error', 'the run ended while it connected')
              : new EntryGone();
          return host.local
            ? LocalSession.open(host.name, host.workdir, host.env, host.slots, this.attempt.graceMs / 1000)
            : SshSession.open(host, this.ctx, this.attempt.graceMs / 1000, signal);
        });
      } catch (err) {
        if (!isTransient(err) || signal.aborted) throw err;
        if (attempt + 1 >= MAX_HANDSHAKE_TRIES) {
          throw new ConnectionError(
            'unreachable',
            `${errorMessage(err)} (gave up after ${MAX_HANDSHAKE_TRIES} tries)`,
            { cause: err },
          );
        }
        const base = HANDSHAKE_BACKOFF_MS[Math.min(attempt, HANDSHAKE_BACKOFF_MS.length - 1)]!;
        await sleep(base * (0.5 + Math.random()), undefined, { signal }).catch(() => {});
      }
    }
  }

  /** Opens, sends the per-host inputs, and hands the host to the scheduler. */
  private async join(host: HostConfig): Promise<void> {
    const session = await this.open(host);
    try {
      const inputs = this.plan.hostIns(host.name);
      if (inputs.length > 0) {
        // The run's end (Ctrl+C, or every task done elsewhere) stops an upload under way.
        const stats = await syncInputs(session, inputs, this.hashes, { signal: this.stopped.signal });
        this.attempt.onHostFiles?.(host.name, 'in', {
          files: stats.sent,
          bytes: stats.bytesSent,
          seconds: stats.seconds,
        });
        const mb = (stats.bytesSent / 1e6).toFixed(1);
        this.ctx.warn(
          `host ${host.name}: inputs: sent ${stats.sent} of ${stats.files} files (${mb} MB) in ${stats.seconds.toFixed(2)} s, ${stats.unchanged} already there unchanged`,
        );
      }
    } catch (err) {
      await session.close();
      throw err;
    }
    if (this.stopped.signal.aborted) {
      await session.close();
      throw new ConnectionError('error', 'the run ended while it connected');
    }
    // A shell of the lost connection may live on, unaware (a silent drop): retire it, so its
    // lanes give up their leases once what they run has ended.
    const previous = this.sessions.get(host.name)?.shellToken;
    if (previous) (await session.shell().catch(() => undefined))?.retire(previous);
    // Checked after the last wait: an edit of the inventory may have removed or replaced the entry meanwhile.
    if (!this.isWanted(host)) {
      await session.close();
      throw new EntryGone();
    }
    this.sessions.set(host.name, session);
    void session.lost.then((e) => {
      // A connection that already left the run (its entry was removed or replaced) is no one's concern.
      if (this.joined.get(host.name)?.session !== session) return;
      this.joined.delete(host.name);
      // Taken out for failing (blocked): only an edit of its inventory entry brings it back, not a new connection.
      if (this.scheduler.hosts.get(host.name)?.state === 'blocked') return;
      this.scheduler.removeHost(host.name, 'lost', e.message);
      if (!this.stopped.signal.aborted && !this.scheduler.cancelled && this.isWanted(host))
        this.track(this.rejoin(host, `connection lost: ${e.message}`));
    });
    const verify = this.attempt.verify;
    const runner = new HostRunner(session, host.slots, {
      ...this.attempt,
      onOutputs: verify ? (task) => verify(task, host.name) : undefined,
      // An attempt of an entry no longer in the inventory does not wait for its connection to come back.
      rejoined: (name, ms, signal) =>
        this.isWanted(host) ? this.rejoined(name, ms, signal) : Promise.resolve(undefined),
    });
    const tracked = new TrackedHost(runner);
    this.joined.set(host.name, { config: host, session, host: tracked });
    if (!this.scheduler.addHost(tracked)) {
      // The run no longer takes it (it was stopped meanwhile).
      this.joined.delete(host.name);
      this.sessions.delete(host.name);
      await session.close();
      throw new ConnectionError('error', 'the run ended while it connected');
    }
    for (const w of [...(this.rejoinWaiters.get(host.name) ?? [])]) w(runner);
  }

  /** `expected`: the scheduler already counts on the host (an entry that replaced another). */
  private async connectFirst(host: HostConfig, expected = false): Promise<void> {
    if (!expected) this.scheduler.expectHost(host.name);
    if (this.scheduler.cancelled)
      return this.scheduler.hostUnavailable(host.name, 'cancelled', 'the run was cancelled before it connected');
    try {
      await this.join(host);
    } catch (err) {
      if (err instanceof EntryGone || !this.isWanted(host)) {
        // Replaced: the new entry's connection goes on and says how it went; removed: it never joins.
        if (!this.wanted.has(host.name))
          this.scheduler.hostUnavailable(host.name, 'removed', 'removed from the inventory while it connected');
      } else if (this.stopped.signal.aborted)
        this.scheduler.hostUnavailable(host.name, 'cancelled', 'the run ended before it was ready');
      else
        this.scheduler.hostUnavailable(
          host.name,
          err instanceof ConnectionError ? err.state : 'error',
          errorMessage(err),
        );
    }
  }

  /** A lost host is retried with backoff until it is back or the run ends. */
  private async rejoin(host: HostConfig, why: string): Promise<void> {
    const lostAt = Date.now();
    this.scheduler.expectHost(host.name, 'reconnecting', why);
    const signal = this.entrySignal(host);
    for (let delay = 1000; !signal.aborted; delay = Math.min(delay * 2, MAX_BACKOFF_MS)) {
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        break;
      }
      try {
        // Counted on again while it is tried (after REJOIN_WINDOW_MS it is not between tries).
        this.scheduler.expectHost(host.name, 'reconnecting', why);
        await this.join(host);
        this.ctx.warn(`host ${host.name} is back after ${Math.round((Date.now() - lostAt) / 1000)} s`);
        return;
      } catch (err) {
        // An edit of the inventory replaced or removed the entry while this try was under way: the
        // name is the new entry's now (its own connection says how it goes), whatever this try says.
        if (err instanceof EntryGone || !this.isWanted(host)) break;
        if (isPermanent(err)) {
          this.scheduler.hostUnavailable(host.name, (err as ConnectionError).state, errorMessage(err));
          return;
        }
        if (Date.now() - lostAt > REJOIN_WINDOW_MS) {
          // Keep trying, but let the run finish (or fail its tasks) without this host.
          this.scheduler.hostUnavailable(
            host.name,
            'lost',
            `still unreachable ${Math.round((Date.now() - lostAt) / 1000)} s after it was lost: ${errorMessage(err)}`,
          );
        } else {
          this.scheduler.expectHost(host.name, 'reconnecting', errorMessage(err));
        }
      }
    }
    // Replaced: the new entry's connection says how it goes.
    if (this.isWanted(host)) this.scheduler.hostUnavailable(host.name, 'lost', 'the run ended before it came back');
    else if (!this.wanted.has(host.name))
      this.scheduler.hostUnavailable(host.name, 'removed', 'removed from the inventory while it was lost');
  }
}
