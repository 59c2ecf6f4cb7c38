import { spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, copyFile, lstat, mkdir, open, readdir, realpath, unlink } from 'node:fs/promises';
import { constants, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Abortable } from '../abort.js';
import { LinkRefused, TransferError } from '../errors.js';
import { SECRET_ENV_NAMES } from '../ssh/connect.js';
import { hostShellArgv, newToken } from '../hostShell/protocol.js';
import type { EntryStat } from '../ssh/sftp.js';
import { hashFiles } from './checksums.js';
import { linkMessage, readWhole, type HashKind, type HostSession, type RemoteStat } from './session.js';
import { HostShell } from '../hostShell/hostShell.js';
import { ensureRoom } from './room.js';

/** How long the local sh may take to start its host shell: a machine at a standstill, not a login. */
const LOCAL_START_MS = 120_000;

/** distray's environment less its secrets, for what it starts on this machine. */
export function environmentWithoutSecrets(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !SECRET_ENV_NAMES.includes(k)));
}

function entryStat(s: Stats): EntryStat {
  const type = s.isSymbolicLink() ? 'link' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
  return { size: s.size, type, mode: s.mode & 0o7777 };
}

/**
 * The controller machine as a host: the same host shell as over SSH, run by
 * the local `sh`, so local and remote tasks stop and behave alike.
 * A relative workdir is relative to the directory distray runs in.
 */
export class LocalSession implements HostSession {
  readonly lost = new Promise<Error>(() => {});
  private readonly workdir: string;
  /** The workdir made and resolved (every link on its way followed), once. */
  private realWorkdir: Promise<string> | undefined;
  private readonly children = new Set<ChildProcess>();

  constructor(
    readonly name: string,
    workdir: string,
    private readonly env: Readonly<Record<string, string>>,
    private readonly slots: number,
    private readonly graceSeconds: number,
    /** The POSIX shell that runs the host shell script (tests try dash, bash and busybox sh). */
    private readonly sh: readonly string[] = ['sh'],
  ) {
    this.workdir = resolve(workdir);
  }

  static async open(
    name: string,
    workdir: string,
    env: Readonly<Record<string, string>>,
    slots: number,
    graceSeconds: number,
    sh: readonly string[] = ['sh'],
  ): Promise<LocalSession> {
    const session = new LocalSession(name, workdir, env, slots, graceSeconds, sh);
    await session.real();
    return session;
  }

  private real(): Promise<string> {
    this.realWorkdir ??= mkdir(this.workdir, { recursive: true }).then(() => realpath(this.workdir));
    return this.realWorkdir;
  }

  private path(p: string): string {
    return resolve(this.workdir, p);
  }

  private currentShell: HostShell | undefined;

  shellToken: string | undefined;

  async shell(options?: Abortable): Promise<HostShell> {
    if (!this.currentShell?.alive) this.currentShell = this.openShell();
    const shell = this.currentShell;
    // No login here, only sh starting: the deadline is generous, and every caller waits on the same line.
    await shell.ready(LOCAL_START_MS, options);
    return shell;
  }

  private openShell(): HostShell {
    const token = newToken();
    this.shellToken = token;
    const argv = hostShellArgv({
      workdir: this.workdir,
      env: this.env,
      token,
      slots: this.slots,
      graceSeconds: this.graceSeconds,
    });
    const child = spawn(this.sh[0]!, [...this.sh.slice(1), ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: environmentWithoutSecrets(),
    });
    this.children.add(child);
    const closed = new Promise<Error>((resolve) => {
      child.on('error', (err) => resolve(new Error(`cannot start sh: ${err.message}`)));
      child.on('close', (code) => {
        this.children.delete(child);
        resolve(new Error(`the local host shell exited (status ${code})`));
      });
    });
    return new HostShell(
      {
        stdin: child.stdin,
        stdout: child.stdout,
        stderr: child.stderr,
        closed,
        end: () => child.stdin.end(),
        kill: () => child.kill(),
      },
      token,
      this.name,
    );
  }

  /** The host shell hashes here as on any host (sha256sum, cksum), so local and remote hosts agree. */
  hashFiles(
    paths: readonly string[],
    options: Abortable & { kind?: HashKind | undefined } = {},
  ): Promise<Map<string, string> | undefined> {
    return hashFiles(this.name, (argv) => this.command(argv, options), paths, options.kind ?? 'sha256');
  }

  async readTail(p: string, max: number): Promise<{ data: Buffer; size: number }> {
    const file = await open(this.path(p), 'r');
    try {
      const { size } = await file.stat();
      const from = Math.max(0, size - max);
      const data = Buffer.alloc(size - from);
      const { bytesRead } = await file.read(data, 0, data.length, from);
      return { data: data.subarray(0, bytesRead), size };
    } finally {
      await file.close();
    }
  }

  readFile(p: string): Promise<Buffer> {
    return readWhole(this, p);
  }

  async command(argv: readonly string[], options?: Abortable): Promise<{ code: number; output: string }> {
    // The host shell is shared: a command stopped stops its own wait, not the shell's start.
    return (await this.shell()).command(argv, (p) => this.readFile(p), options);
  }

  async stat(p: string): Promise<RemoteStat | null> {
    try {
      return entryStat(await lstat(this.path(p)));
    } catch {
      return null;
    }
  }

  async readdir(p: string): Promise<Array<{ name: string } & RemoteStat>> {
    const entries = await readdir(this.path(p));
    return Promise.all(entries.map(async (name) => ({ name, ...entryStat(await lstat(join(this.path(p), name))) })));
  }

  async checkInside(dir: string): Promise<void> {
    if (dir === '.' || dir === '') return;
    const real = await realpath(this.path(dir));
    if (real !== join(await this.real(), dir)) throw new LinkRefused(linkMessage(dir, this.name, real));
  }

  // The file operations below act on this machine's own disk: nothing to wait for, so no signal to listen to.
  async putFile(localPath: string, p: string, { mode }: { mode: number }): Promise<void> {
    await copyFile(localPath, this.path(p));
    await chmod(this.path(p), mode & 0o777);
  }

  async fetchFile(p: string, localPath: string): Promise<number> {
    const info = await lstat(this.path(p));
    if (!info.isFile()) throw new TransferError(`${p} on ${this.name} is not a regular file`);
    await ensureRoom(localPath, info.size, p, this.name);
    // COPYFILE_EXCL creates the copy with O_EXCL: nothing already at localPath is written through.
    await copyFile(this.path(p), localPath, constants.COPYFILE_EXCL).catch(async (err: unknown) => {
      // Refused on the host's side (a file its renderer made unreadable), not the side this machine writes.
      const code = (err as NodeJS.ErrnoException).code;
      if (
        (code === 'EACCES' || code === 'EPERM') &&
        !(await access(this.path(p), constants.R_OK).then(
          () => true,
          () => false,
        ))
      )
        throw new TransferError(`${p} on ${this.name} cannot be read (${code}): make it readable there`, {
          cause: err,
        });
      throw err;
    });
    return info.size;
  }

  async unlink(p: string): Promise<void> {
    await unlink(this.path(p));
  }

  close(): Promise<void> {
    // The host shell exits on end of input (once its tasks are done); a renderer's stray child holding
    // their output must not keep distray itself alive.
    for (const child of this.children) {
      child.stdin?.end();
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.unref();
    }
    return Promise.resolve();
  }
}
