import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { wrapperArgv } from '../ssh/wrapper.js';
import type { ExecOptions, ExecResult, HostSession, RemoteStat } from './session.js';

/**
 * The controller machine as a host: the same wrapper script as over SSH, run
 * by the local `sh`, so local and remote tasks stop and behave alike.
 * A relative workdir is relative to the directory distray runs in.
 */
export class LocalSession implements HostSession {
  readonly lost = new Promise<Error>(() => {});
  private readonly workdir: string;

  constructor(
    readonly name: string,
    workdir: string,
  ) {
    this.workdir = resolve(workdir);
  }

  static async open(name: string, workdir: string): Promise<LocalSession> {
    const session = new LocalSession(name, workdir);
    await mkdir(session.workdir, { recursive: true });
    return session;
  }

  private path(p: string): string {
    return resolve(this.workdir, p);
  }

  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult> {
    return new Promise((resolvePromise) => {
      const child = spawn('sh', wrapperArgv(this.workdir, options.env, argv), { stdio: ['pipe', 'pipe', 'pipe'] });
      child.stdout.on('data', (c: Buffer) => options.onOutput(c));
      child.stderr.on('data', (c: Buffer) => options.onOutput(c));
      child.stdin.on('error', () => {});
      const stop = (): void => {
        child.stdin.end('stop\n');
      };
      options.signal.addEventListener('abort', stop, { once: true });
      child.on('error', (err) => {
        options.onOutput(Buffer.from(`distray: cannot start sh: ${err.message}\n`));
      });
      child.on('close', (code) => {
        options.signal.removeEventListener('abort', stop);
        child.stdin.destroy();
        resolvePromise({ code });
      });
    });
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

  async getFile(p: string, localPath: string): Promise<void> {
    await copyFile(this.path(p), localPath);
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

  async close(): Promise<void> {}
}
