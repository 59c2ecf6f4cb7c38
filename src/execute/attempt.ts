import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { extname, join } from 'node:path';
import { LinkRefused, LocalFault, errorMessage } from '../errors.js';
import { writeFileAtomically } from '../fsutil/atomicWrite.js';
import { writingLocal } from '../fsutil/localWrite.js';
import { linkMessage, type HostSession } from '../hosts/session.js';
import type { HostShell, TaskExit } from '../hostShell/hostShell.js';
import type { Plan, Task } from '../plan/plan.js';
import {
  isRunStop,
  type AttemptFailure,
  type AttemptOutcome,
  type AttemptSlot,
  type SchedulerHost,
} from '../scheduler/scheduler.js';
import { describeFrames } from '../plan/chunks.js';
import { DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, imageProblem } from '../transfer/complete.js';
import { Superseded, download, removeRemote, upload } from '../transfer/copies.js';
import {
  EXIT_NOT_STARTED,
  EXIT_NO_LEASE,
  EXIT_NO_WORKDIR,
  EXIT_VANISHED,
  KILL_GRACE_SECONDS,
  runDir,
  runLine,
} from '../hostShell/protocol.js';
import {
  KEEP_FINISHED_MS,
  LOG_KEPT,
  MAX_QUEUED_LINE,
  REMOVE_AFTER_STOP_MS,
  STOP_CONFIRM_SLACK_MS,
  TAIL_LINES,
} from '../tuning.js';

/** Once the run is stopped, how long a host has to confirm that a renderer it was told to stop has ended (see tuning.ts). */
export const STOP_CONFIRM_MS = KILL_GRACE_SECONDS * 1000 + STOP_CONFIRM_SLACK_MS;

export interface AttemptOptions {
  plan: Plan;
  /** Per attempt, in milliseconds; undefined for no limit. */
  timeoutMs?: number | undefined;
  /** --stall, in milliseconds: the host shell stops an attempt whose output and output files have not changed for this long. */
  stallMs?: number | undefined;
  logDir: string;
  /** Called once a task's outputs are all in place locally (stitching hooks in here). */
  onOutputs?: ((task: Task) => Promise<void>) | undefined;
  /** How long tasks outlive a lost connection on the host, waiting to be adopted. */
  graceMs: number;
  /** After the host's connection is lost: its runner once it is back, if that is within `withinMs`. */
  rejoined?: ((host: string, withinMs: number, signal: AbortSignal) => Promise<HostRunner | undefined>) | undefined;
  note?: ((text: string) => void) | undefined;
  /** --max-pixels: an image output that declares more is refused undecoded (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number | undefined;
  /**
   * This machine could not write a file of the attempt's (its log, an
   * output): told here, the run stops, and the attempt ends cancelled, never
   * charged to its host. Without it, the LocalFault is thrown.
   */
  onLocalFault?: ((fault: LocalFault) => void) | undefined;
}

function tailOf(output: Buffer): string {
  return output
    .subarray(Math.max(0, output.length - 4096))
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .slice(-TAIL_LINES)
    .join('\n');
}

function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]+/g, '-');
}

/** An attempt that failed before its renderer ran. */
function notRun(stage: AttemptFailure['stage']): AttemptFailure {
  return { stage, exitCode: null, signal: null, timedOut: false, stalled: false, notFound: false };
}

/** SIGTERM for 15, as Node names signals; the number itself for one it does not know. */
function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

/** When each attempt's signal was aborted: the bound on bringing back finished work counts from then. */
const stopTimes = new WeakMap<AbortSignal, number>();

/** Notes when `signal` is aborted (see stopTimes). */
function noteStop(signal: AbortSignal): void {
  if (signal.aborted) stopTimes.set(signal, stopTimes.get(signal) ?? Date.now());
  else signal.addEventListener('abort', () => stopTimes.set(signal, Date.now()), { once: true });
}

