import { randomBytes } from 'node:crypto';
import type { SFTPWrapper } from 'ssh2';
import { ConnectionError, LinkRefused, TransferError } from '../errors.js';
import type { HostConfig } from '../inventory/types.js';
import { joinRemote } from '../plan/paths.js';
import { connectEndpoint, serverVersion, type Client, type ConnectContext } from '../ssh/connect.js';
import { EXIT_NO_WORKDIR, hostShellCommand, newToken } from '../ssh/wrapper.js';
import { Sftp } from '../transfer/sftp.js';
import { linkMessage, type HashKind, type HostSession, type RemoteStat } from './session.js';
import { HostShell } from './hostShell.js';

/**
 * Channels assumed per connection (the SFTP channel and the host shell need
 * two). OpenSSH's MaxSessions defaults to 10; a server that refuses a
 * channel lowers this for that connection and another connection is opened.
 */
export const CHANNELS_PER_CONNECTION = 8;

/** Lines of sha256sum: `HASH  NAME`, or `\\HASH  NAME` with \\\\ and \\n escaped in NAME. */
export function parseChecksums(output: string): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (const line of output.split('\n')) {
    const m = /^(\\?)([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (!m) continue;
    const name = m[1] ? m[3]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)) : m[3]!;
    result.push([name, m[2]!]);
  }
  return result;
}

/**
 * Lines of cksum: `CRC SIZE NAME`, in the order of `names` (the files that
 * exist among them). Read in that order, so a name may hold any character.
 */
export function parseCksums(output: string, names: readonly string[]): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  let at = 0;
  for (const name of names) {
    const m = /^(\d+) (\d+) /.exec(output.slice(at, at + 40));
    if (!m || !output.startsWith(`${name}\n`, at + m[0].length)) continue;
    result.push([name, `${m[1]} ${m[2]}`]);
    at += m[0].length + name.length + 1;
  }
  return result;
}

class ChannelRefused extends Error {
  constructor(override readonly cause: ConnectionError) {
    super(cause.message);
  }
}

interface Connection {
  client: Client;
  channels: number;
  /** Channels this connection takes; lowered when the server refuses one (a smaller MaxSessions). */
  capacity: number;
}

export class SshSession implements HostSession {
  readonly name: string;
  readonly lost: Promise<Error>;
  private markLost!: (err: Error) => void;
  private lostError: Error | undefined;
  private closing = false;

  private readonly connections: Connection[] = [];
  private opening: Promise<Connection> | undefined;

  /** The SFTP channel; opened again on a connection with room if it breaks (a request left unanswered). */
  private sftpChannel!: Promise<Sftp>;
  /** The workdir as the server resolves it (every link on its way followed), set by open(). */
  private realWorkdir = '';

  private constructor(
    private readonly host: HostConfig,
    private readonly ctx: ConnectContext,
    first: Client,
    private readonly graceSeconds: number,
  ) {
    this.name = host.name;
    this.lost = new Promise((resolve) => (this.markLost = resolve));
    this.attach(first, 1);
  }

  private attach(client: Client, channels: number): Connection {
    const conn: Connection = { client, channels, capacity: CHANNELS_PER_CONNECTION };
    this.connections.push(conn);
    const onGone = (err?: Error): void => {
      if (this.closing || this.lostError) return;
      this.lostError = new ConnectionError('lost', `lost the connection to ${this.host.name}${err ? `: ${err.message}` : ''}`);
      this.markLost(this.lostError);
    };
    client.on('error', onGone);
    client.on('close', () => onGone());
    return conn;
  }

