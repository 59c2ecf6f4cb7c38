import { randomBytes } from 'node:crypto';
import type { SFTPWrapper } from 'ssh2';
import { abortable, type Abortable } from '../abort.js';
import { ConnectionError, LinkRefused, TransferError } from '../errors.js';
import type { HostConfig } from '../inventory/types.js';
import { connectEndpoint, serverVersion, type Client, type ConnectContext } from '../ssh/connect.js';
import { ConnectionPool, type Connection } from './connectionPool.js';
import { hostShellCommand, newToken } from '../hostShell/protocol.js';
import { Sftp } from '../ssh/sftp.js';
import { hashFiles } from './checksums.js';
import { linkMessage, readWhole, type HashKind, type HostSession, type RemoteStat } from './session.js';
import type { HostShell } from '../hostShell/hostShell.js';
import { ChannelRefused, launchHostShell } from './launchHostShell.js';
import { ensureRoom } from './room.js';

/** Joins a workdir-relative path to the workdir without doubling slashes. */
export function joinRemote(workdir: string, rel: string): string {
  if (workdir === '' || workdir === '.') return rel;
  return `${workdir.replace(/\/+$/, '')}/${rel}`;
}

export class SshSession implements HostSession {
  readonly name: string;
  private readonly pool: ConnectionPool;

  /** The SFTP channel; opened again on a connection with room if it breaks (a request left unanswered). */
  private sftpChannel!: Promise<Sftp>;
  /** The workdir as the server resolves it (every link on its way followed), set by open(). */
  private realWorkdir = '';

  private constructor(
    private readonly host: HostConfig,
    ctx: ConnectContext,
    first: Client,
    private readonly graceSeconds: number,
    private readonly warn: (message: string) => void,
  ) {
    this.name = host.name;
    this.pool = new ConnectionPool(host, ctx, first);
  }

  get lost(): Promise<Error> {
    return this.pool.lost;
  }

  private get lostError(): Error | undefined {
    return this.pool.lostError;
  }

