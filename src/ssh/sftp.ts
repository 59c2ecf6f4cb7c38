import { open as openLocal, readFile, stat as localStat } from 'node:fs/promises';
import type { SFTPWrapper, Stats } from 'ssh2';
import type { Abortable } from '../abort.js';
import { TransferError } from '../errors.js';
import { CREATE_NEW } from '../fsutil/atomicWrite.js';

/** What an entry is, never following a symbolic link. */
export type EntryType = 'file' | 'dir' | 'link' | 'other';

export interface EntryStat {
  size: number;
  type: EntryType;
  /** Permission bits. */
  mode: number;
}

const SFTP_NO_SUCH_FILE = 2;

/**
 * How long one SFTP request may go unanswered. A server stuck on a file that
 * never ends (a FIFO opened by mistake, a hung network file system) must not
 * hang the run: past this the channel is given up and a new one opened.
 */
export const REPLY_DEADLINE_MS = 60_000;

/** Files up to this size are fetched into memory with every chunk requested at once; larger ones stream to disk. */
const IN_MEMORY_FETCH = 8 * 1024 * 1024;

/** Reads or writes in flight for one streamed file. */
const STREAM_WINDOW = 16;

/** As large as the largest chunk: compared with a chunk in one memcmp. */
const ZEROS = Buffer.alloc(255 * 1024);

function isZeros(buf: Buffer): boolean {
  return buf.length <= ZEROS.length && buf.equals(ZEROS.subarray(0, buf.length));
}

function typeOf(s: Stats): EntryType {
  if (s.isSymbolicLink()) return 'link';
  if (s.isDirectory()) return 'dir';
  if (s.isFile()) return 'file';
  return 'other';
}

function entryStat(s: Stats): EntryStat {
  return { size: s.size, type: typeOf(s), mode: s.mode & 0o7777 };
}

/** What a stopped request rejects with: it names the host, and its cause is the signal's reason. */
function abortError(host: string, signal: AbortSignal): TransferError {
  return new TransferError(`${host}: the transfer was stopped`, { cause: signal.reason });
}

/**
 * One SFTP channel to a host, with what distray needs of it: every request
 * has a reply deadline and can be aborted, metadata never follows a symbolic
 * link, and files move with many requests in flight (OpenSSH's sftp-server
 * answers a channel's requests in order, so pipelining costs no round trips).
 * Paths are as the server sees them; the session joins them to the workdir.
 */
export class Sftp {
  /** Set when a request went unanswered past its deadline: the channel is of no more use. */
  broken: Error | undefined;

  constructor(
    private readonly wrapper: SFTPWrapper,
    private readonly host: string,
    /** OpenSSH takes 255 KiB messages, twice as fast as the 32 KiB every server must accept (724 vs 347 MB/s on loopback). */
    private readonly bigChunks: boolean,
  ) {
    wrapper.on('error', () => {});
    wrapper.on('close', () => (this.broken ??= new TransferError(`${host}: the SFTP channel closed`)));
  }

  private get chunkSize(): number {
    return this.bigChunks ? 255 * 1024 : 32 * 1024;
  }

