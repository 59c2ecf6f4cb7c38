import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { hostShellArgv, newToken } from '../ssh/wrapper.js';
import type { HashKind, HostSession, RemoteStat } from './session.js';
import { LocalHashes } from '../transfer/inputs.js';
import { HostShell } from './hostShell.js';

/**
 * The controller machine as a host: the same host shell as over SSH, run by
 * the local `sh`, so local and remote tasks stop and behave alike.
 * A relative workdir is relative to the directory distray runs in.
 */
export class LocalSession implements HostSession {
  readonly lost = new Promise<Error>(() => {});
  private readonly workdir: string;
  private readonly children = new Set<ChildProcess>();

  constructor(
    readonly name: string,
    workdir: string,
    private readonly env: Readonly<Record<string, string>>,
    private readonly slots: number,
    private readonly graceSeconds: number,
  ) {
    this.workdir = resolve(workdir);
  }

  static async open(name: string, workdir: string, env: Readonly<Record<string, string>>, slots: number, graceSeconds: number): Promise<LocalSession> {
    const session = new LocalSession(name, workdir, env, slots, graceSeconds);
    await mkdir(session.workdir, { recursive: true });
    return session;
  }

  private path(p: string): string {
    return resolve(this.workdir, p);
  }

  private currentShell: HostShell | undefined;

  shellToken: string | undefined;

  shell(): Promise<HostShell> {
    if (!this.currentShell?.alive) this.currentShell = this.openShell();
    return Promise.resolve(this.currentShell);
  }

  private openShell(): HostShell {
    const token = newToken();
    this.shellToken = token;
    const argv = hostShellArgv({ workdir: this.workdir, env: this.env, token, slots: this.slots, graceSeconds: this.graceSeconds });
    const child = spawn('sh', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    const closed = new Promise<Error>((resolve) => {
      child.on('error', (err) => resolve(new Error(`cannot start sh: ${err.message}`)));
      child.on('close', (code) => {
        this.children.delete(child);
        resolve(new Error(`the local host shell exited (status ${code})`));
      });
    });
    return new HostShell({ stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, closed, end: () => child.stdin.end() }, token);
  }

  async hashFiles(paths: readonly string[], kind: HashKind = 'sha256'): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    const local = new LocalHashes();
    for (const p of paths) {
      const s = await this.stat(p);
      if (s && !s.isDirectory) hashes.set(p, await (kind === 'sha256' ? local.of(this.path(p)) : local.cksum(this.path(p))));
    }
    return hashes;
  }

  readFile(p: string): Promise<Buffer> {
    return readFile(this.path(p));
  }

  async command(argv: readonly string[]): Promise<{ code: number; output: string }> {
    return (await this.shell()).command(argv, (p) => this.readFile(p));
  }

  async stat(p: string): Promise<RemoteStat | null> {
    try {
      const s = await stat(this.path(p));
      return { size: s.size, isDirectory: s.isDirectory() };
    } catch {
      return null;
    }
  }

  async readdir(p: string): Promise<Array<{ name: string } & RemoteStat>> {
    const entries = await readdir(this.path(p), { withFileTypes: true });
    return Promise.all(
      entries.map(async (e) => {
        const s = await stat(resolve(this.path(p), e.name));
        return { name: e.name, size: s.size, isDirectory: s.isDirectory() };
      }),
    );
  }

  async mkdirp(p: string): Promise<void> {
    await mkdir(this.path(p), { recursive: true });
  }

  async putFile(localPath: string, p: string, mode: number): Promise<void> {
    await copyFile(localPath, this.path(p));
    await chmod(this.path(p), mode & 0o777);
  }

  async fetchFile(p: string, localPath: string, options: { remove?: boolean } = {}): Promise<number> {
    await copyFile(this.path(p), localPath);
    if (options.remove) await unlink(this.path(p));
    return (await stat(localPath)).size;
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(this.path(from), this.path(to));
  }

  async unlink(p: string): Promise<void> {
    await unlink(this.path(p));
  }

  async rmdir(p: string): Promise<void> {
    await rmdir(this.path(p));
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
