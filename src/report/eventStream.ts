import { constants, createWriteStream, fstat, open, stat } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { errorMessage } from '../errors.js';
import { EVENTS_VERSION } from '../fold/runEvents.js';

/**
 * How long the event stream's reader may take: to open a FIFO given to
 * --events, or to take what was written to it (a pipe's reader that stopped
 * reading). After that the stream is dropped with a warning and the run goes
 * on without it.
 */
export const EVENTS_READER_WAIT_MS = 10_000;
/** Once the run is stopped (Ctrl+C), how long the reader has to take the last events. */
const STOPPED_WAIT_MS = 2_000;
/** How often a FIFO without a reader is tried again, meanwhile. */
const FIFO_RETRY_MS = 100;

let gaveUpStdout = false;
/**
 * Whether --events - gave up its reader: what is left in stdout's pipe
 * would keep the process from exiting for as long as that reader does not
 * read, so distray exits explicitly instead (see cli/main.ts).
 */
export function stdoutGivenUp(): boolean {
  return gaveUpStdout;
}

export interface EventStreamOptions {
  /** The run's: once aborted (Ctrl+C), closing waits for no reader. */
  signal?: AbortSignal | undefined;
  readerWaitMs?: number | undefined;
}

/**
 * --events FILE|-: one JSON object per line, `v` first, handed to the file
 * (or stdout) as each event happens, so a CI job can tail it. The stream is
 * a witness of the run, never a reason to stop it: a file that cannot be
 * written or a reader that went away (a broken pipe) is reported once, and
 * the run goes on without it. Nothing here blocks: the file is opened
 * without waiting (a FIFO waits for its reader here, not in a thread of
 * Node's that a blocked open would hold for good, even past Ctrl+C), a
 * FIFO is written as a pipe, and a reader that takes nothing for
 * EVENTS_READER_WAIT_MS is dropped.
 */
export class EventStream {
  private broken = false;
  private out: Writable | undefined;
  /** Lines written before the file was open. */
  private early: string[] = [];
  private readonly opened: Promise<void>;
  private done: Promise<void> = Promise.resolve();
  /** Running while the reader has not taken what was written. */
  private slowTimer: NodeJS.Timeout | undefined;
  private readonly waitMs: number;
  /** Settles when the stream is given up: nothing written is waited for any more. */
  private readonly givenUp: Promise<void>;
  private giveUp!: () => void;

  private constructor(
    private readonly target: string,
    private readonly owned: boolean,
    private readonly note: (text: string) => void,
    private readonly options: EventStreamOptions,
    open: (ready: (out: Writable) => void, fail: (why: unknown) => void) => void,
  ) {
    this.waitMs = options.readerWaitMs ?? EVENTS_READER_WAIT_MS;
    this.givenUp = new Promise<void>((resolve) => (this.giveUp = resolve));
    this.opened = new Promise<void>((resolve) => {
      open(
        (out) => {
          this.attach(out);
          resolve();
        },
        (why) => {
          this.fail(why);
          resolve();
        },
      );
    });
  }

  /** `-` is stdout; anything else a file, created or emptied now. `note` reports a failure once. */
  static open(
    target: string,
    note: (text: string) => void,
    stdout: Writable = process.stdout,
    options: EventStreamOptions = {},
  ): EventStream {
    if (target === '-') return new EventStream('stdout', false, note, options, (ready) => ready(stdout));
    return new EventStream(target, true, note, options, (ready, fail) => openFile(target, options, ready, fail));
  }

  private attach(out: Writable): void {
    if (this.broken) {
      if (this.owned) out.destroy();
      return;
    }
    this.out = out;
    this.done = new Promise<void>((resolve) => {
      out.once('finish', resolve);
      out.once('close', resolve);
      out.on('error', (err) => {
        this.fail(err);
        resolve();
      });
    });
    out.on('drain', () => this.taken());
    for (const line of this.early.splice(0)) this.send(line);
  }

