import type { Readable, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { abortable, type Abortable } from '../abort.js';
import { ConnectionError, TransferError } from '../errors.js';
import { fileOpLine, protocolMark, runDir, runLine } from './protocol.js';

/** The pipes of a host shell, whether an SSH channel or a local child process. */
export interface ShellPipes {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves when the channel or process is gone, with why. */
  closed: Promise<Error>;
  /** Closes stdin: the shell waits out its grace for adoption, then stops what still runs. */
  end(): void;
  /** Closes the channel (or kills the process) at once: for a login that never finished. */
  kill(): void;
}

/**
 * What the host shell saw of an output after its task (never following a
 * link): a non-empty regular file, an empty one, a directory, a symbolic
 * link, something else (a FIFO, a socket, a device), a path that runs
 * through a link, or nothing.
 */
export type OutputState = 'file' | 'empty' | 'dir' | 'link' | 'special' | 'through-link' | 'missing';

const OUTPUT_STATES: Record<string, OutputState> = {
  f: 'file',
  e: 'empty',
  d: 'dir',
  l: 'link',
  s: 'special',
  p: 'through-link',
  '-': 'missing',
};

/** What became of one path of a file operation: done, refused (a directory on its way is a link, or not a directory), or failed. */
export type FileOpState = 'done' | 'through-link' | 'failed';

const FILE_OP_STATES: Record<string, FileOpState> = { '-': 'done', p: 'through-link', x: 'failed' };

/** How a task is run (see HostShell.run). */
export interface TaskOptions {
  /** Workdir-relative outputs: removed before it starts, their directories made, their states told when it ends. */
  outputs?: readonly string[] | undefined;
  /** Called when its renderer starts (a task sent to a busy lane waits there first). */
  onStart?: (() => void) | undefined;
  /** --stall: the host shell stops it after this long with no output and no change to its output files. */
  stallMs?: number | undefined;
  /** Aborting it stops the task (its whole process group). */
  signal: AbortSignal;
}

export interface TaskExit {
  /** Exit status, or null when the shell went away first (the task may still run on the host). */
  code: number | null;
  lost?: Error | undefined;
  /** Whether the task wrote anything to its log; unknown for an adopted task. */
  wrote?: boolean | undefined;
  /** The state of each output given to `run`, in order; unknown for an adopted task. */
  outputs?: OutputState[] | undefined;
  /**
   * The task was not run: the output at this index (of those given to `run`)
   * runs through a symbolic link, so clearing it or making its directory
   * could touch something outside the workdir.
   */
  refused?: number | undefined;
  /** The host shell stopped it: its log and outputs had not changed for the run's --stall. */
  stalled?: boolean | undefined;
}

/** How much of what a login printed a warning shows. */
const STRAY_SHOWN = 200;

/** Text as a terminal would not interpret it: control characters and bytes past ASCII as \xNN. */
export function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The controller's side of a host shell (its protocol is in the header of hostShell.sh): many tasks
 * at once over one channel, each known by its id.
 */
export class HostShell {
  private dead: Error | undefined;
  private stdoutBuf = '';
  private stderrText = '';
  private readonly waiting = new Map<string, (r: TaskExit) => void>();
  private readonly starting = new Map<string, () => void>();
  /** Tasks the shell said it stopped as stalled; their exit lines follow. */
  private readonly stalled = new Set<string>();
  /**
   * Whatever the login prints (a banner, escape sequences, text without a
   * newline, before the host shell starts or from something it left running)
   * is not the protocol: only lines marked with the shell's token count, from
   * its ready line on (see PROTOCOL in hostShell.sh).
   */
  private isReady = false;
  private readonly mark: string;
  /** The login's stray output has been warned about (once a shell: the session shows it once a host). */
  private strayShown = false;
  /** Everyone waiting for the ready line (each slot of a host may ask at once). */
  private readonly readyWaiters = new Set<() => void>();

  constructor(
    private readonly pipes: ShellPipes,
    /** The shell's own directory of task files is .distray/run/<token>. */
    readonly token: string,
    private readonly host = 'local',
    /** Told, once, what the login printed into the protocol. */
    private readonly warn: (message: string) => void = () => {},
  ) {
    this.mark = protocolMark(token);
    pipes.stdin.on('error', () => {});
    pipes.stdout.on('data', (c: Buffer) => this.onStdout(c));
    pipes.stderr.on('data', (c: Buffer) => {
      this.stderrText = (this.stderrText + c.toString()).slice(-2000);
    });
    void pipes.closed.then((err) => {
      this.dead = this.stderrText.trim() ? new Error(`${err.message}: ${this.stderrText.trim()}`) : err;
      for (const resolve of this.waiting.values()) resolve({ code: null, lost: this.dead });
      this.waiting.clear();
      for (const op of this.fileOps.values()) op.reject(this.dead);
      this.fileOps.clear();
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  /**
   * Resolves once the login has finished and the host shell has started.
   * A login that takes longer than `timeoutMs` (a ~/.bashrc waiting on
   * something) is given up: the channel is closed and this rejects.
   */
  ready(timeoutMs: number, { signal }: Abortable = {}): Promise<void> {
    if (this.isReady) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onReady = (): void => settle();
      const settle = (err?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.readyWaiters.delete(onReady);
        if (err) {
          this.pipes.kill();
          reject(err);
        } else resolve();
      };
      const onAbort = (): void =>
        settle(
          new ConnectionError('error', `${this.host}: the run ended while it logged in`, { cause: signal?.reason }),
        );
      const timer = setTimeout(
        () =>
          settle(
            new ConnectionError(
              'timeout',
              `${this.host}: the login did not finish within ${timeoutMs / 1000} s (is something in its rc files, such as ~/.bashrc, waiting?); ` +
                `if it is only slow, raise loginTimeout for this host`,
            ),
          ),
        timeoutMs,
      );
      this.readyWaiters.add(onReady);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      void this.pipes.closed.then(() => {
        if (!this.isReady)
          settle(this.dead ?? new ConnectionError('lost', `${this.host}: the connection closed during login`));
      });
    });
  }

  /**
   * Runs argv as task `id` in `lane` (one per slot: a lane runs its tasks one
   * after another, so a task sent while the lane is busy waits there and
   * starts the moment the lane is free). Aborting the signal stops it (its
   * whole process group). `outputs` (workdir-relative) are removed before it
   * starts, their directories created, and their states reported when it
   * ends. `onStart` is called when its renderer starts. With `stallMs` the
   * host shell stops it once neither its output nor its output files have
   * changed for that long (its exit then says `stalled`). Its signal is
   * how it is stopped: the promise settles with the task's exit, not before.
   */
  run(lane: number, id: string, argv: readonly string[], options: TaskOptions): Promise<TaskExit> {
    if (options.onStart) this.starting.set(id, options.onStart);
    return this.await(id, runLine(lane, id, argv, options.outputs ?? [], options.stallMs), options.signal);
  }

  /** Waits for task `id` that an earlier shell (`fromToken`) started, and takes over stopping it. */
  adopt(id: string, fromToken: string, { signal }: { signal: AbortSignal }): Promise<TaskExit> {
    return this.await(id, `adopt ${id} ${fromToken}\n`, signal);
  }

  private await(id: string, line: string, signal: AbortSignal): Promise<TaskExit> {
    if (this.dead) return Promise.resolve({ code: null, lost: this.dead });
    return new Promise<TaskExit>((resolve) => {
      const onAbort = (): void => {
        this.pipes.stdin.write(`stop ${id}\n`);
      };
      this.waiting.set(id, (r) => {
        this.starting.delete(id);
        signal.removeEventListener('abort', onAbort);
        resolve(r);
      });
      signal.addEventListener('abort', onAbort, { once: true });
      this.pipes.stdin.write(line);
      if (signal.aborted) onAbort();
    });
  }

  /**
   * Retires an earlier host shell of this host, one whose connection was
   * lost but which may not know it yet: it starts nothing more, and its
   * lanes end (giving up their leases) once their running tasks end.
   */
  retire(token: string): void {
    if (!this.dead && token !== this.token) this.pipes.stdin.write(`retire ${token}\n`);
  }

  /**
   * Runs a short command of distray's own in lane 0 and returns its status
   * and output (read by `readFile`, workdir-relative). Aborting `signal`
   * stops it (or its wait for a lease) and rejects.
   */
  async command(
    argv: readonly string[],
    readFile: (path: string) => Promise<Buffer>,
    { signal }: Abortable = {},
  ): Promise<{ code: number; output: string }> {
    const id = `cmd-${randomBytes(4).toString('hex')}`;
    const stopped = (reason: unknown): Error =>
      new TransferError(`${this.host}: ${argv[0] ?? 'a command'} was stopped`, { cause: reason });
    // Stopped, it is told to stop (or never to start) and not waited for: a silent host would never say it did.
    const { code, lost, wrote } = await abortable(
      this.run(0, id, argv, { signal: signal ?? new AbortController().signal }),
      signal,
      stopped,
    );
    if (lost) throw lost;
    if (signal?.aborted) throw stopped(signal.reason);
    const output = wrote === false ? '' : (await readFile(`${runDir(this.token)}/${id}.log`)).toString();
    return { code: code ?? -1, output };
  }

  /** File operations sent and not yet answered (see fileOp). */
  private readonly fileOps = new Map<
    string,
    { resolve: (states: FileOpState[]) => void; reject: (err: Error) => void }
  >();

  /**
   * Removes (`rm`) workdir-relative paths (a file, a link itself, or a whole
   * tree), makes directories (`mkdir`, with their parents), or moves a file
   * of this shell's run directory into place (`mv`, args NAME PATH). The host
   * shell does it from inside each path's directory, entered one component at
   * a time and proved to be that directory of the workdir at that moment:
   * never through a link, however late one appears. Resolves with a state per
   * path; rejects if the shell is gone, or at once when the signal is
   * aborted (the host shell may still do it: its answer is then dropped).
   */
  fileOp(op: 'rm' | 'mkdir' | 'mv', args: readonly string[], { signal }: Abortable = {}): Promise<FileOpState[]> {
    const sent =
      op !== 'rm'
        ? this.sendFileOp(op, args)
        : new Promise<FileOpState[]>((resolve, reject) => {
            this.removals.push({ paths: args, resolve, reject });
            if (!this.removing) this.sendRemovals();
          });
    return abortable(
      sent,
      signal,
      (reason) => new TransferError(`${this.host}: ${op} ${args.join(' ')} was stopped`, { cause: reason }),
    );
  }

  /** Removals asked for while one is on its way, sent together when it is answered. */
  private readonly removals: Array<{
    paths: readonly string[];
    resolve: (states: FileOpState[]) => void;
    reject: (err: Error) => void;
  }> = [];
  private removing = false;

  /**
   * Sends the removals waiting as one line, paths of one directory next to
   * each other (the host shell removes them with one rm: a process per
   * directory, not per path), and the next batch once it is answered. A
   * host that is busy fetching outputs thus costs fewer processes, not more.
   */
  private sendRemovals(): void {
    const batch = this.removals.splice(0);
    this.removing = batch.length > 0;
    if (!this.removing) return;
    const dirOf = (p: string): string => p.slice(0, Math.max(0, p.lastIndexOf('/')));
    const entries = batch.flatMap((b, i) => b.paths.map((path, j) => ({ path, i, j, dir: dirOf(path) })));
    entries.sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
    this.sendFileOp(
      'rm',
      entries.map((e) => e.path),
    ).then(
      (states) => {
        const results = batch.map((b) => new Array<FileOpState>(b.paths.length).fill('failed'));
        entries.forEach((e, k) => (results[e.i]![e.j] = states[k] ?? 'failed'));
        batch.forEach((b, i) => b.resolve(results[i]!));
        this.sendRemovals();
      },
      (err: Error) => {
        for (const b of batch) b.reject(err);
        this.sendRemovals();
      },
    );
  }

  private sendFileOp(op: 'rm' | 'mkdir' | 'mv', args: readonly string[]): Promise<FileOpState[]> {
    if (this.dead) return Promise.reject(this.dead);
    const id = `${op}-${randomBytes(4).toString('hex')}`;
    return new Promise<FileOpState[]>((resolve, reject) => {
      this.fileOps.set(id, { resolve, reject });
      this.pipes.stdin.write(fileOpLine(op, id, args));
    });
  }

  /**
   * The task's files on the host are no longer needed. A shell removes its
   * own all at once when it ends, so only an earlier shell's (an adopted
   * task's) cost a line.
   */
  forget(id: string, token: string): void {
    if (!this.dead && token !== this.token) this.pipes.stdin.write(`forget ${id} ${token}\n`);
  }

  close(): void {
    this.pipes.end();
  }

  /**
   * The letters of a long answer (a state per path or output) sent ahead on
   * `part ID LETTERS` lines, by id: the host shell keeps every line short,
   * since a line longer than PIPE_BUF is written in pieces and another
   * line written meanwhile would land inside it.
   */
  private readonly parts = new Map<string, string>();

  /** An answer's letters: those sent ahead on `part` lines, then the line's own. */
  private lettersOf(id: string, last: string): string {
    const ahead = this.parts.get(id) ?? '';
    this.parts.delete(id);
    return ahead + last;
  }

  private onStdout(chunk: Buffer): void {
    this.stdoutBuf += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.stdoutBuf.indexOf('\n')) >= 0) {
      const raw = this.stdoutBuf.slice(0, nl);
      this.stdoutBuf = this.stdoutBuf.slice(nl + 1);
      // The mark may come after stray bytes glued before it: the protocol line is what follows it.
      const at = raw.indexOf(this.mark);
      const stray = at < 0 ? raw : raw.slice(0, at);
      if (stray.trim() !== '') this.stray(stray);
      if (at < 0) continue;
      const line = raw.slice(at + this.mark.length);
      if (!this.isReady) {
        if (line === 'ready') {
          this.isReady = true;
          // What the login said on stderr is not the shell's.
          this.stderrText = '';
          for (const w of [...this.readyWaiters]) w();
        }
        continue;
      }
      if (line.startsWith('refused ')) {
        const [id, index] = line.slice(8).split(' ');
        const resolve = this.waiting.get(id!);
        this.waiting.delete(id!);
        resolve?.({ code: null, refused: Number(index) });
        continue;
      }
      if (line.startsWith('start ')) {
        const id = line.slice(6);
        this.starting.get(id)?.();
        this.starting.delete(id);
        continue;
      }
      const part = /^part (\S+) ([-pxfedls]*)$/.exec(line);
      if (part) {
        this.parts.set(part[1]!, (this.parts.get(part[1]!) ?? '') + part[2]!);
        continue;
      }
      const did = /^did (\S+) ([-px]*)$/.exec(line);
      if (did) {
        const op = this.fileOps.get(did[1]!);
        this.fileOps.delete(did[1]!);
        op?.resolve([...this.lettersOf(did[1]!, did[2]!)].map((c) => FILE_OP_STATES[c] ?? 'failed'));
        continue;
      }
      if (line.startsWith('stalled ')) {
        this.stalled.add(line.slice(8));
        continue;
      }
      const m = /^exit (\S+) (\d+)(?: ([01])([fedlsp-]*))?$/.exec(line);
      if (!m) continue;
      const resolve = this.waiting.get(m[1]!);
      this.waiting.delete(m[1]!);
      const stalled = this.stalled.delete(m[1]!);
      resolve?.({
        code: Number(m[2]),
        ...(stalled ? { stalled } : {}),
        wrote: m[3] === undefined ? undefined : m[3] === '1',
        outputs:
          m[4] === undefined ? undefined : [...this.lettersOf(m[1]!, m[4])].map((c) => OUTPUT_STATES[c] ?? 'special'),
      });
    }
    // A login that prints without newlines: only the last bytes can hold the start of a protocol line.
    if (this.stdoutBuf.length > 65536) {
      this.stray(this.stdoutBuf);
      this.stdoutBuf = this.stdoutBuf.slice(-4096);
    }
  }

  private stray(text: string): void {
    if (this.strayShown) return;
    this.strayShown = true;
    const shown = text.length > STRAY_SHOWN ? `${visible(text.slice(0, STRAY_SHOWN))}...` : visible(text);
    this.warn(
      `host ${this.host}: its login printed "${shown}" ${this.isReady ? 'while distray ran' : 'before distray started'} (ignored: it is not distray's); ` +
        `make its rc files (such as ~/.bashrc) print nothing for a non-interactive shell`,
    );
  }
}
