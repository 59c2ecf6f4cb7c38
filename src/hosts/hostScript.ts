import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import PQueue from 'p-queue';
import { ConnectionError, errorMessage } from '../errors.js';
import type { HostConfig } from '../inventory/types.js';
import { connectEndpoint, describeEndpoint, endClient, type Client, type ConnectContext } from '../ssh/connect.js';
import { execOnce } from '../ssh/exec.js';
import { HostKeyChecker } from '../ssh/hostKeys.js';
import { shellJoin } from '../ssh/quote.js';
import { environmentWithoutSecrets } from './localSession.js';

/**
 * A short `sh` script run once on each host, outside any run (`distray check`
 * probes a host, `distray clean` removes what runs left): the same script by
 * the local `sh` for the local host and by a login shell over SSH for the
 * others, both without distray's secrets in their environment.
 *
 * The script is run as `sh -c SCRIPT NAME ARGS...` and must print, first, an
 * empty line and then the marker it is given (`printf '\n%s\n' "$MARKER"`):
 * whatever the login printed before (a banner, text without a newline, even
 * lines that look like the script's) is not the script's.
 */
export interface HostScript {
  /** The script's text. */
  script: string;
  /** Its $0, such as distray-check: what `ps` shows on the host. */
  name: string;
  /** Its arguments on `host`, whose workdir is `workdir` (made absolute for the local host). */
  args(host: HostConfig, workdir: string, marker: string): string[];
  /** What it reads on its standard input (then end of input). */
  input?: ((host: HostConfig) => string) | undefined;
  /** What it is, for the message when it outlives its deadline: "the probe", "cleaning". */
  what: string;
  deadlineMs: number;
}

/** What became of the script on one host. */
export type HostScriptOutcome =
  | {
      kind: 'ran';
      host: HostConfig;
      /** All it printed (stdout and stderr), the login's bytes included. */
      output: string;
      /** What the script printed after its marker line; undefined when the marker never came. */
      said: string | undefined;
      /** `local`, or the SSH server's software (such as OpenSSH_9.2p1). */
      server: string | undefined;
    }
  | {
      kind: 'failed';
      host: HostConfig;
      /** Why it could not run: a ConnectionError's state (unreachable, auth failed, timeout, ...), cancelled or error. */
      state: string;
      /** Names the endpoint (and its jump host) and what went wrong. */
      message: string;
      server: string | undefined;
    };

export interface RunHostScriptOptions {
  /** How many hosts at once. */
  concurrency?: number | undefined;
  /** Where connection warnings go (accept-new additions, hostKeyPolicy off). */
  warn: (message: string) => void;
  /** Stops every host's script (and connection) at once: those not done fail as cancelled. */
  signal?: AbortSignal | undefined;
}

/** The most hosts `check` and `clean` talk to at once. */
export const HOST_SCRIPT_CONCURRENCY = 10;

/**
 * Runs `s` on every host, `concurrency` at a time, each within its deadline,
 * and gives what became of it on each, in the order of `hosts`. Jump hosts
 * are shared by the hosts behind them and closed at the end.
 */
export async function runHostScript(
  hosts: readonly HostConfig[],
  s: HostScript,
  opts: RunHostScriptOptions,
): Promise<HostScriptOutcome[]> {
  const versions = new Map<string, string>();
  const jumps = new Map<string, Promise<Client>>();
  const ctx: ConnectContext = {
    hostKeys: new HostKeyChecker(),
    warn: opts.warn,
    jumps,
    signal: opts.signal,
    onServerVersion: (ep, v) => versions.set(`${ep.host}:${ep.port}`, v),
  };
  const queue = new PQueue({ concurrency: opts.concurrency ?? HOST_SCRIPT_CONCURRENCY });
  try {
    return await Promise.all(
      hosts.map((host) =>
        queue.add(async (): Promise<HostScriptOutcome> => {
          const server = (): string | undefined => (host.local ? 'local' : versions.get(`${host.host}:${host.port}`));
          try {
            const { output, said } = await runOn(host, s, ctx, opts.signal);
            return { kind: 'ran', host, output, said, server: server() };
          } catch (err) {
            return { kind: 'failed', host, ...failure(host, err, opts.signal), server: server() };
          }
        }),
      ),
    );
  } finally {
    for (const j of jumps.values()) j.then(endClient).catch(() => {});
  }
}