  write(event: object): void {
    if (this.broken) return;
    const line = `${JSON.stringify({ v: EVENTS_VERSION, ...event })}\n`;
    if (this.out) this.send(line);
    else this.early.push(line);
  }

  private send(line: string): void {
    try {
      if (!this.out!.write(line)) this.waitForReader();
    } catch (err) {
      this.fail(err);
    }
  }

  /** The reader has this long to take what is waiting (less once the run is stopped). */
  private waitForReader(): void {
    const ms = this.options.signal?.aborted ? Math.min(this.waitMs, STOPPED_WAIT_MS) : this.waitMs;
    this.slowTimer ??= setTimeout(() => this.fail(`its reader took nothing for ${ms / 1000} s`), ms);
  }

  private taken(): void {
    clearTimeout(this.slowTimer);
    this.slowTimer = undefined;
  }

  /** Resolves once what was written has been handed on (a file is closed; stdout stays open), or the reader was given up. */
  async close(): Promise<void> {
    await this.opened;
    const out = this.out;
    if (this.broken || !out) return this.stop();
    if (this.owned) out.end();
    else if (!out.writableNeedDrain) return this.stop();
    // Once the run is stopped, its end waits less for the reader.
    if (this.options.signal?.aborted) this.taken();
    this.waitForReader();
    await Promise.race([
      this.givenUp,
      this.owned
        ? this.done
        : new Promise<void>((resolve) => {
            out.once('drain', resolve);
            out.once('error', () => resolve());
            out.once('close', resolve);
          }),
    ]);
    this.stop();
  }

  private stop(): void {
    this.taken();
  }

  private fail(err: unknown): void {
    if (this.broken) return;
    this.broken = true;
    this.giveUp();
    this.early = [];
    this.taken();
    const code = (err as NodeJS.ErrnoException | null)?.code;
    const why =
      typeof err === 'string' ? err : code === 'EPIPE' ? 'its reader went away (a broken pipe)' : errorMessage(err);
    this.note(`--events ${this.target}: cannot write the event stream: ${why}; the run goes on without it`);
    if (this.owned) this.out?.destroy();
    if (this.out === process.stdout && this.out.writableLength > 0) gaveUpStdout = true;
  }
}

/**
 * Opens --events' file without ever blocking: O_NONBLOCK, so that a FIFO
 * without a reader fails at once (ENXIO) instead of waiting in a thread, and
 * is tried again until a reader comes or `readerWaitMs` has passed. A FIFO
 * is written as a pipe (net.Socket), so a reader that does not read holds
 * nothing up; anything else as a file.
 */
function openFile(
  target: string,
  options: EventStreamOptions,
  ready: (out: Writable) => void,
  fail: (why: unknown) => void,
): void {
  const waitMs = options.readerWaitMs ?? EVENTS_READER_WAIT_MS;
  const deadline = performance.now() + waitMs;
  const attempt = (): void => {
    open(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NONBLOCK,
      0o666,
      (err, fd) => {
        if (err) {
          if (err.code !== 'ENXIO') return fail(err);
          // No reader on a FIFO yet, or a socket (which never has one).
          stat(target, (serr, info) => {
            if (serr) return fail(serr);
            if (info.isSocket()) return fail(`${target} is a socket; name a file or a FIFO`);
            if (options.signal?.aborted) return fail('no reader opened the FIFO before the run was stopped');
            if (performance.now() >= deadline) return fail(`no reader opened the FIFO within ${waitMs / 1000} s`);
            setTimeout(attempt, FIFO_RETRY_MS);
          });
          return;
        }
        fstat(fd, (ferr, info) => {
          if (ferr) return fail(ferr);
          try {
            ready(info.isFIFO() ? new Socket({ fd, readable: false, writable: true }) : createWriteStream('', { fd }));
          } catch (e) {
            fail(e);
          }
        });
      },
    );
  };
  attempt();
}
