import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { ConnectionError, errorMessage } from '../errors.js';
import { LocalSession } from '../hosts/localSession.js';
import type { HostSession } from '../hosts/session.js';
import { SshSession } from '../hosts/sshSession.js';
import type { HostConfig } from '../inventory/types.js';
import type { Plan } from '../plan/plan.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { ConnectContext } from '../ssh/connect.js';
import { LocalHashes, syncInputs } from '../transfer/inputs.js';
import { HostRunner, type AttemptOptions } from './attempt.js';

/** Hosts opening their SSH handshakes at once; OpenSSH's MaxStartups drops more than 10 per server. */
export const CONNECT_CONCURRENCY = 10;
/** Backoff between tries of a host whose handshake was dropped (MaxStartups) or reset. */
const HANDSHAKE_BACKOFF_MS = [250, 500, 1000, 2000, 4000];
/**
 * Tries of a host that never completed a handshake: one that accepts TCP and
 * closes at once is given up after these (about 12 s of backoff), not retried
 * for as long as the run lasts.
 */
const MAX_HANDSHAKE_TRIES = 7;
/** A lost host is waited for this long before the run stops counting on it (it keeps being retried). */
const REJOIN_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

/** Refusals that another try will not change: a host key, a login, a workdir. */
function isPermanent(err: unknown): boolean {
  return err instanceof ConnectionError && err.retry === 'never';
}

/** A dropped or reset handshake, as sshd does past MaxStartups: worth another try soon. */
function isTransient(err: unknown): boolean {
  return err instanceof ConnectionError && err.retry === 'soon';
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

  constructor(
    private readonly scheduler: Scheduler,
    private readonly plan: Plan,
    private readonly ctx: ConnectContext,
    private readonly attempt: Omit<AttemptOptions, 'onOutputs' | 'rejoined'> & {
      verify?: ((task: Parameters<NonNullable<AttemptOptions['onOutputs']>>[0], host: string) => Promise<void>) | undefined;
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

  start(hosts: readonly HostConfig[]): void {
    for (const host of hosts) this.track(this.connectFirst(host));
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
    void p.finally(() => this.pending.delete(p));
  }

  /**
   * Opens a host; a dropped handshake is tried again (with jitter, so retries
   * spread), MAX_HANDSHAKE_TRIES times in all. The run's end gives up at once.
   */
  private async open(host: HostConfig): Promise<HostSession> {
    const signal = this.stopped.signal;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.handshakes.add(
          (): Promise<HostSession> => {
            if (signal.aborted) throw new ConnectionError('error', 'the run ended while it connected');
            return host.local
              ? LocalSession.open(host.name, host.workdir, host.env, host.slots, this.attempt.graceMs / 1000)
              : SshSession.open(host, this.ctx, this.attempt.graceMs / 1000, signal);
          },
        );
      } catch (err) {
        if (!isTransient(err) || signal.aborted) throw err;
        if (attempt + 1 >= MAX_HANDSHAKE_TRIES) {
          throw new ConnectionError('unreachable', `${errorMessage(err)} (gave up after ${MAX_HANDSHAKE_TRIES} tries)`, { cause: err });
        }
        const base = HANDSHAKE_BACKOFF_MS[Math.min(attempt, HANDSHAKE_BACKOFF_MS.length - 1)]!;
        await sleep(base * (0.5 + Math.random()), undefined, { signal: this.stopped.signal }).catch(() => {});
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
        const stats = await syncInputs(session, inputs, this.hashes, this.stopped.signal);
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
    this.sessions.set(host.name, session);
    void session.lost.then((e) => {
      this.scheduler.removeHost(host.name, 'lost', e.message);
      if (!this.stopped.signal.aborted && !this.scheduler.cancelled) this.track(this.rejoin(host));
    });
    const verify = this.attempt.verify;
    const runner = new HostRunner(session, host.slots, {
      ...this.attempt,
      onOutputs: verify ? (task) => verify(task, host.name) : undefined,
      rejoined: (name, ms, signal) => this.rejoined(name, ms, signal),
    });
    this.scheduler.addHost(runner);
    for (const w of [...(this.rejoinWaiters.get(host.name) ?? [])]) w(runner);
  }

  private async connectFirst(host: HostConfig): Promise<void> {
    if (this.scheduler.cancelled) return this.scheduler.hostUnavailable(host.name, 'cancelled', 'the run was cancelled before it connected');
    try {
      await this.join(host);
    } catch (err) {
      if (this.stopped.signal.aborted) this.scheduler.hostUnavailable(host.name, 'cancelled', 'the run ended before it was ready');
      else this.scheduler.hostUnavailable(host.name, err instanceof ConnectionError ? err.state : 'error', errorMessage(err));
    }
  }

  /** A lost host is retried with backoff until it is back or the run ends. */
  private async rejoin(host: HostConfig): Promise<void> {
    const lostAt = Date.now();
    let counted = true;
    this.scheduler.expectHost(host.name, 'reconnecting');
    for (let delay = 1000; !this.stopped.signal.aborted; delay = Math.min(delay * 2, MAX_BACKOFF_MS)) {
      try {
        await sleep(delay, undefined, { signal: this.stopped.signal });
      } catch {
        break;
      }
      try {
        if (!counted) this.scheduler.expectHost(host.name, 'reconnecting');
        counted = true;
        await this.join(host);
        this.ctx.warn(`host ${host.name} is back after ${Math.round((Date.now() - lostAt) / 1000)} s`);
        return;
      } catch (err) {
        if (isPermanent(err)) {
          this.scheduler.hostUnavailable(host.name, (err as ConnectionError).state, errorMessage(err));
          return;
        }
        if (Date.now() - lostAt > REJOIN_WINDOW_MS) {
          // Keep trying, but let the run finish (or fail its tasks) without this host.
          this.scheduler.hostUnavailable(host.name, 'lost', `still unreachable ${Math.round((Date.now() - lostAt) / 1000)} s after it was lost: ${errorMessage(err)}`);
          counted = false;
        } else {
          this.scheduler.hostStillPending(host.name, errorMessage(err));
        }
      }
    }
    if (counted) this.scheduler.hostUnavailable(host.name, 'lost', 'the run ended before it came back');
  }
}