/**
 * The signal an attempt's outputs are fetched under: aborted with the
 * attempt, except when the whole run is stopping, when what is finished is
 * still brought back, for at most KEEP_FINISHED_MS.
 */
function keepingFinished(signal: AbortSignal): AbortSignal {
  const ctl = new AbortController();
  const stopped = (): void => {
    if (!isRunStop(signal)) return ctl.abort(signal.reason);
    // Counted from the stop (see stopTimes), not from when a renderer slow to stop ended: the run's end stays bounded.
    const left = KEEP_FINISHED_MS - (Date.now() - (stopTimes.get(signal) ?? Date.now()));
    setTimeout(() => ctl.abort(signal.reason), Math.max(0, left)).unref();
  };
  if (signal.aborted) stopped();
  else signal.addEventListener('abort', stopped, { once: true });
  return ctl.signal;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

/** How an attempt's end is collected (see HostRunner.finish). */
interface FinishOptions {
  slot: AttemptSlot;
  /** Bytes it moved, added to as its outputs come. */
  moved: Moved;
  /** --timeout's own signal: aborted, the renderer timed out. */
  timeout?: AbortSignal | undefined;
  /** The attempt's: aborted when it is stopped (a copy elsewhere won, or the run is stopping). */
  signal: AbortSignal;
}

/** Bytes an attempt sent to its host (its --in copies) and fetched back (its --out copies). */
interface Moved {
  in: number;
  out: number;
}

interface Started {
  task: Task;
  attempt: number;
  id: string;
  /** The host shell that started it: its files live under that shell's run directory. */
  token: string;
  argv: string[];
  /** Its renderer started (the host shell said so, or it is adopted): a task stopped before that made nothing of its own. */
  ran?: boolean;
}

/** Runs attempts of tasks on one host session: copies in, renderer, copies out. */
export class HostRunner implements SchedulerHost {
  readonly name: string;
  readonly slots: number;
  private lostError: Error | undefined;

  constructor(
    private readonly session: HostSession,
    slots: number,
    private readonly options: AttemptOptions,
  ) {
    this.name = session.name;
    this.slots = slots;
    this.sharedPaths = options.plan.sharedRemotePaths().length > 0;
    void session.lost.then((e) => (this.lostError = e));
  }

  /**
   * Whether tasks share a remote path (an --in or --out the same for every
   * task, allowed with one slot): then a slot's next task neither waits in
   * its lane nor starts before this one's outputs are in, or it would
   * replace them (or its inputs would change under this one).
   */
  private readonly sharedPaths: boolean;

  /** Its host shell queues a slot's next task behind the running one (see hostShell/protocol.ts). */
  get queues(): boolean {
    return !this.sharedPaths;
  }

  /** A queued task's line waits in a pipe on the host: keep it well inside the pipe's buffer. */
  canQueue(task: Task): boolean {
    const outputs = this.options.plan.taskOuts(task, this.name).map((c) => c.remote);
    return runLine(0, 'id', this.options.plan.argv(task, this.name), outputs).length <= MAX_QUEUED_LINE;
  }

  async run(task: Task, attempt: number, signal: AbortSignal, slot: AttemptSlot): Promise<AttemptOutcome> {
    // Bytes this attempt moved, whatever its outcome: the events and per-host figures add them up.
    const moved: Moved = { in: 0, out: 0 };
    noteStop(signal);
    this.noteRunStop(signal);
    let outcome: AttemptOutcome;
    try {
      outcome = await this.runMoving(task, attempt, signal, slot, moved);
    } catch (err) {
      // This machine's disk, not the host: the run stops (see onLocalFault), and the host is not charged.
      if (!(err instanceof LocalFault) || !this.options.onLocalFault) throw err;
      this.options.onLocalFault(err);
      outcome = { kind: 'cancelled' };
    }
    return { ...outcome, bytes: { in: moved.in, out: moved.out } };
  }

  private async runMoving(
    task: Task,
    attempt: number,
    signal: AbortSignal,
    slot: AttemptSlot,
    moved: Moved,
  ): Promise<AttemptOutcome> {
    try {
      for (const copy of this.options.plan.taskIns(task, this.name))
        moved.in += await upload(this.session, copy, { signal });
    } catch (err) {
      // Stopped while its inputs were sent (a copy elsewhere won or took its place, or the run is stopping): it did not fail.
      if (signal.aborted) return { kind: 'cancelled' };
      return this.lostOr({ kind: 'failed', message: errorMessage(err), failure: notRun('input') });
    }
    let shell: HostShell;
    try {
      shell = await this.session.shell();
    } catch (err) {
      return this.lostOr({
        kind: 'failed',
        message: `cannot start a shell on ${this.name}: ${errorMessage(err)}`,
        failure: notRun('start'),
      });
    }
    const started: Started = {
      task,
      attempt,
      id: `${task.index}-${attempt}-${randomBytes(3).toString('hex')}`,
      token: shell.token,
      argv: this.options.plan.argv(task, this.name),
    };
    // --timeout counts from when the renderer starts, not from when the task was queued behind another.
    const { timeoutMs } = this.options;
    const timeoutCtl = timeoutMs !== undefined ? new AbortController() : undefined;
    let timer: NodeJS.Timeout | undefined;
    const onStart = (): void => {
      started.ran = true;
      slot.started();
      if (timeoutCtl) timer = setTimeout(() => timeoutCtl.abort(), timeoutMs);
    };
    const timeout = timeoutCtl?.signal;
    const stop = timeout ? AbortSignal.any([signal, timeout]) : signal;
    // The host shell removes stale outputs (one must never pass for this attempt's) and creates their directories.
    const outputs = this.options.plan.taskOuts(task, this.name).map((c) => c.remote);
    const exit = await stopBounded(
      shell.run(slot.lane, started.id, started.argv, {
        outputs,
        onStart,
        stallMs: this.options.stallMs,
        signal: stop,
      }),
      signal,
    );
    clearTimeout(timer);
    if (!exit) {
      this.options.note?.(
        `${task.label}: ${this.name} did not confirm within ${STOP_CONFIRM_MS / 1000} s that its renderer stopped (the host may have gone silent); ` +
          `its host shell stops it when it finds the run gone`,
      );
      return { kind: 'cancelled' };
    }
    if (exit.refused !== undefined) {
      const path = outputs[exit.refused] ?? 'an output';
      return {
        kind: 'failed',
        message: `${task.label} was not run: ${linkMessage(path, this.name)}`,
        failure: notRun('start'),
      };
    }
    if (exit.lost) {
      // The renderer may well still be running on the host (a network blip):
      // if the host is back within the grace period, pick up its result there.
      const next = signal.aborted ? undefined : await this.options.rejoined?.(this.name, this.options.graceMs, signal);
      if (!next) return { kind: 'lost', message: exit.lost.message };
      return next.adopt(started, signal, slot, moved);
    }
    // A renderer that succeeded frees its slot now: its outputs are fetched while the next task renders
    // (unless tasks share a remote path). A failure is settled first, so a host that fails everything
    // is taken out before it takes more.
    if (exit.code === 0 && !signal.aborted && !this.sharedPaths) slot.released?.();
    return this.finish(shell, started, exit, { slot, moved, timeout, signal });
  }

  /** Takes over a task that this host's previous connection started. */
  private async adopt(started: Started, signal: AbortSignal, slot: AttemptSlot, moved: Moved): Promise<AttemptOutcome> {
    this.noteRunStop(signal);
    let shell: HostShell;
    try {
      shell = await this.session.shell();
    } catch (err) {
      return { kind: 'lost', message: errorMessage(err) };
    }
    const exit = await stopBounded(shell.adopt(started.id, started.token, { signal }), signal);
    if (!exit) return { kind: 'cancelled' };
    if (exit.lost) return { kind: 'lost', message: exit.lost.message };
    if (exit.code === EXIT_NOT_STARTED || exit.code === EXIT_VANISHED) {
      return {
        kind: 'lost',
        message: `${started.task.label} did not survive on ${this.name} while the connection was down`,
      };
    }
    this.options.note?.(`${started.task.label}: picked up its result on ${this.name} after the connection came back`);
    started.ran = true;
    return this.finish(shell, started, exit, { slot, moved, signal });
  }

  /** After the renderer's exit: its log kept, and its outputs checked and fetched (or what a stop keeps of them). */
  private async finish(shell: HostShell, s: Started, exit: TaskExit, options: FinishOptions): Promise<AttemptOutcome> {
    const { slot, moved, timeout, signal } = options;
    const { plan } = this.options;
    const host = this.name;
    const code = exit.code;
    let output: Buffer = Buffer.alloc(0);
    let outputSize = 0;
    try {
      // A quiet renderer costs no round trips for its log; a loud one costs its last LOG_KEPT bytes, however much it wrote.
      if (exit.wrote !== false)
        ({ data: output, size: outputSize } = await this.session.readTail(`${runDir(s.token)}/${s.id}.log`, LOG_KEPT));
    } catch {
      // No output file (the task never started, or the host lost it): the log says so.
    }
    shell.forget(s.id, s.token);
    const logPath = join(this.options.logDir, `${slug(s.task.label)}.${slug(host)}.${s.attempt}.log`);
    const cut = outputSize - output.length;
    // Whole or not at all: a log cut short by a full disk is never left at its name.
    const writeLog = (): Promise<void> =>
      writingLocal(logPath, { what: 'the log', option: '--log-dir' }, () =>
        writeFileAtomically(logPath, [
          `# ${s.task.label} on ${host}, attempt ${s.attempt}\n# ${JSON.stringify(s.argv)}\n`,
          cut > 0
            ? `# output cut: its first ${cut} bytes of ${outputSize} are not kept, only the last ${output.length}\n`
            : '',
          output,
          `\n# exit status: ${code ?? 'none'}\n`,
        ]),
      );
    // A renderer that succeeded without a word leaves no log: there is nothing to keep.
    const quiet = code === 0 && output.length === 0;
    if (!quiet) await writeLog();

    // A whole run being stopped keeps what is finished: a renderer that had ended well, and a chunk's complete frames.
    // They are brought back within KEEP_FINISHED_MS (see keepingFinished); only what was in flight is rendered again.
    const fetching = keepingFinished(signal);
    // A task stopped before its renderer started (sent ahead to wait behind the slot's running one) made nothing: what is
    // at its outputs' paths is not its own (an earlier run's, perhaps cut short), so it is neither kept nor removed (that
    // is done under the lease, when a renderer of the task starts).
    if (signal.aborted && s.ran !== true) return { kind: 'cancelled' };
    const keeping =
      isRunStop(signal) &&
      (code === 0 || (s.task.chunk !== undefined && plan.hasLocalOutputs && code !== EXIT_NO_WORKDIR && code !== 127));
    if (signal.aborted && !keeping) {
      // Stopped (a copy elsewhere won): what it wrote on the host is of no use.
      await this.removeOutputs(s.task);
      return { kind: 'cancelled' };
    }
    if (signal.aborted && code !== 0) return this.keepChunk(s, exit, fetching, slot, moved);
    const timedOut = timeout?.aborted === true;
    // A renderer that ended by itself just as it was found stalled did not fail.
    const stalled = exit.stalled === true && code !== 0 && !timedOut;
    // The shell's status of a renderer a signal ended is 128 + the signal's number.
    const signalled = code !== null && code > 128 && code < 160 ? signalName(code - 128) : null;
    const rendered: AttemptFailure = {
      stage: 'render',
      exitCode: timedOut || stalled || signalled ? null : code,
      signal: signalled,
      timedOut,
      stalled,
      notFound: code === 127,
    };
    const failed = async (message: string, failure: AttemptFailure = rendered): Promise<AttemptOutcome> => {
      if (quiet) await writeLog();
      const lines = tailOf(output);
      return { kind: 'failed', message: lines ? `${message}; last output:\n${lines}` : message, log: logPath, failure };
    };
    const program = s.argv[0];
    const how = code === null ? 'was killed' : signalled ? `was killed by ${signalled}` : `exited with status ${code}`;
    const span = this.options.stallMs === undefined ? 'a while' : formatDuration(this.options.stallMs);
    // How the renderer failed, if it did (stopped by --timeout or --stall, or its own exit status).
    const renderProblem = timedOut
      ? `timed out after ${formatDuration(this.options.timeoutMs!)} and was stopped`
      : stalled
        ? `${program} stalled on ${host}: no output and no change to its output files for ${span} (--stall), so it was stopped`
        : code !== 0
          ? `${program} ${how} (log: ${logPath})`
          : undefined;
    if (
      s.task.chunk &&
      plan.hasLocalOutputs &&
      code !== EXIT_NO_WORKDIR &&
      code !== EXIT_NO_LEASE &&
      !rendered.notFound
    ) {
      // A chunk's frames that are complete count even when its renderer failed half-way.
      return this.collectChunk(s, exit, fetching, slot, moved, renderProblem, failed, rendered);
    }
    if (timedOut || stalled) return failed(renderProblem!);
    if (code === EXIT_NO_WORKDIR) return failed(`cannot enter the workdir on ${host}`, notRun('start'));
    if (code === EXIT_NO_LEASE) {
      return failed(
        `${s.task.label} was not run: no lease file on ${host} can be taken (.distray/leases/*.lock in its workdir are symbolic links or not regular files); remove them there`,
        notRun('start'),
      );
    }
    if (rendered.notFound)
      return failed(`${program} was not found on ${host} (exit 127): install it there or fix <exec>`);
    if (renderProblem !== undefined) return failed(renderProblem);

    // A speculative copy of this task may finish too: the first to claim the outputs keeps them,
    // and a copy that is beaten keeps none (it never writes over the winner's files).
    const claim = slot?.claim ? (): boolean => slot.claim!() : undefined;
    try {
      for (const [i, copy] of plan.taskOuts(s.task, host).entries()) {
        moved.out += await download(this.session, copy, {
          verify: this.imageCheck(copy.local, s.task.label),
          known: exit.outputs?.[i],
          signal: fetching,
          claim,
        });
      }
      // Fetched: of no more use on the host (a failed check renders the task again, and clears them first).
      await this.removeOutputs(s.task);
      if (claim && !claim()) return { kind: 'cancelled' };
      await this.options.onOutputs?.(s.task);
    } catch (err) {
      if (err instanceof Superseded || fetching.aborted) {
        // Beaten or stopped while its outputs came back: what is left of them on the host goes too.
        await this.removeOutputs(s.task);
        return { kind: 'cancelled' };
      }
      slot?.unclaim?.();
      if (err instanceof LocalFault) throw err;
      return this.lostOr(await failed(errorMessage(err), { ...rendered, stage: 'output' }));
    }
    return { kind: 'done' };
  }

  /**
   * A chunk's outputs, frame by frame: a frame whose outputs are all in
   * (present on the host, non-empty, decoding where they are images) is
   * done; the others are not. `why` says how the renderer failed, if it
   * did. Any frame done makes the outcome carry them (`done`), so that only
   * the rest is rendered again.
   */
  private async collectChunk(
    s: Started,
    exit: TaskExit,
    signal: AbortSignal,
    slot: AttemptSlot | undefined,
    moved: Moved,
    why: string | undefined,
    failed: (message: string, failure?: AttemptFailure) => Promise<AttemptOutcome>,
    rendered: AttemptFailure,
    /** A frame not to take, whatever it looks like (the one a stopped renderer may have been writing). */
    cut?: number,
  ): Promise<AttemptOutcome> {
    const { plan } = this.options;
    const host = this.name;
    const claim = slot?.claim ? (): boolean => slot.claim!() : undefined;
    const done: number[] = [];
    const missing: number[] = [];
    const fetched: string[] = [];
    let problem: string | undefined;
    let i = 0;
    for (const { frame, copies } of plan.frameOuts(s.task, host)) {
      let complete = frame !== cut;
      for (const copy of copies) {
        const known = exit.outputs?.[i++];
        // One output of a frame missing: the frame is rendered again, its other outputs with it.
        if (!complete) continue;
        if (known === 'missing') {
          complete = false;
          problem ??= `${copy.remote} was not produced on ${host}`;
          continue;
        }
        try {
          moved.out += await download(this.session, copy, {
            verify: this.imageCheck(copy.local, `frame ${frame}`),
            known,
            signal,
            claim,
          });
          fetched.push(copy.remote);
        } catch (err) {
          if (err instanceof Superseded || signal.aborted) {
            await this.removeOutputs(s.task);
            // Stopped with the run while its finished frames came back: those already here are whole and kept (a
            // rerun skips them), so they are done, not cancelled with the rest.
            return !(err instanceof Superseded) && isRunStop(signal) && done.length > 0
              ? { kind: 'cancelled', done }
              : { kind: 'cancelled' };
          }
          if (err instanceof LocalFault) {
            slot?.unclaim?.();
            throw err;
          }
          complete = false;
          problem ??= errorMessage(err);
        }
      }
      (complete ? done : missing).push(frame);
    }
    await this.removeOutputs(s.task, fetched);
    if (why === undefined && missing.length === 0) return claim && !claim() ? { kind: 'cancelled' } : { kind: 'done' };
    slot?.unclaim?.();
    const message = why ?? problem ?? `${s.task.label} is incomplete`;
    const failure = why === undefined ? { ...rendered, stage: 'output' as const } : rendered;
    if (done.length === 0) return this.lostOr(await failed(message, failure));
    const outcome = await failed(
      `${message}; ${describeFrames(done, plan.step)} done, ${describeFrames(missing, plan.step)} to render again`,
      failure,
    );
    return outcome.kind === 'failed' ? { ...outcome, done } : outcome;
  }

  /**
   * A chunk whose renderer was stopped with the run: its frames complete on
   * the host are brought back and done, the rest cancelled. The frame the
   * renderer was writing when it was stopped may be cut short: an image
   * that does not decode is not complete, and where no output of a frame can
   * be checked that way, the last frame present is taken to be that one and
   * left out.
   */
  private async keepChunk(
    s: Started,
    exit: TaskExit,
    keep: AbortSignal,
    slot: AttemptSlot | undefined,
    moved: Moved,
  ): Promise<AttemptOutcome> {
    const { plan } = this.options;
    const frames = plan.frameOuts(s.task, this.name);
    // An adopted task's end carries no output states: which outputs are there is asked of the host.
    const present = exit.outputs
      ? exit.outputs.map((st) => st !== 'missing')
      : await Promise.all(
          frames.flatMap(({ copies }) =>
            copies.map((c) =>
              this.session.stat(c.remote).then(
                (st) => st !== null,
                () => false,
              ),
            ),
          ),
        );
    let i = 0;
    let lastPresent = -1;
    let checkable = true;
    frames.forEach(({ copies }, f) => {
      const states = copies.map(() => present[i++]);
      if (states.some((st) => st === true)) {
        lastPresent = f;
        checkable = copies.every((c) => IMAGE_EXTENSIONS.has(extname(c.local).toLowerCase()));
      }
    });
    const cut = checkable ? undefined : frames[lastPresent]?.frame;
    const outcome = await this.collectChunk(
      s,
      exit,
      keep,
      slot,
      moved,
      undefined,
      (message) => Promise.resolve({ kind: 'failed', message }),
      notRun('render'),
      cut,
    );
    if (outcome.kind === 'done' || outcome.kind === 'cancelled') return outcome;
    const done = outcome.kind === 'failed' ? new Set(outcome.done) : new Set<number>();
    // What is not kept is not left on the host, where a later run could mistake it for finished work.
    await this.removeOutputs(
      s.task,
      frames.filter(({ frame }) => !done.has(frame)).flatMap(({ copies }) => copies.map((c) => c.remote)),
    );
    return done.size > 0 ? { kind: 'cancelled', done: [...done] } : { kind: 'cancelled' };
  }

  /** For an image output: what makes it untrustworthy (too many pixels, does not decode), naming what it is the output of. */
  private imageCheck(local: string, of: string): ((path: string) => Promise<string | undefined>) | undefined {
    if (!IMAGE_EXTENSIONS.has(extname(local).toLowerCase())) return undefined;
    const maxPixels = this.options.maxPixels ?? DEFAULT_MAX_PIXELS;
    return async (path) => {
      const problem = await imageProblem(path, maxPixels);
      return problem === undefined ? undefined : `(${of}) ${problem}`;
    };
  }

  /**
   * Removes a task's outputs on the host (or those of `paths`), in one round
   * trip: the host shell checks the way to each for links as it removes it,
   * so a directory a renderer swapped for a link is never followed. Not
   * removing them fails nothing (the next attempt clears them first), but a
   * link found on the way is said.
   */
  private async removeOutputs(task: Task, paths?: readonly string[]): Promise<void> {
    const list = paths ?? this.options.plan.taskOuts(task, this.name).map((c) => c.remote);
    const removal = removeRemote(this.session, list).catch((err: unknown) => {
      if (err instanceof LinkRefused) this.options.note?.(errorMessage(err));
    });
    // Once the run is stopped, a host that went silent (keepalive gives it up only later) does not hold the run's end:
    // what is left there is cleared by the next attempt to run the task there.
    let timer: NodeJS.Timeout | undefined;
    const arm = (resolve: () => void) => (): void => void (timer = setTimeout(resolve, REMOVE_AFTER_STOP_MS));
    let hook: (() => void) | undefined;
    const given = new Promise<void>((resolve) => {
      if (this.stopSeen) arm(resolve)();
      else this.onRunStop.add((hook = arm(resolve)));
    });
    try {
      await Promise.race([removal, given]);
    } finally {
      clearTimeout(timer);
      if (hook) this.onRunStop.delete(hook);
    }
  }

  /** Whether an attempt of this host was stopped with the whole run (see noteRunStop), and what waits for that. */
  private stopSeen = false;
  private readonly onRunStop = new Set<() => void>();

  /** Notes, for removeOutputs, when the run is stopped (its attempts' signals are aborted with RUN_STOPPED). */
  private noteRunStop(signal: AbortSignal): void {
    const seen = (): void => {
      if (!isRunStop(signal) || this.stopSeen) return;
      this.stopSeen = true;
      for (const f of this.onRunStop) f();
    };
    if (signal.aborted) seen();
    else signal.addEventListener('abort', seen, { once: true });
  }

  /** A copy that failed because the host went away is a lost host, not a failed task. */
  private lostOr(outcome: AttemptOutcome): AttemptOutcome {
    return this.lostError ? { kind: 'lost', message: this.lostError.message } : outcome;
  }
}

/** `exit`, or undefined if `signal` (the run's) was aborted and STOP_CONFIRM_MS went by without it. */
function stopBounded(exit: Promise<TaskExit>, signal: AbortSignal): Promise<TaskExit | undefined> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    // Only a whole run stopping is bounded: a copy stopped alone (another won) waits for its host to
    // confirm, so its slot is not counted free while its renderer may still run (a silent host is lost
    // by keepalive; a run stopped after that still ends by the backstop in cli/main.ts).
    const onAbort = (): void => {
      if (isRunStop(signal)) timer = setTimeout(() => resolve(undefined), STOP_CONFIRM_MS);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    void exit.then((e) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(e);
    });
  });
}
