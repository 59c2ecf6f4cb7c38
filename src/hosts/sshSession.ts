import { randomBytes } from 'node:crypto';
import { readFile, stat as localStat, writeFile } from 'node:fs/promises';
import type { SFTPWrapper, Stats } from 'ssh2';
import { ConnectionError } from '../errors.js';
import type { HostConfig } from '../inventory/types.js';
import { joinRemote } from '../plan/paths.js';
import { connectEndpoint, serverVersion, type Client, type ConnectContext } from '../ssh/connect.js';
import { EXIT_NO_WORKDIR, hostShellCommand, newToken } from '../ssh/wrapper.js';
import type { HashKind, HostSession, RemoteStat } from './session.js';
import { HostShell } from './hostShell.js';

/**
 * Channels assumed per connection (the SFTP channel and the host shell need
 * two). OpenSSH's MaxSessions defaults to 10; a server that refuses a
 * channel lowers this for that connection and another connection is opened.
 */
export const CHANNELS_PER_CONNECTION = 8;

const SFTP_NO_SUCH_FILE = 2;

/** Files up to this size are fetched into memory with every chunk requested at once; larger ones stream to disk. */
const IN_MEMORY_FETCH = 8 * 1024 * 1024;

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

  /** Set by open() before the session is handed out. */
  private sftp!: SFTPWrapper;

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

  /** Connects, opens SFTP and creates the workdir. More connections are opened as slots need channels. */
  static async open(host: HostConfig, ctx: ConnectContext, graceSeconds: number): Promise<SshSession> {
    const first = await connectEndpoint(host, ctx);
    const session = new SshSession(host, ctx, first, graceSeconds);
    try {
      // SFTP's channel is asked for first, so a server that allows one session per connection gives it that one.
      const sftp = new Promise<SFTPWrapper>((resolve, reject) =>
        first.sftp((err, s) => (err ? reject(new ConnectionError('error', `${host.name}: cannot start SFTP: ${err.message}`)) : resolve(s))),
      );
      // The host shell's login (the user's rc files) overlaps SFTP and the workdir's creation;
      // if it gets there first, it makes the workdir itself.
      session.shell().catch(() => {});
      session.sftp = await sftp;
      session.sftp.on('error', () => {});
      await session.makeWorkdir();
      return session;
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  /**
   * Creates the workdir and proves it writable over SFTP: no command, so no
   * login shell (which costs 85 ms of CPU per start on some hosts).
   */
  private async makeWorkdir(): Promise<void> {
    const wd = this.host.workdir;
    const probe = `.distray-probe-${randomBytes(4).toString('hex')}`;
    try {
      await this.mkdirpAbsolute(wd);
      await this.sftpCall<void>('write', probe, (cb) => this.sftp.writeFile(joinRemote(wd, probe), '', cb));
      await this.sftpCall<void>('remove', probe, (cb) => this.sftp.unlink(joinRemote(wd, probe), cb));
    } catch (err) {
      throw new ConnectionError('workdir', `${this.name}: cannot create a writable workdir "${wd}" (${(err as Error).message}); fix "workdir:" for this host`);
    }
  }

  /** stat of a path as given (not workdir-relative). */
  private async rawStat(p: string): Promise<RemoteStat | null> {
    try {
      const s = await this.sftpCall<Stats>('stat', p, (cb) => this.sftp.stat(p, cb));
      return { size: s.size, isDirectory: s.isDirectory() };
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return null;
      throw err;
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

  async shell(): Promise<HostShell> {
    const current = this.currentShell ? await this.currentShell.catch(() => undefined) : undefined;
    if (current?.alive) return current;
    this.currentShell = this.openShell();
    return this.currentShell;
  }

  /** A new host shell, on a connection with room for one more channel. */
  private async openShell(): Promise<HostShell> {
    for (;;) {
      if (this.lostError) throw this.lostError;
      const conn = await this.roomyConnection();
      try {
        return await this.openShellOn(conn);
      } catch (err) {
        // A refused channel on a live connection means the server allows fewer sessions
        // per connection than we assumed (MaxSessions): go elsewhere.
        if (this.lostError || !(err instanceof ChannelRefused) || conn.channels === 0) throw err instanceof ChannelRefused ? err.cause : err;
        conn.capacity = conn.channels;
      }
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
        resolve(new HostShell({ stdin: channel, stdout: channel, stderr: channel.stderr, closed, end: () => channel.end() }, token));
      });
    });
  }

  /**
   * One sha256sum (or shasum -a 256), or one POSIX cksum, for all the files
   * that exist, through xargs, run by the host shell: an exec of its own
   * would start one more login shell.
   */
  async hashFiles(paths: readonly string[], kind: HashKind = 'sha256'): Promise<Map<string, string> | undefined> {
    const hashes = new Map<string, string>();
    const pick =
      kind === 'sha256'
        ? 'if command -v sha256sum >/dev/null 2>&1; then h=sha256sum; elif command -v shasum >/dev/null 2>&1; then h="shasum -a 256"; else exit 3; fi; '
        : 'command -v cksum >/dev/null 2>&1 || exit 3; h=cksum; ';
    const script = pick + 'for f; do [ -f "$f" ] && printf "%s\\0" "$f"; done | xargs -0 $h --; exit 0';
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

  readFile(p: string): Promise<Buffer> {
    return this.sftpCall<Buffer>('read', p, (cb) => this.sftp.readFile(this.path(p), cb));
  }

  async command(argv: readonly string[]): Promise<{ code: number; output: string }> {
    return (await this.shell()).command(argv, (p) => this.readFile(p));
  }

  private sftpCall<T>(what: string, p: string, call: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      call((err, value) => {
        if (err) {
          const e = err as Error & { code?: number };
          reject(Object.assign(new Error(`${this.name}: ${what} ${p}: ${e.message}`), { code: e.code === SFTP_NO_SUCH_FILE ? 'ENOENT' : e.code }));
        } else resolve(value as T);
      });
    });
  }

  stat(p: string): Promise<RemoteStat | null> {
    return this.rawStat(this.path(p));
  }

  async readdir(p: string): Promise<Array<{ name: string } & RemoteStat>> {
    const list = await this.sftpCall<Array<{ filename: string; attrs: Stats }>>('readdir', p, (cb) =>
      this.sftp.readdir(this.path(p), cb),
    );
    return list.map((e) => ({ name: e.filename, size: e.attrs.size, isDirectory: e.attrs.isDirectory() }));
  }

  /** Directories this session made or found, so a directory is checked once however many tasks write into it. */
  private readonly madeDirs = new Map<string, Promise<void>>();

  mkdirp(p: string): Promise<void> {
    return this.mkdirpAbsolute(this.path(p));
  }

  /** mkdir -p over SFTP, for a path as the server sees it (relative to the login directory, or absolute). */
  private mkdirpAbsolute(path: string): Promise<void> {
    let made = this.madeDirs.get(path);
    if (!made) {
      made = (async () => {
        const parts = path.split('/');
        for (let i = 1; i <= parts.length; i++) {
          const dir = parts.slice(0, i).join('/');
          if (dir === '' || dir === '.') continue;
          if ((await this.rawStat(dir))?.isDirectory) continue;
          try {
            await this.sftpCall<void>('mkdir', dir, (cb) => this.sftp.mkdir(dir, cb));
          } catch (err) {
            // Another task may have made it in the meantime.
            if (!(await this.rawStat(dir))?.isDirectory) throw err;
          }
        }
      })();
      this.madeDirs.set(path, made);
      made.catch(() => this.madeDirs.delete(path));
    }
    return made;
  }


  /**
   * Transfer chunks: OpenSSH's sftp-server takes messages up to 256 KiB, and
   * 255 KiB chunks move about twice as fast as the 32 KiB every server must
   * accept (724 vs 347 MB/s on loopback here). What is written is verified.
   */
  private get transfer(): { chunkSize: number; concurrency: number } {
    return /^OpenSSH_/.test(serverVersion(this.connections[0]!.client) ?? '') ? { chunkSize: 255 * 1024, concurrency: 16 } : { chunkSize: 32 * 1024, concurrency: 64 };
  }

  async putFile(localPath: string, p: string, mode: number, size?: number): Promise<void> {
    const { chunkSize } = this.transfer;
    if (size === undefined || size > chunkSize) {
      return this.sftpCall<void>('upload to', p, (cb) => this.sftp.fastPut(localPath, this.path(p), { ...this.transfer, mode: mode & 0o777 }, cb));
    }
    // A small file in one message: open with its mode, then write and close without waiting in
    // between (the server handles a channel's requests in order): two round trips instead of
    // fastPut's four (open, fchmod, write, close).
    const data = await readFile(localPath);
    const handle = await this.sftpCall<Buffer>('upload to', p, (cb) => this.sftp.open(this.path(p), 'w', { mode: mode & 0o777 }, cb));
    const written =
      data.length > 0 ? this.sftpCall<void>('upload to', p, (cb) => this.sftp.write(handle, data, 0, data.length, 0, (err) => cb(err))) : Promise.resolve();
    const closed = this.sftpCall<void>('upload to', p, (cb) => this.sftp.close(handle, cb));
    await Promise.all([written, closed]);
  }

  async fetchFile(p: string, localPath: string, options: { remove?: boolean } = {}): Promise<number> {
    const path = this.path(p);
    const sftp = this.sftp;
    const close = (handle: Buffer): Promise<void> => this.sftpCall<void>('close', p, (cb) => sftp.close(handle, cb));
    // open and stat in one round trip (the server answers a channel's requests in order).
    const [opened, stated] = await Promise.allSettled([
      this.sftpCall<Buffer>('download of', p, (cb) => sftp.open(path, 'r', cb)),
      this.sftpCall<Stats>('download of', p, (cb) => sftp.stat(path, cb)),
    ]);
    if (opened.status === 'rejected') throw opened.reason;
    const handle = opened.value;
    if (stated.status === 'rejected') {
      await close(handle).catch(() => {});
      throw stated.reason;
    }
    const size = stated.value.size;
    if (size <= IN_MEMORY_FETCH) {
      // A frame or a tile: every chunk asked for at once, then close (and remove) together.
      const data = Buffer.allocUnsafe(size);
      const { chunkSize } = this.transfer;
      const reads: Array<Promise<number>> = [];
      for (let at = 0; at < size; at += chunkSize) {
        const len = Math.min(chunkSize, size - at);
        reads.push(this.sftpCall<number>('download of', p, (cb) => sftp.read(handle, data, at, len, at, (err, n) => cb(err, n))));
      }
      const got = await Promise.all(reads).catch(async (err: unknown) => {
        await close(handle).catch(() => {});
        throw err;
      });
      // A server may answer a read with less than asked (none we know of does for a file): then stream it.
      if (got.every((n, i) => n === Math.min(chunkSize, size - i * chunkSize))) {
        // Removed only once it is safe here; close and remove go together.
        await writeFile(localPath, data).catch(async (err: unknown) => {
          await close(handle).catch(() => {});
          throw err;
        });
        await Promise.all([close(handle), options.remove ? this.unlink(p) : undefined]);
        return size;
      }
    }
    await close(handle);
    await this.sftpCall<void>('download of', p, (cb) => sftp.fastGet(path, localPath, this.transfer, cb));
    const got = (await localStat(localPath)).size;
    if (got !== size) throw new Error(`${this.name}: download of ${p}: received ${got} bytes of ${size}`);
    if (options.remove) await this.unlink(p);
    return got;
  }

  async rename(from: string, to: string): Promise<void> {
    // posix-rename replaces the target atomically; plain SFTP rename refuses to.
    await this.sftpCall<void>('rename', from, (cb) => this.sftp.ext_openssh_rename(this.path(from), this.path(to), cb));
  }

  unlink(p: string): Promise<void> {
    return this.sftpCall<void>('remove', p, (cb) => this.sftp.unlink(this.path(p), cb));
  }

  rmdir(p: string): Promise<void> {
    return this.sftpCall<void>('remove directory', p, (cb) => this.sftp.rmdir(this.path(p), cb));
  }

  close(): Promise<void> {
    this.closing = true;
    void this.opening?.then((c) => c.client.end()).catch(() => {});
    for (const c of this.connections) c.client.end();
    return Promise.resolve();
  }
}