  /**
   * Connects, opens SFTP and creates the workdir, and waits for the host
   * shell: a host is usable once its login has finished, within the host's
   * login deadline. More connections are opened as slots need channels.
   * Aborting `signal` (the run is over) gives up at once.
   */
  static async open(
    host: HostConfig,
    ctx: ConnectContext,
    graceSeconds: number,
    signal?: AbortSignal,
  ): Promise<SshSession> {
    const first = await connectEndpoint(host, ctx);
    const session = new SshSession(host, ctx, first, graceSeconds, (m) => ctx.warn(m));
    const onAbort = (): void => void session.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) throw new ConnectionError('error', 'the run ended while it connected');
      // SFTP's channel is asked for first, so a server that allows one session per connection gives it that one.
      session.sftpChannel = session.openSftp(session.pool.first);
      // The host shell's login (the user's rc files) overlaps SFTP and the workdir's creation;
      // if it gets there first, it makes the workdir itself.
      const shell = session.shell({ signal });
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
  private async sftp({ signal }: Abortable = {}): Promise<Sftp> {
    const stopped = (reason: unknown): Error =>
      new TransferError(`${this.name}: the transfer was stopped`, { cause: reason });
    const current = await abortable(this.sftpChannel, signal, stopped);
    if (!current.broken) return current;
    if (this.lostError) throw this.lostError;
    const again = this.pool.roomy().then((conn) => this.openSftp(conn));
    this.sftpChannel = again;
    return abortable(again, signal, stopped);
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
      throw new ConnectionError(
        'workdir',
        `${this.name}: cannot create a writable workdir "${wd}" (${(err as Error).message}); fix "workdir:" for this host`,
      );
    }
    const info = await sftp.lstat(this.realWorkdir);
    if (info && info.mode & 0o002) {
      this.warn(
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

  private path(p: string): string {
    return joinRemote(this.host.workdir, p);
  }

  private currentShell: Promise<HostShell> | undefined;

  /** What a login printed into the protocol is shown once a host, not once a shell (each connection has its own). */
  private strayWarned = false;
  private readonly strayWarning = (message: string): void => {
    if (this.strayWarned) return;
    this.strayWarned = true;
    this.warn(message);
  };

  async shell({ signal }: Abortable = {}): Promise<HostShell> {
    const stopped = (reason: unknown): Error =>
      new ConnectionError('error', `${this.name}: the run ended while its host shell started`, { cause: reason });
    const current = this.currentShell
      ? await abortable(this.currentShell, signal, stopped).catch((err: unknown) => {
          if (signal?.aborted) throw err;
          return undefined;
        })
      : undefined;
    if (current?.alive) return current;
    this.currentShell = this.openShell(signal);
    return this.currentShell;
  }

  /** A new host shell, on a connection with room for one more channel, once its login has finished. */
  private async openShell(signal: AbortSignal | undefined): Promise<HostShell> {
    for (;;) {
      if (this.lostError) throw this.lostError;
      const conn = await this.pool.roomy();
      let shell: HostShell;
      const token = newToken();
      this.shellToken = token;
      try {
        shell = await launchHostShell(conn, this.pool, {
          host: this.name,
          token,
          command: hostShellCommand({
            workdir: this.host.workdir,
            env: this.host.env,
            token,
            slots: this.host.slots,
            graceSeconds: this.graceSeconds,
          }),
          workdir: this.host.workdir,
          warn: this.strayWarning,
        });
      } catch (err) {
        // A refused channel on a live connection means the server allows fewer sessions
        // per connection than we assumed (MaxSessions): go elsewhere.
        if (this.lostError || !(err instanceof ChannelRefused) || conn.channels === 0)
          throw err instanceof ChannelRefused ? err.cause : err;
        this.pool.refused(conn);
        continue;
      }
      await shell.ready(this.host.loginTimeoutMs, { signal });
      return shell;
    }
  }

  shellToken: string | undefined;

  hashFiles(
    paths: readonly string[],
    options: Abortable & { kind?: HashKind | undefined } = {},
  ): Promise<Map<string, string> | undefined> {
    return hashFiles(this.name, (argv) => this.command(argv, options), paths, options.kind ?? 'sha256');
  }

  async readTail(p: string, max: number, options?: Abortable): Promise<{ data: Buffer; size: number }> {
    return (await this.sftp(options)).readTail(this.path(p), max, options);
  }

  readFile(p: string, options?: Abortable): Promise<Buffer> {
    return readWhole(this, p, options);
  }

  async command(argv: readonly string[], options?: Abortable): Promise<{ code: number; output: string }> {
    // The host shell is shared: a command stopped stops its own wait, not the shell's start.
    return (await this.shell()).command(argv, (p) => this.readFile(p, options), options);
  }

  async stat(p: string, options?: Abortable): Promise<RemoteStat | null> {
    return (await this.sftp(options)).lstat(this.path(p), options);
  }

  async readdir(p: string, options?: Abortable): Promise<Array<{ name: string } & RemoteStat>> {
    return (await this.sftp(options)).readdir(this.path(p), options);
  }

  async checkInside(dir: string, options?: Abortable): Promise<void> {
    if (dir === '.' || dir === '') return;
    const real = await (await this.sftp(options)).realpath(this.path(dir), options);
    if (real !== joinRemote(this.realWorkdir, dir)) throw new LinkRefused(linkMessage(dir, this.name, real));
  }

  async putFile(
    localPath: string,
    p: string,
    options: Abortable & { mode: number; size?: number | undefined },
  ): Promise<void> {
    return (await this.sftp(options)).putFile(localPath, this.path(p), options);
  }

  async fetchFile(p: string, localPath: string, options: Abortable = {}): Promise<number> {
    return (await this.sftp(options)).fetchFile(this.path(p), localPath, {
      ...options,
      room: (size) => ensureRoom(localPath, size, p, this.name),
    });
  }

  async unlink(p: string, options?: Abortable): Promise<void> {
    return (await this.sftp(options)).unlink(this.path(p), options);
  }

  close(): Promise<void> {
    this.pool.close();
    return Promise.resolve();
  }
}