  /**
   * Connects, opens SFTP and creates the workdir, and waits for the host
   * shell: a host is usable once its login has finished, within the host's
   * login deadline. More connections are opened as slots need channels.
   * Aborting `signal` (the run is over) gives up at once.
   */
  static async open(host: HostConfig, ctx: ConnectContext, graceSeconds: number, signal?: AbortSignal): Promise<SshSession> {
    const first = await connectEndpoint(host, ctx);
    const session = new SshSession(host, ctx, first, graceSeconds);
    const onAbort = (): void => void session.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) throw new ConnectionError('error', 'the run ended while it connected');
      // SFTP's channel is asked for first, so a server that allows one session per connection gives it that one.
      session.sftpChannel = session.openSftp(session.connections[0]!);
      // The host shell's login (the user's rc files) overlaps SFTP and the workdir's creation;
      // if it gets there first, it makes the workdir itself.
      const shell = session.shell(signal);
      shell.catch(() => {});
      await session.sftpChannel;
      await session.makeWorkdir();
      await shell;
      return session;
    } catch (err) {
      await session.close();
      throw signal?.aborted ? new ConnectionError('error', 'the run ended while it connected') : err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private openSftp(conn: Connection): Promise<Sftp> {
    conn.channels++;
    return new Promise<Sftp>((resolve, reject) =>
      conn.client.sftp((err, s: SFTPWrapper) => {
        if (err) {
          conn.channels--;
          reject(this.lostError ?? new ConnectionError('error', `${this.name}: cannot start SFTP: ${err.message}`));
          return;
        }
        s.on('close', () => conn.channels--);
        resolve(new Sftp(s, this.name, /^OpenSSH_/.test(serverVersion(conn.client) ?? '')));
      }),
    );
  }

  /** The SFTP channel, opened again if the last one broke. */
  private async sftp(): Promise<Sftp> {
    const current = await this.sftpChannel;
    if (!current.broken) return current;
    if (this.lostError) throw this.lostError;
    const again = this.roomyConnection().then((conn) => this.openSftp(conn));
    this.sftpChannel = again;
    return again;
  }

  /**
   * Creates the workdir and proves it writable over SFTP: no command, so no
   * login shell (which costs 85 ms of CPU per start on some hosts). Warns
   * when other users may write there: they could plant links or replace inputs.
   */
  private async makeWorkdir(): Promise<void> {
    const wd = this.host.workdir;
    const probe = `.distray-probe-${randomBytes(4).toString('hex')}`;
    const sftp = await this.sftp();
    try {
      await this.mkdirAbsolute(wd);
      await sftp.writeFile(joinRemote(wd, probe), '');
      await sftp.unlink(joinRemote(wd, probe));
      this.realWorkdir = await sftp.realpath(wd === '' ? '.' : wd);
    } catch (err) {
      throw new ConnectionError('workdir', `${this.name}: cannot create a writable workdir "${wd}" (${(err as Error).message}); fix "workdir:" for this host`);
    }
    const info = await sftp.lstat(this.realWorkdir);
    if (info && info.mode & 0o002) {
      this.ctx.warn(
        `host ${this.name}: its workdir ${this.realWorkdir} is writable by other users (mode ${info.mode.toString(8)}): they could plant links or replace files there; ` +
          `distray follows no link there, but make it private (chmod o-w)`,
      );
    }
  }

  /** mkdir -p of the workdir itself, as the server sees it (links on its way are the user's to choose). */
  private async mkdirAbsolute(path: string): Promise<void> {
    const sftp = await this.sftp();
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (dir === '' || dir === '.') continue;
      if ((await sftp.statFollowing(dir))?.type === 'dir') continue;
      try {
        await sftp.mkdir(dir);
      } catch (err) {
        // Another run may have made it in the meantime.
        if ((await sftp.statFollowing(dir))?.type !== 'dir') throw err;
      }
    }
  }

  /** A connection with room for one more channel, opening another one if none has room. */
  private async roomyConnection(): Promise<Connection> {
    for (;;) {
      const conn = this.connections.find((c) => c.channels < c.capacity);
      if (conn) return conn;
      // One new connection at a time, shared by every slot waiting for room.
      this.opening ??= connectEndpoint(this.host, this.ctx)
        .then((client) => this.attach(client, 0))
        .finally(() => (this.opening = undefined));
      await this.opening;
    }
  }

  private path(p: string): string {
    return joinRemote(this.host.workdir, p);
  }

  private currentShell: Promise<HostShell> | undefined;

  async shell(signal?: AbortSignal): Promise<HostShell> {
    const current = this.currentShell ? await this.currentShell.catch(() => undefined) : undefined;
    if (current?.alive) return current;
    this.currentShell = this.openShell(signal);
    return this.currentShell;
  }

  /** A new host shell, on a connection with room for one more channel, once its login has finished. */
  private async openShell(signal: AbortSignal | undefined): Promise<HostShell> {
    for (;;) {
      if (this.lostError) throw this.lostError;
      const conn = await this.roomyConnection();
      let shell: HostShell;
      try {
        shell = await this.openShellOn(conn);
      } catch (err) {
        // A refused channel on a live connection means the server allows fewer sessions
        // per connection than we assumed (MaxSessions): go elsewhere.
        if (this.lostError || !(err instanceof ChannelRefused) || conn.channels === 0) throw err instanceof ChannelRefused ? err.cause : err;
        conn.capacity = conn.channels;
        continue;
      }
      await shell.ready(this.host.loginTimeoutMs, signal);
      return shell;
    }
  }

  shellToken: string | undefined;

  private openShellOn(conn: Connection): Promise<HostShell> {
    conn.channels++;
    const token = newToken();
    this.shellToken = token;
    const command = hostShellCommand({ workdir: this.host.workdir, env: this.host.env, token, slots: this.host.slots, graceSeconds: this.graceSeconds });
    return new Promise<HostShell>((resolve, reject) => {
      conn.client.exec(command, (err, channel) => {
        if (err) {
          conn.channels--;
          reject(this.lostError ?? new ChannelRefused(new ConnectionError('error', `${this.name}: cannot open a channel: ${err.message}`)));
          return;
        }
        channel.on('error', () => {});
        const closed = new Promise<Error>((done) => {
          let status: number | null = null;
          channel.on('exit', (code: number | null) => (status = code));
          channel.on('close', () => {
            conn.channels--;
            done(
              this.lostError ??
                new ConnectionError(
                  status === EXIT_NO_WORKDIR ? 'workdir' : 'lost',
                  status === EXIT_NO_WORKDIR ? `${this.name}: cannot enter the workdir ${this.host.workdir}` : `${this.name}: the host shell exited (status ${status ?? 'none'})`,
                ),
            );
          });
          void this.lost.then((e) => done(e));
        });
        resolve(
          new HostShell({ stdin: channel, stdout: channel, stderr: channel.stderr, closed, end: () => channel.end(), kill: () => channel.close() }, token, this.name),
        );
      });
    });
  }

  /**
   * One sha256sum (or shasum -a 256), or one POSIX cksum, for all the files
   * that exist, through xargs, run by the host shell: an exec of its own
   * would start one more login shell. A link is not a file here: it is
   * replaced, never followed, when the file is sent.
   */
  async hashFiles(paths: readonly string[], kind: HashKind = 'sha256'): Promise<Map<string, string> | undefined> {
    const hashes = new Map<string, string>();
    const pick =
      kind === 'sha256'
        ? 'if command -v sha256sum >/dev/null 2>&1; then h=sha256sum; elif command -v shasum >/dev/null 2>&1; then h="shasum -a 256"; else exit 3; fi; '
        : 'command -v cksum >/dev/null 2>&1 || exit 3; h=cksum; ';
    const script = pick + 'for f; do [ -f "$f" ] && [ ! -L "$f" ] && printf "%s\\0" "$f"; done | xargs -0 $h --; exit 0';
    // Batches keep each command line well under any ARG_MAX.
    for (let i = 0; i < paths.length; i += 1000) {
      const batch = paths.slice(i, i + 1000);
      const { code, output } = await this.command(['sh', '-c', script, 'distray-hash', ...batch]);
      if (code === 3) return undefined;
      if (code !== 0) throw new ConnectionError('error', `${this.name}: cannot hash files in the workdir (exit ${code}): ${output.trim().slice(-500)}`);
      for (const [name, hash] of kind === 'sha256' ? parseChecksums(output) : parseCksums(output, batch)) hashes.set(name, hash);
    }
    return hashes;
  }

  async readFile(p: string): Promise<Buffer> {
    return (await this.sftp()).readFile(this.path(p));
  }

  async command(argv: readonly string[]): Promise<{ code: number; output: string }> {
    return (await this.shell()).command(argv, (p) => this.readFile(p));
  }

  async stat(p: string): Promise<RemoteStat | null> {
    return (await this.sftp()).lstat(this.path(p));
  }

  async readdir(p: string): Promise<Array<{ name: string } & RemoteStat>> {
    return (await this.sftp()).readdir(this.path(p));
  }

  async checkInside(dir: string): Promise<void> {
    if (dir === '.' || dir === '') return;
    const real = await (await this.sftp()).realpath(this.path(dir));
    if (real !== joinRemote(this.realWorkdir, dir)) throw new LinkRefused(linkMessage(dir, this.name, real));
  }

  /** Directories this session made or found, so a directory is checked once however many tasks write into it. */
  private readonly madeDirs = new Map<string, Promise<void>>();

  /** mkdir -p below the workdir, refusing to go through a link: what is below one is outside the workdir. */
  mkdirp(p: string): Promise<void> {
    let made = this.madeDirs.get(p);
    if (!made) {
      made = (async () => {
        const sftp = await this.sftp();
        const parts = p.split('/');
        for (let i = 1; i <= parts.length; i++) {
          const dir = parts.slice(0, i).join('/');
          if (dir === '' || dir === '.') continue;
          let info = await sftp.lstat(this.path(dir));
          if (!info) {
            try {
              await sftp.mkdir(this.path(dir));
              continue;
            } catch (err) {
              // Another task may have made it in the meantime.
              info = await sftp.lstat(this.path(dir));
              if (!info) throw err;
            }
          }
          if (info.type === 'link') throw new LinkRefused(linkMessage(dir, this.name));
          if (info.type !== 'dir') throw new TransferError(`${dir} on ${this.name} is not a directory: remove it there`);
        }
      })();
      this.madeDirs.set(p, made);
      made.catch(() => this.madeDirs.delete(p));
    }
    return made;
  }

  async putFile(localPath: string, p: string, mode: number, size?: number, signal?: AbortSignal): Promise<void> {
    return (await this.sftp()).putFile(localPath, this.path(p), mode, size, signal);
  }

  async fetchFile(p: string, localPath: string, options: { remove?: boolean; signal?: AbortSignal | undefined } = {}): Promise<number> {
    return (await this.sftp()).fetchFile(this.path(p), localPath, options);
  }

  async rename(from: string, to: string): Promise<void> {
    return (await this.sftp()).rename(this.path(from), this.path(to));
  }

  async unlink(p: string): Promise<void> {
    return (await this.sftp()).unlink(this.path(p));
  }

  async rmdir(p: string): Promise<void> {
    return (await this.sftp()).rmdir(this.path(p));
  }

  close(): Promise<void> {
    this.closing = true;
    void this.opening?.then((c) => c.client.destroy()).catch(() => {});
    for (const c of this.connections) c.client.end();
    return Promise.resolve();
  }
}
