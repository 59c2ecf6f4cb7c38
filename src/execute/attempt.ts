import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { HostSession } from '../hosts/session.js';
import type { SlotShell } from '../hosts/slotShell.js';
import type { Plan, Task } from '../plan/plan.js';
import type { AttemptOutcome, SchedulerHost } from '../scheduler/scheduler.js';
import { IMAGE_EXTENSIONS, decodes } from '../transfer/complete.js';
import { download, removeRemote, upload } from '../transfer/copies.js';
import { EXIT_NO_WORKDIR } from '../ssh/wrapper.js';

export interface AttemptOptions {
  plan: Plan;
  /** Per attempt, in milliseconds; undefined for no limit. */
  timeoutMs?: number | undefined;
  logDir: string;
  /** Called once a task's outputs are all in place locally (stitching hooks in here). */
  onOutputs?: ((task: Task) => Promise<void>) | undefined;
}

const TAIL_BYTES = 2048;

/** Keeps the last bytes of a renderer's output for error messages. */
class Tail {
  private buf = Buffer.alloc(0);
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length > TAIL_BYTES * 2) this.buf = this.buf.subarray(this.buf.length - TAIL_BYTES);
  }
  lines(n = 10): string {
    return this.buf.toString('utf8').trimEnd().split('\n').slice(-n).join('\n');
  }
}

function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '-');
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

/** Runs attempts of tasks on one host session: copies in, renderer, copies out. */
export class HostRunner implements SchedulerHost {
  readonly name: string;
  readonly slots: number;
  private lostError: Error | undefined;
  /** Output directories already made on this host: renderers rarely create their own. */
  private readonly madeDirs = new Map<string, Promise<void>>();
  /** Slot shells between tasks: one per slot at most, reused for the whole run. */
  private readonly idle: SlotShell[] = [];

  constructor(
    private readonly session: HostSession,
    slots: number,
    private readonly options: AttemptOptions,
  ) {
    this.name = session.name;
    this.slots = slots;
    void session.lost.then((e) => (this.lostError = e));
  }

  async run(task: Task, attempt: number, signal: AbortSignal): Promise<AttemptOutcome> {
    const { plan } = this.options;
    const host = this.name;
    const outs = plan.taskOuts(task, host);
    try {
      for (const copy of plan.taskIns(task, host)) await upload(this.session, copy);
      // A stale output from an earlier run must never pass for this attempt's.
      for (const copy of outs) {
        await removeRemote(this.session, copy.remote);
        const dir = copy.remote.includes('/') ? copy.remote.slice(0, copy.remote.lastIndexOf('/')) : '';
        if (dir) {
          let made = this.madeDirs.get(dir);
          if (!made) {
            made = this.session.mkdirp(dir);
            this.madeDirs.set(dir, made);
            made.catch(() => this.madeDirs.delete(dir));
          }
          await made;
        }
      }
    } catch (err) {
      return this.lostOr({ kind: 'failed', message: errorMessage(err) });
    }

    const timeout = this.options.timeoutMs !== undefined ? AbortSignal.timeout(this.options.timeoutMs) : undefined;
    const stop = timeout ? AbortSignal.any([signal, timeout]) : signal;
    await mkdir(this.options.logDir, { recursive: true });
    const logPath = join(this.options.logDir, `${slug(task.label)}.${slug(host)}.${attempt}.log`);
    const log = createWriteStream(logPath);
    const tail = new Tail();
    const argv = plan.argv(task, host);
    log.write(`# ${task.label} on ${host}, attempt ${attempt}\n# ${JSON.stringify(argv)}\n`);
    let slot: SlotShell;
    try {
      slot = this.idle.pop() ?? (await this.session.openSlot());
    } catch (err) {
      log.end();
      return this.lostOr({ kind: 'failed', message: `cannot start a shell on ${host}: ${errorMessage(err)}` });
    }
    const result = await slot.run(argv, {
      signal: stop,
      onOutput: (chunk) => {
        log.write(chunk);
        tail.push(chunk);
      },
    });
    if (slot.usable) this.idle.push(slot);
    log.write(`\n# exit status: ${result.code ?? 'none'}${result.lost ? ` (${result.lost.message})` : ''}\n`);
    await new Promise((resolve) => log.end(resolve));

    if (result.lost) return { kind: 'lost', message: result.lost.message };
    if (signal.aborted) return { kind: 'cancelled' };
    const failed = (message: string): AttemptOutcome => {
      const lines = tail.lines();
      return { kind: 'failed', message: lines ? `${message}; last output:\n${lines}` : message, log: logPath };
    };
    if (timeout?.aborted) return failed(`timed out after ${formatDuration(this.options.timeoutMs!)} and was stopped`);
    if (result.code === EXIT_NO_WORKDIR) return failed(`cannot enter the workdir on ${host}`);
    if (result.code === 127) return failed(`${argv[0]} was not found on ${host} (exit 127): install it there or fix <exec>`);
    if (result.code !== 0) {
      const how = result.code === null ? 'was killed' : result.code > 128 ? `was killed by signal ${result.code - 128}` : `exited with status ${result.code}`;
      return failed(`${argv[0]} ${how} (log: ${logPath})`);
    }

    try {
      for (const copy of outs) {
        const image = IMAGE_EXTENSIONS.has(extname(copy.local).toLowerCase());
        await download(this.session, copy, image ? decodes : undefined);
        await removeRemote(this.session, copy.remote);
      }
      await this.options.onOutputs?.(task);
    } catch (err) {
      return this.lostOr(failed(errorMessage(err)));
    }
    return { kind: 'done' };
  }

  /** A copy that failed because the host went away is a lost host, not a failed task. */
  private lostOr(outcome: AttemptOutcome): AttemptOutcome {
    return this.lostError ? { kind: 'lost', message: this.lostError.message } : outcome;
  }
}
