import type { Readable, Writable } from 'node:stream';
import { runLine } from '../ssh/wrapper.js';
import type { ExecOptions, ExecResult } from './session.js';

/** The pipes of a slot shell, whether an SSH channel or a local child process. */
export interface SlotPipes {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves when the channel or process is gone, with the reason if it was lost. */
  closed: Promise<Error | undefined>;
  /** Closes stdin: the slot shell stops any running task and exits. */
  end(): void;
}

/** How long the end-of-output token may lag behind the exit line. */
const OUTPUT_GRACE_MS = 2000;

/**
 * The controller's side of one slot shell (see wrapper.ts): runs one task at
 * a time, streams its output, and reports its exit status once both the
 * `exit` line and the end-of-output token have arrived.
 */
export class SlotShell {
  private busy = false;
  private dead: Error | undefined;
  private stdoutBuf = '';
  private stderrTail = Buffer.alloc(0);
  private current:
    | { options: ExecOptions; status?: number | undefined; outputDone: boolean; resolve(r: ExecResult): void }
    | undefined;

  constructor(
    private readonly pipes: SlotPipes,
    private readonly token: string,
  ) {
    pipes.stdin.on('error', () => {});
    pipes.stdout.on('data', (c: Buffer) => this.onStdout(c));
    pipes.stderr.on('data', (c: Buffer) => this.onStderr(c));
    void pipes.closed.then((err) => {
      this.dead = err ?? new Error('the slot shell exited');
      const cur = this.current;
      this.current = undefined;
      cur?.resolve({ code: null, lost: this.dead });
    });
  }

  get usable(): boolean {
    return !this.dead && !this.busy;
  }

  run(argv: readonly string[], options: ExecOptions): Promise<ExecResult> {
    if (this.dead) return Promise.resolve({ code: null, lost: this.dead });
    if (this.busy) throw new Error('slot shell is busy');
    this.busy = true;
    return new Promise<ExecResult>((resolve) => {
      const onAbort = (): void => {
        this.pipes.stdin.write('stop\n');
      };
      this.current = {
        options,
        outputDone: false,
        resolve: (r) => {
          options.signal.removeEventListener('abort', onAbort);
          this.busy = false;
          resolve(r);
        },
      };
      options.signal.addEventListener('abort', onAbort, { once: true });
      this.pipes.stdin.write(runLine(argv));
      if (options.signal.aborted) onAbort();
    });
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
      const m = /^exit (\d+)$/.exec(line);
      if (m && this.current) {
        const cur = this.current;
        cur.status = Number(m[1]);
        this.maybeFinish();
        // The token should follow at once; never hang a slot if it does not.
        if (this.current === cur) setTimeout(() => {
          if (this.current !== cur) return;
          cur.outputDone = true;
          this.maybeFinish();
        }, OUTPUT_GRACE_MS).unref();
      }
    }
  }

  /**
   * Passes output through until the token line, holding back only as many
   * bytes as could be the start of a token split across chunks.
   */
  private onStderr(chunk: Buffer): void {
    const marker = Buffer.from(`\n${this.token}\n`);
    let buf = Buffer.concat([this.stderrTail, chunk]);
    for (;;) {
      const at = buf.indexOf(marker);
      if (at < 0) break;
      this.emit(buf.subarray(0, at));
      buf = buf.subarray(at + marker.length);
      if (this.current) {
        this.current.outputDone = true;
        this.maybeFinish();
      }
    }
    const keep = Math.min(buf.length, marker.length - 1);
    this.emit(buf.subarray(0, buf.length - keep));
    this.stderrTail = Buffer.from(buf.subarray(buf.length - keep));
  }

  private emit(bytes: Buffer): void {
    if (bytes.length > 0) this.current?.options.onOutput(bytes);
  }

  private maybeFinish(): void {
    const cur = this.current;
    if (!cur || cur.status === undefined || !cur.outputDone) return;
    this.current = undefined;
    cur.resolve({ code: cur.status });
  }
}
