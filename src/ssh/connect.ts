import { readFileSync, statSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { AuthenticationType, Client as ClientType, ConnectConfig } from 'ssh2';
import type { Duplex } from 'node:stream';
import { ConnectionError, errorMessage } from '../errors.js';
import type { Endpoint } from '../inventory/types.js';
import { HostKeyChecker } from './hostKeys.js';
import { hostKeyAlgorithms } from './knownHosts.js';

const { Client, utils } = ssh2;
export type Client = ClientType;

/** The environment variables secrets come from; never the inventory. */
export const PASSPHRASE_ENV = 'DISTRAY_KEY_PASSPHRASE';
export const PASSWORD_ENV = 'DISTRAY_PASSWORD';
/** Never passed on to anything distray starts. */
export const SECRET_ENV_NAMES: readonly string[] = [PASSPHRASE_ENV, PASSWORD_ENV];

/** A silent network drop is noticed after about KEEPALIVE_MS * (KEEPALIVE_COUNT + 1): 30 s (ssh2 gives up on the keepalive after the last one unanswered). */
export const KEEPALIVE_MS = 7_500;
export const KEEPALIVE_COUNT = 3;
export const READY_TIMEOUT_MS = 20_000;
/**
 * How long a connection being closed may take to hand its last bytes to the
 * kernel before it is cut: a host that went silent (stopped, or its network
 * gone) with its receive window full never takes them.
 */
export const CLOSE_WAIT_MS = 2_000;

/**
 * Ends a connection without waiting on the host: the disconnect is sent, and
 * once it is with the kernel (which delivers it, and the end) the socket is
 * closed, rather than waiting for the host's own end, which a silent host
 * never sends (and ssh2 stops its keepalive once a connection is ending, so
 * nothing else would ever end it, nor the run's process with it). A socket
 * that cannot hand its bytes over is cut after CLOSE_WAIT_MS. At the socket:
 * ssh2's destroy() does nothing to a connection it has already ended.
 */
export function endClient(client: Client): void {
  const sock = (client as unknown as { _sock?: Duplex })._sock;
  client.end();
  if (!sock || sock.destroyed) return;
  const cut = setTimeout(() => sock.destroy(), CLOSE_WAIT_MS);
  cut.unref();
  sock.once('close', () => clearTimeout(cut));
  if (sock.writableFinished) sock.destroy();
  else sock.once('finish', () => sock.destroy());
}

export interface ConnectContext {
  hostKeys: HostKeyChecker;
  /** Where warnings go (accept-new additions, hostKeyPolicy off). */
  warn(message: string): void;
  /** Shared connections to jump hosts, so the hosts behind one jump share it. */
  jumps: Map<string, Promise<Client>>;
  signal?: AbortSignal | undefined;
  /** Told the server's software version (such as OpenSSH_9.2p1) as soon as it is known. */
  onServerVersion?: ((ep: Endpoint, version: string) => void) | undefined;
}

/** ssh2 keeps the server's identification in a private field; `check` reports it. */
export function serverVersion(client: Client): string | undefined {
  return (client as unknown as { _remoteVer?: string })._remoteVer;
}

function endpointKey(ep: Endpoint): string {
  return `${ep.user}@${ep.host}:${ep.port}` + (ep.jump ? ` via ${endpointKey(ep.jump)}` : '');
}

export function describeEndpoint(ep: Endpoint): string {
  return `${ep.user}@${ep.host}:${ep.port}` + (ep.jump ? ` (through ${describeEndpoint(ep.jump)})` : '');
}

interface AuthPlan {
  methods: Array<Record<string, unknown> & { type: AuthenticationType }>;
  notes: string[];
}

function authMethods(ep: Endpoint): AuthPlan {
  const methods: AuthPlan['methods'] = [];
  const notes: string[] = [];
  const agent = process.env.SSH_AUTH_SOCK;
  if (agent && !ep.identitiesOnly) methods.push({ type: 'agent', username: ep.user, agent });
  const passphrase = process.env[PASSPHRASE_ENV];
  for (const file of ep.identityFiles) {
    let data: Buffer;
    try {
      // Never a FIFO (or a device): reading one would block the whole run, Ctrl+C included.
      if (!statSync(file).isFile()) throw new Error(`${file} is not a regular file`);
      data = readFileSync(file);
    } catch (err) {
      if (ep.identityFilesRequired)
        notes.push(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
      continue;
    }
    const parsed = utils.parseKey(data, passphrase);
    if (parsed instanceof Error) {
      notes.push(
        /encrypted|passphrase/i.test(parsed.message)
          ? `${file} is encrypted: set ${PASSPHRASE_ENV} to its passphrase${passphrase ? ' (the one set did not decrypt it)' : ''}`
          : `${file}: ${parsed.message}`,
      );
      continue;
    }
    methods.push({ type: 'publickey', username: ep.user, key: Array.isArray(parsed) ? parsed[0] : parsed });
  }
  return { methods, notes };
}

/**
 * Offers the agent and the keys in order; the password (DISTRAY_PASSWORD)
 * only to a host the inventory marks `password: true`, and only once the
 * server has said it takes one after the keys failed: a host whose key
 * works never sees it.
 */
function authHandler(ep: Endpoint, auth: AuthPlan): NonNullable<ConnectConfig['authHandler']> {
  const password = ep.password ? process.env[PASSWORD_ENV] : undefined;
  let next = 0;
  let passwordOffered = false;
  return ((methodsLeft: string[] | null, _partial: boolean | null, done: (m: unknown) => void) => {
    while (next < auth.methods.length) {
      const method = auth.methods[next++]!;
      if (methodsLeft && !methodsLeft.includes('publickey')) continue;
      return done(method);
    }
    if (password && !passwordOffered && methodsLeft?.includes('password')) {
      passwordOffered = true;
      return done({ type: 'password', username: ep.user, password });
    }
    return done(false);
  }) as unknown as NonNullable<ConnectConfig['authHandler']>;
}

/**
 * Opens an authenticated connection to `ep`, through its jump host if it has
 * one. The jump's own connection is shared and opened once.
 */
export async function connectEndpoint(ep: Endpoint, ctx: ConnectContext): Promise<Client> {
  let sock: Duplex | undefined;
  if (ep.jump) {
    const jump = ep.jump;
    const key = endpointKey(jump);
    let jumpClient = ctx.jumps.get(key);
    if (!jumpClient) {
      jumpClient = connectEndpoint(jump, ctx);
      ctx.jumps.set(key, jumpClient);
      // A failed jump is not cached, so a later attempt can try again.
      jumpClient.catch(() => ctx.jumps.delete(key));
    }
    let client: Client;
    try {
      client = await jumpClient;
    } catch (err) {
      if (err instanceof ConnectionError)
        throw new ConnectionError(err.state, `jump host ${describeEndpoint(jump)}: ${err.message}`, {
          cause: err,
          retry: err.retry,
        });
      throw err;
    }
    sock = await new Promise<Duplex>((resolve, reject) => {
      client.forwardOut('127.0.0.1', 0, ep.host, ep.port, (err, stream) => {
        if (err)
          reject(
            new ConnectionError(
              'unreachable',
              `jump host ${jump.host} could not reach ${ep.host}:${ep.port}: ${err.message}`,
            ),
          );
        else resolve(stream);
      });
    });
  }
  // Read here, before the handshake: ssh2 wants the algorithm list up front.
  const knownTypes = await ctx.hostKeys.preferredTypes(ep);
  return connectDirect(ep, ctx, sock, knownTypes);
}

function connectDirect(
  ep: Endpoint,
  ctx: ConnectContext,
  sock: Duplex | undefined,
  knownTypes: string[],
): Promise<Client> {
  const auth = authMethods(ep);
  return new Promise<Client>((resolve, reject) => {
    const client = new Client();
    let refusal: ConnectionError | undefined;
    let settled = false;
    const fail = (err: ConnectionError): void => {
      if (settled) return;
      settled = true;
      ctx.signal?.removeEventListener('abort', onAbort);
      // destroy, not end: a server that never answers would keep a half-closed socket (and the process) alive.
      client.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(new ConnectionError('error', 'the run ended while it connected'));
    if (ctx.signal?.aborted) return onAbort();
    ctx.signal?.addEventListener('abort', onAbort, { once: true });

    if (auth.methods.length === 0 && !(ep.password && process.env[PASSWORD_ENV])) {
      fail(
        new ConnectionError(
          'auth failed',
          `no way to log in as ${ep.user}: no SSH agent (SSH_AUTH_SOCK), no usable identity file (${ep.identityFiles.join(', ') || 'none'})` +
            (auth.notes.length ? `; ${auth.notes.join('; ')}` : ''),
        ),
      );
      return;
    }
    client.on('ready', () => {
      if (settled) return;
      settled = true;
      // Task lines are small and answered at once: Nagle's algorithm would hold a
      // second one until the first is acknowledged (40 ms of delayed ACK each).
      client.setNoDelay(true);
      ctx.signal?.removeEventListener('abort', onAbort);
      resolve(client);
    });
    // An emitter without an error listener crashes the process on a reset: keep one for its whole life.
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      if (refusal) return fail(refusal);
      fail(classify(err, ep, auth));
    });
    client.on('close', () =>
      fail(
        refusal ??
          new ConnectionError('unreachable', `${describeEndpoint(ep)} closed the connection during login`, {
            retry: 'soon',
          }),
      ),
    );

    const config: ConnectConfig = {
      host: ep.host,
      port: ep.port,
      username: ep.user,
      readyTimeout: READY_TIMEOUT_MS,
      keepaliveInterval: KEEPALIVE_MS,
      keepaliveCountMax: KEEPALIVE_COUNT,
      authHandler: authHandler(ep, auth),
      algorithms: { serverHostKey: hostKeyAlgorithms(knownTypes) as never },
      // The callback form: the verdict may wait for known_hosts (a read, or accept-new's
      // lock) without holding up any other host's handshake, keepalive or transfer.
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void): void => {
        const version = serverVersion(client);
        if (version) ctx.onServerVersion?.(ep, version);
        ctx.hostKeys.decide(ep, key).then(
          (decision) => {
            // Said even when the run ended meanwhile: the key is in the file now.
            if (decision.accept && decision.warning) ctx.warn(decision.warning);
            if (settled) return;
            if (decision.accept) {
              verify(true);
              return;
            }
            refusal = new ConnectionError(decision.state, decision.message);
            verify(false);
          },
          (err: unknown) =>
            fail(new ConnectionError('error', `${describeEndpoint(ep)}: checking the host key: ${errorMessage(err)}`)),
        );
      },
      ...(sock ? { sock } : {}),
    };
    try {
      client.connect(config);
    } catch (err) {
      fail(new ConnectionError('error', `${describeEndpoint(ep)}: ${errorMessage(err)}`));
    }
  });
}