  /**
   * One request: its error names the host and path; unanswered past the
   * deadline it breaks the channel; aborted, it rejects at once (the
   * server's late answer is dropped).
   */
  private call<T>(
    what: string,
    path: string,
    call: (sftp: SFTPWrapper, cb: (err: Error | null | undefined, value?: T) => void) => void,
    { signal }: Abortable = {},
  ): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    if (signal?.aborted) return Promise.reject(abortError(this.host, signal));
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (): void => {
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        if (done) return;
        finish();
        reject(abortError(this.host, signal!));
      };
      const timer = setTimeout(() => {
        if (done) return;
        finish();
        this.broken = new TransferError(
          `${this.host}: ${what} ${path}: the SFTP server did not answer within ${REPLY_DEADLINE_MS / 1000} s`,
        );
        this.wrapper.end();
        reject(this.broken);
      }, REPLY_DEADLINE_MS);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        call(this.wrapper, (err, value) => {
          if (done) return;
          finish();
          if (err) {
            const e = err as Error & { code?: number };
            reject(
              Object.assign(new TransferError(`${this.host}: ${what} ${path}: ${e.message}`), {
                code: e.code === SFTP_NO_SUCH_FILE ? 'ENOENT' : e.code,
              }),
            );
          } else resolve(value as T);
        });
      } catch (err) {
        finish();
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** lstat: a symbolic link is reported as one, never followed. Null if there is nothing there. */
  lstat(path: string, options?: Abortable): Promise<EntryStat | null> {
    return this.entry(path, 'lstat', options);
  }

  /** stat, following links: for the workdir's own path, whose links are the user's choice. */
  statFollowing(path: string, options?: Abortable): Promise<EntryStat | null> {
    return this.entry(path, 'stat', options);
  }

  private async entry(path: string, how: 'lstat' | 'stat', options?: Abortable): Promise<EntryStat | null> {
    try {
      return entryStat(await this.call<Stats>('stat', path, (s, cb) => s[how](path, cb), options));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** The path with every symbolic link resolved (it must exist). */
  realpath(path: string, options?: Abortable): Promise<string> {
    return this.call<string>('resolve', path, (s, cb) => s.realpath(path, cb), options);
  }

  /** A directory's entries, each as lstat sees it (OpenSSH's sftp-server lstats them). */
  async readdir(path: string, options?: Abortable): Promise<Array<{ name: string } & EntryStat>> {
    const list = await this.call<Array<{ filename: string; attrs: Stats }>>(
      'list',
      path,
      (s, cb) => s.readdir(path, cb),
      options,
    );
    return list.map((e) => ({ name: e.filename, ...entryStat(e.attrs) }));
  }

  mkdir(path: string, options?: Abortable): Promise<void> {
    return this.call<void>('mkdir', path, (s, cb) => s.mkdir(path, cb), options);
  }

  unlink(path: string, options?: Abortable): Promise<void> {
    return this.call<void>('remove', path, (s, cb) => s.unlink(path, cb), options);
  }

  writeFile(path: string, data: string | Buffer, options?: Abortable): Promise<void> {
    return this.call<void>('write', path, (s, cb) => s.writeFile(path, data, cb), options);
  }

  /**
   * The last `max` bytes of the file at `path` (all of it when smaller) and
   * its whole size, read at an offset: a file a host made huge (a sparse
   * 5 GB log) costs no more than `max` here.
   */
  async readTail(path: string, max: number, options: Abortable = {}): Promise<{ data: Buffer; size: number }> {
    const { signal } = options;
    // open and fstat in one round trip, as fetchFile does.
    const opened = this.call<Buffer>('read', path, (s, cb) => s.open(path, 'r', cb), options);
    const stated = opened.then((h) => this.call<Stats>('read', path, (s, cb) => s.fstat(h, cb), options));
    stated.catch(() => {});
    const handle = await opened;
    try {
      const { size } = await stated;
      const from = Math.max(0, size - max);
      const data = Buffer.allocUnsafe(size - from);
      await Promise.all(
        this.chunks(data.length).map(([at, len]) => this.readChunk(handle, path, data, from + at, len, signal, at)),
      );
      await this.close(handle, path);
      return { data, size };
    } catch (err) {
      await this.close(handle, path).catch(() => {});
      throw err;
    }
  }

  private close(handle: Buffer, path: string): Promise<void> {
    return this.call<void>('close', path, (s, cb) => s.close(handle, cb));
  }

  /**
   * Writes a local file to `path` with the given permission bits. A small
   * file goes in one open and one write-and-close, without waiting in
   * between: two round trips instead of the four of open, fchmod, write, close.
   */
  async putFile(
    localPath: string,
    path: string,
    options: Abortable & {
      /** Its permission bits (an uploaded renderer stays executable). */
      mode: number;
      /** Its size, if known (else the local file is stat'ed). */
      size?: number | undefined;
    },
  ): Promise<void> {
    const { mode, signal } = options;
    const size = options.size ?? (await localStat(localPath)).size;
    const handle = await this.call<Buffer>(
      'upload to',
      path,
      (s, cb) => s.open(path, 'w', { mode: mode & 0o777 }, cb),
      options,
    );
    try {
      if (size <= this.chunkSize) {
        const data = await readFile(localPath);
        const written =
          data.length > 0
            ? this.call<void>(
                'upload to',
                path,
                (s, cb) => s.write(handle, data, 0, data.length, 0, (err) => cb(err)),
                options,
              )
            : Promise.resolve();
        await Promise.all([written, this.close(handle, path)]);
        return;
      }
      const local = await openLocal(localPath, 'r');
      try {
        await this.window(size, signal, async (at, len) => {
          const buf = Buffer.allocUnsafe(len);
          const { bytesRead } = await local.read(buf, 0, len, at);
          if (bytesRead !== len) throw new TransferError(`${localPath} changed while it was being sent`);
          // The window checks the signal between chunks: a listener per request in flight would be 16 on one signal.
          await this.call<void>('upload to', path, (s, cb) => s.write(handle, buf, 0, len, at, (err) => cb(err)));
        });
      } finally {
        await local.close();
      }
      await this.close(handle, path);
    } catch (err) {
      await this.close(handle, path).catch(() => {});
      throw err;
    }
  }

  /**
   * Copies the regular file at `path` to `localPath`, a new file (it fails
   * if anything is there), and returns its size.
   * The caller has made sure it is a regular file (lstat): opening a FIFO
   * would block the server.
   */
  async fetchFile(
    path: string,
    localPath: string,
    options: Abortable & {
      /** Told the file's size before anything is written here: throws to refuse it (no room for it). */
      room?: ((size: number) => Promise<void>) | undefined;
    } = {},
  ): Promise<number> {
    const { signal } = options;
    // open and fstat in one round trip (requests are answered in order).
    const opened = this.call<Buffer>('download of', path, (s, cb) => s.open(path, 'r', cb), { signal });
    const stated = opened.then((h) => this.call<Stats>('download of', path, (s, cb) => s.fstat(h, cb), { signal }));
    // Awaited below once the open has succeeded; if the open fails, this fails with it and is not awaited
    // (unhandled, it would end the process: a speculative copy stopped just as it fetched).
    stated.catch(() => {});
    const handle = await opened;
    try {
      const st = await stated;
      if (!st.isFile()) throw new TransferError(`${this.host}: ${path} is not a regular file`);
      const size = st.size;
      await options.room?.(size);
      // Created, never opened: nothing already at the name (a link, a FIFO) is written through or waited on.
      const local = await openLocal(localPath, CREATE_NEW, 0o666);
      try {
        if (size <= IN_MEMORY_FETCH) {
          const data = Buffer.allocUnsafe(size);
          await Promise.all(this.chunks(size).map(([at, len]) => this.readChunk(handle, path, data, at, len, signal)));
          await local.writeFile(data);
        } else {
          // Its whole size at once, so a chunk of zeros (a sparse file's hole) needs no write: it stays a hole here too.
          await local.truncate(size);
          await this.window(size, signal, async (at, len) => {
            const buf = Buffer.allocUnsafe(len);
            await this.readChunk(handle, path, buf, at, len, undefined, 0);
            if (!isZeros(buf)) await local.write(buf, 0, len, at);
          });
        }
      } finally {
        await local.close();
      }
      await this.close(handle, path);
      return size;
    } catch (err) {
      await this.close(handle, path).catch(() => {});
      throw err;
    }
  }

  private chunks(size: number): Array<[number, number]> {
    const list: Array<[number, number]> = [];
    for (let at = 0; at < size; at += this.chunkSize) list.push([at, Math.min(this.chunkSize, size - at)]);
    return list;
  }

  /** Reads exactly `len` bytes at `at` into `buf` at `offset` (default: `at`), asking again for what a short read left. */
  private async readChunk(
    handle: Buffer,
    path: string,
    buf: Buffer,
    at: number,
    len: number,
    signal: AbortSignal | undefined,
    offset = at,
  ): Promise<void> {
    let got = 0;
    while (got < len) {
      const n = await this.call<number>(
        'download of',
        path,
        (s, cb) => s.read(handle, buf, offset + got, len - got, at + got, (err, bytes) => cb(err, bytes)),
        { signal },
      );
      if (n === 0)
        throw new TransferError(
          `${this.host}: ${path} ended at ${at + got} bytes; it was changed while it was being read`,
        );
      got += n;
    }
  }

  /** Runs `step` over the file's chunks, STREAM_WINDOW at once, in order of offset. */
  private async window(
    size: number,
    signal: AbortSignal | undefined,
    step: (at: number, len: number) => Promise<void>,
  ): Promise<void> {
    const chunks = this.chunks(size);
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < chunks.length && !failed) {
        if (signal?.aborted) throw abortError(this.host, signal);
        const [at, len] = chunks[next++]!;
        await step(at, len).catch((err: unknown) => {
          failed = true;
          throw err;
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(STREAM_WINDOW, chunks.length) }, worker));
  }

  end(): void {
    this.wrapper.end();
  }
}
