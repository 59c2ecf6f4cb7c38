import type { Readable, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { runDir, runLine } from '../ssh/wrapper.js';

/** The pipes of a host shell, whether an SSH channel or a local child process. */
export interface ShellPipes {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves when the channel or process is gone, with why. */
  closed: Promise<Error>;
  /** Closes stdin: the shell waits out its grace for adoption, then stops what still runs. */
  end(): void;
}

/** What the host shell saw of an output after its task: a non-empty file, an empty one, a directory, or nothing. */
export type OutputState = 'file' | 'empty' | 'dir' | 'missing';

const OUTPUT_STATES: Record<string, OutputState> = { f: 'file', e: 'empty', d: 'dir', '-': 'missing' };

export interface TaskExit {
  /** Exit status, or null when the shell went away first (the task may still run on the host). */
  code: number | null;
  lost?: Error | undefined;
  /** Whether the task wrote anything to its log; unknown for an adopted task. */
  wrote?: boolean | undefined;
  /** The state of each output given to `run`, in order; unknown for an adopted task. */
  outputs?: OutputState[] | undefined;
}

/**
 * The controller's side of a host shell (see ssh/wrapper.ts): many tasks
 * at once over one channel, each known by its id.
 */
export class HostShell {
  private dead: Error | undefined;
  private stdoutBuf = '';
  private stderrText = '';
  private readonly waiting = new Map<string, (r: TaskExit) => void>();
  private readonly starting = new Map<string, () => void>();

  constructor(
    private readonly pipes: ShellPipes,
    /** The shell's own directory of task files is .distray/run/<token>. */
    readonly token: string,
  ) {
    pipes.stdin.on('error', () => {});
    pipes.stdout.on('data', (c: Buffer) => this.onStdout(c));
    pipes.stderr.on('data', (c: Buffer) => {
      this.stderrText = (this.stderrText + c.toString()).slice(-2000);
    });
    void pipes.closed.then((err) => {
      this.dead = this.stderrText.trim() ? new Error(`${err.message}: ${this.stderrText.trim()}`) : err;
      for (const resolve of this.waiting.values()) resolve({ code: null, lost: this.dead });
      this.waiting.clear();
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  /**
   * Runs argv as task `id` in `lane` (one per slot: a lane runs its tasks one
   * after another, so a task sent while the lane is busy waits there and
   * starts the moment the lane is free). Aborting the signal stops it (its
   * whole process group). `outputs` (workdir-relative) are removed before it
   * starts, their directories created, and their states reported when it
   * ends. `onStart` is called when its renderer starts.
   */
  run(lane: number, id: string, argv: readonly string[], signal: AbortSignal, outputs: readonly string[] = [], onStart?: () => void): Promise<TaskExit> {
    if (onStart) this.starting.set(id, onStart);
    return this.await(id, runLine(lane, id, argv, outputs), signal);
  }

  /** Waits for task `id` that an earlier shell (`fromToken`) started, and takes over stopping it. */
  adopt(id: string, fromToken: string, signal: AbortSignal): Promise<TaskExit> {
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
   * and output (read by `readFile`, workdir-relative).
   */
  async command(argv: readonly string[], readFile: (path: string) => Promise<Buffer>): Promise<{ code: number; output: string }> {
    const id = `cmd-${randomBytes(4).toString('hex')}`;
    const { code, lost, wrote } = await this.run(0, id, argv, new AbortController().signal);
    if (lost) throw lost;
    const output = wrote === false ? '' : (await readFile(`${runDir(this.token)}/${id}.log`)).toString();
    return { code: code ?? -1, output };
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

  private onStdout(chunk: Buffer): void {
    this.stdoutBuf += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.stdoutBuf.indexOf('\n')) >= 0) {
      const line = this.stdoutBuf.slice(0, nl);
      this.stdoutBuf = this.stdoutBuf.slice(nl + 1);
      if (line.startsWith('start ')) {
        const id = line.slice(6);
        this.starting.get(id)?.();
        this.starting.delete(id);
        continue;
      }
      const m = /^exit (\S+) (\d+)(?: ([01])([fed-]*))?$/.exec(line);
      if (!m) continue;
      const resolve = this.waiting.get(m[1]!);
      this.waiting.delete(m[1]!);
      resolve?.({
        code: Number(m[2]),
        wrote: m[3] === undefined ? undefined : m[3] === '1',
        outputs: m[4] === undefined ? undefined : [...m[4]].map((c) => OUTPUT_STATES[c]!),
      });
    }
  }
}