function classify(err: Error & { level?: string; code?: string }, ep: Endpoint, auth: AuthPlan): ConnectionError {
  const where = `${ep.user}@${ep.host}:${ep.port}`;
  if (err.level === 'client-authentication') {
    const tried = auth.methods.map((m) => m.type);
    const notes = [...auth.notes];
    if (process.env[PASSWORD_ENV]) {
      if (ep.password) tried.push('password');
      else notes.push(`${PASSWORD_ENV} is set but offered only to hosts with "password: true" in the inventory`);
    }
    return new ConnectionError(
      'auth failed',
      `${where} refused the login (tried ${[...new Set(tried)].join(', ') || 'nothing'}` +
        `${notes.length ? `; ${notes.join('; ')}` : ''}); check the user and that the key is in its authorized_keys`,
    );
  }
  if (/too many authentication failures/i.test(err.message)) {
    return new ConnectionError(
      'auth failed',
      `${where} closed the login after too many authentication failures (its MaxAuthTries): the SSH agent offers its keys first; set identitiesOnly: true to use only the identity files`,
    );
  }
  if (err.level === 'client-timeout')
    return new ConnectionError(
      'timeout',
      `${where} did not complete the SSH handshake within ${READY_TIMEOUT_MS / 1000} s`,
    );
  switch (err.code) {
    case 'ECONNREFUSED':
      return new ConnectionError('unreachable', `${where} refused the connection: is sshd running on port ${ep.port}?`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConnectionError('unreachable', `${ep.host}: no such host (DNS lookup failed)`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new ConnectionError('unreachable', `${where} is unreachable (${err.code})`);
    case 'ETIMEDOUT':
      return new ConnectionError('timeout', `${where} did not answer (connection timed out)`);
  }
  // A handshake the server reset or dropped (sshd past MaxStartups): worth another try soon.
  const dropped = err.code === 'ECONNRESET' || /lost before handshake|reset/i.test(err.message);
  return new ConnectionError('unreachable', `${where}: ${err.message}`, dropped ? { retry: 'soon' } : {});
}