function failure(host: HostConfig, err: unknown, signal: AbortSignal | undefined): { state: string; message: string } {
  if (signal?.aborted) return { state: 'cancelled', message: `${describeEndpoint(host)}: stopped before it finished` };
  const state = err instanceof ConnectionError ? err.state : 'error';
  const message = errorMessage(err);
  // Most connection messages name the endpoint already; a jump host's path is worth adding.
  return {
    state,
    message: host.jump || !message.includes(host.host) ? `${describeEndpoint(host)}: ${message}` : message,
  };
}

async function runOn(
  host: HostConfig,
  s: HostScript,
  ctx: ConnectContext,
  signal: AbortSignal | undefined,
): Promise<{ output: string; said: string | undefined }> {
  signal?.throwIfAborted();
  const marker = `${s.name}-${randomBytes(8).toString('hex')}`;
  const input = s.input?.(host) ?? '';
  let client: Client | undefined;
  try {
    // The deadline is the script's: connecting has deadlines of its own.
    if (!host.local) client = await connectEndpoint(host, ctx);
    const workdir = host.local ? resolve(host.workdir) : host.workdir;
    const argv = ['-c', s.script, s.name, ...s.args(host, workdir, marker)];
    const output = await withDeadline(s, signal, (stop) =>
      client
        ? untilAborted(
            execOnce(client, `exec sh ${shellJoin(argv)}`, input).then((r) => r.output),
            stop,
          )
        : runLocal(argv, input, stop),
    );
    const at = output.indexOf(`${marker}\n`);
    return { output, said: at < 0 ? undefined : output.slice(at + marker.length + 1) };
  } finally {
    // Ending the connection ends the script's channel too, if it is still running.
    if (client) endClient(client);
  }
}

/** `work` given one signal that its deadline and the caller's signal both abort (the deadline with a timeout error). */
async function withDeadline<T>(
  s: HostScript,
  signal: AbortSignal | undefined,
  work: (stop: AbortSignal) => Promise<T>,
): Promise<T> {
  signal?.throwIfAborted();
  const stop = new AbortController();
  const deadline = setTimeout(
    () => stop.abort(new ConnectionError('timeout', `${s.what} did not finish within ${s.deadlineMs / 1000} s`)),
    s.deadlineMs,
  );
  const onAbort = (): void => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await work(stop.signal);
  } finally {
    clearTimeout(deadline);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** `sh ARGV` here, with `input` on its stdin: all it printed, or the signal's reason once it is aborted (the shell is killed). */
function runLocal(argv: string[], input: string, signal: AbortSignal): Promise<string> {
  return new Promise((done, fail) => {
    // Without distray's secrets: nothing distray starts gets them.
    const child = spawn('sh', argv, { stdio: ['pipe', 'pipe', 'pipe'], env: environmentWithoutSecrets() });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const onAbort = (): void => {
      child.kill();
      fail(abortReason(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => fail(err));
    child.on('close', () => {
      signal.removeEventListener('abort', onAbort);
      done(output);
    });
    child.stdin.on('error', () => {}); // a script that exits without reading all of it
    child.stdin.end(input);
  });
}

/** `work`, or the signal's reason as soon as it is aborted. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((done, fail) => {
    const onAbort = (): void => fail(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    void work.then(done, fail).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Why `signal` was aborted, as an Error (the deadline's ConnectionError, or the caller's reason). */
function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('stopped');
}
