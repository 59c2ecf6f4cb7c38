import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { errorMessage } from '../errors.js';
import { EVENTS_VERSION } from './runEvents.js';

/**
 * --events FILE|-: one JSON object per line, `v` first, handed to the file
 * (or stdout) as each event happens, so a CI job can tail it. The stream is
 * a witness of the run, never a reason to stop it: a file that cannot be
 * written or a reader that went away (a broken pipe) is reported once, and
 * the run goes on without it.
 */
export class EventStream {
  private broken = false;
  private readonly done: Promise<void>;

  private constructor(
    private readonly out: Writable,
    private readonly target: string,
    private readonly owned: boolean,
    private readonly note: (text: string) => void,
  ) {
    this.done = new Promise<void>((resolve) => {
      out.once('finish', resolve);
      out.once('close', resolve);
      out.on('error', (err) => {
        this.fail(err);
        resolve();
      });
    });
  }

  /** `-` is stdout; anything else a file, created or emptied now. `note` reports a failure once. */
  static open(target: string, note: (text: string) => void, stdout: Writable = process.stdout): EventStream {
    if (target === '-') return new EventStream(stdout, 'stdout', false, note);
    return new EventStream(createWriteStream(target, { flags: 'w' }), target, true, note);
  }

  write(event: object): void {
    if (this.broken) return;
    try {
      this.out.write(`${JSON.stringify({ v: EVENTS_VERSION, ...event })}\n`);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Resolves once what was written has been handed on (a file is closed; stdout stays open). */
  async close(): Promise<void> {
    if (this.owned) {
      if (!this.broken) this.out.end();
      await this.done;
      return;
    }
    if (this.broken || !this.out.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      this.out.once('drain', resolve);
      this.out.once('error', () => resolve());
      this.out.once('close', resolve);
    });
  }

  private fail(err: unknown): void {
    if (this.broken) return;
    this.broken = true;
    const code = (err as NodeJS.ErrnoException | null)?.code;
    const why = code === 'EPIPE' ? 'its reader went away (a broken pipe)' : errorMessage(err);
    this.note(`--events ${this.target}: cannot write the event stream: ${why}; the run goes on without it`);
    if (this.owned) this.out.destroy();
  }
}
