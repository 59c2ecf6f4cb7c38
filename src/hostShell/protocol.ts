import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ENV_NAME, shellJoin, shellQuote } from '../ssh/quote.js';

/** Seconds between TERM and KILL when a renderer is stopped. */
export const KILL_GRACE_SECONDS = 5;

/** A task's status when no lease file on the host can ever be taken (each is a link, or not a file). */
export const EXIT_NO_LEASE = 124;

/** Exit status of the host shell when the workdir cannot be entered. */
export const EXIT_NO_WORKDIR = 125;

/** `adopt` of a task that had not started yet: it is simply run again. */
export const EXIT_NOT_STARTED = 254;
/** `adopt` of a task whose renderer is gone without a status (its shell died with the host). */
export const EXIT_VANISHED = 255;

/**
 * Every line the host shell prints for the controller is one protocol line:
 *
 *     distray:TOKEN WORD ARGS...
 *
 * (`say` in hostShell.sh), such as `distray:lq3x7a-0123456789ab exit 4-1-0a1b2c 0 1f`,
 * TOKEN being the shell's own random token (letters, digits and `-`). The
 * controller looks for `distray:TOKEN ` anywhere in a line, not only at its
 * start: whatever a login leaves running may print at any time (`(sleep 1;
 * printf x) &` in a ~/.bashrc), and bytes without a newline end up glued
 * before the next protocol line, which must still count. Each protocol line
 * is a single write of less than PIPE_BUF, so stray bytes can come before
 * one or after its newline, never inside it. Anything else (a line without
 * the mark, or what comes before it) is the login's: shown once as a warning
 * and otherwise ignored. A new kind of line is a new WORD after the mark.
 */
const MARK = 'distray:';

/** What every protocol line of the host shell with this token starts with (its words follow). */
export function protocolMark(token: string): string {
  return `${MARK}${token} `;
}

/** The protocol line `words` of the host shell with this token, as it prints it (without its newline). */
export function protocolLine(token: string, words: string): string {
  return protocolMark(token) + words;
}

/** The line a host shell prints once it has started, after whatever the login printed. */
export function readyLine(token: string): string {
  return protocolLine(token, 'ready');
}

/** Where a host shell keeps its tasks' files (ID.task, ID.log), relative to the workdir. */
export function runDir(token: string): string {
  return `.distray/run/${token}`;
}

/**
 * The host shell: one long-lived `sh` per host and run, on one SSH channel,
 * that starts tasks, stops them, and reports when they end. One login shell
 * per host instead of one per task or slot: a login shell reads the user's
 * rc files (85 ms of CPU for root on our CI image, seconds with some conda
 * setups).
 *
 * Tasks run in lanes, one per slot of the controller: a lane is a
 * long-lived subshell reading its tasks from a FIFO, one after another. The
 * controller may queue a lane's next task while the current one renders, so
 * the next starts the moment the current ends, without waiting for a round
 * trip to the controller; and a lane costs no fork of its own per task.
 *
 * Each task has two files under <workdir>/.distray/run/<token>/: ID.log,
 * the renderer's output, and ID.task, empty when the task is claimed, then
 * "PID" while it runs and "PID STATUS" when it has ended (rewriting a file
 * costs far less than creating one). They survive the controller: a
 * controller that reconnects after a network blip adopts a running task
 * (`adopt`) and picks up its result instead of rendering it again. A lane
 * claims a task (creates ID.task, O_EXCL) before starting it, and so does
 * `adopt` for one that has not started: whoever claims first decides, so a
 * task is never both run and given back.
 *
 * Protocol, one line each way:
 * - stdin: `run LANE ID NOUT WATCH OUTPUT... ARGV...` (words single-quoted,
 *   newlines as "$nl"; NOUT outputs, workdir-relative; WATCH `-`, or
 *   `TICK,N` for --stall: see stallWatch), `stop ID`,
 *   `adopt ID TOKEN` (a task an earlier shell TOKEN started), or
 *   `forget ID TOKEN` (its files are no longer needed; a shell's own are
 *   removed in one go when it exits, which costs less than one rm a task),
 *   or a file operation: `rm ID PATH...` (remove, never through a link),
 *   `mkdir ID DIR...`, `mv ID NAME PATH` (a file NAME of its run directory
 *   moved into place); see "Removals and writes" below.
 * - stdout (one write a line, so lines from lanes never interleave), each
 *   line led by the mark `distray:TOKEN ` (see protocolMark above; below
 *   without it): first `ready` (anything before it is the login's, not
 *   the protocol), then `start ID` when a renderer starts,
 *   and `exit ID STATUS INFO` when it has ended. INFO is `1` if the task
 *   wrote any output (its log is not empty) else `0`, then a letter per
 *   output, never following a link: `f` a non-empty regular file, `e` an
 *   empty one, `d` a directory, `l` a symbolic link, `s` anything else, `p`
 *   a path through a link, `-` missing. `adopt` answers without INFO.
 *   `refused ID N` instead of start and exit: output N runs through a link,
 *   so the task was not run (clearing it could remove a file elsewhere).
 *   `stalled ID` just before `exit ID ...` (also for `adopt`): the host
 *   shell stopped the renderer because neither its log nor its outputs had
 *   changed for its WATCH's whole duration (--stall).
 *   `did ID STATES` answers a file operation: a letter per path, `-` done,
 *   `p` not done (a directory on its way is a link, or not a directory),
 *   `x` failed. A task's status is EXIT_NO_LEASE when no lease file can
 *   ever be taken (each is a link or not a regular file).
 *   `part ID LETTERS` comes before the `did` or `exit` of an ID with more
 *   than 1000 letters (paths or outputs), 1000 on each: they come first,
 *   and the answer's own line has the rest. Every line stays well below
 *   PIPE_BUF: the shells write a longer one in pieces, and a line another
 *   lane writes meanwhile would land inside it (both lost).
 *
 * Removals and writes: whatever distray removes or puts in place on a host
 * is done by the host shell at the moment it acts, from inside the path's
 * directory, entered one component at a time (`cd -P`, refusing a link)
 * and then proved, by its physical path, to be that directory of the
 * workdir: a directory swapped for a link at any moment before (by a
 * renderer, during a lease wait) is never followed. So are the outputs
 * cleared before a task (under its lease, when it clears them); the outputs
 * of a stopped or superseded attempt and fetched outputs (`rm`); and
 * uploads, written over SFTP into the shell's own run directory and moved
 * into place (`mv`).
 *
 * Outputs are looked after here rather than over SFTP, with shell builtins
 * (no process is started unless there is something to remove or create):
 * before the renderer starts a stale output is removed, so it can never pass
 * for this attempt's, and its directory is created; after it ends the INFO
 * says what to fetch.
 *
 * A task runs under a lease: an flock on one of
 * <workdir>/.distray/leases/0..slots-1.lock, taken before it starts, so two
 * controllers on one host never run more than `slots` tasks there together,
 * and the kernel releases a lease however its holder dies. When a task ends
 * its lane keeps the lease only if its next task is already queued (the
 * shell notes the last task it queued to each lane in lane.N.last), so
 * back-to-back tasks cost no flock process each (1.5-2 ms of CPU here), and
 * an idle lane holds nothing. (Held for a lane's whole life, two controllers
 * could each hold part of one host and wait on the other's for ever.) Hosts
 * without flock(1) run unleased.
 *
 * Each renderer runs in its own process group (setsid): OpenSSH 9.2 neither
 * forwards signals for root logins nor kills a pty-less process when the
 * channel closes, so the shell stops the group itself, TERM then KILL.
 * At end of input (the controller closed the channel, or its connection is
 * gone) lanes start nothing more, the shell waits GRACE seconds for a
 * controller to adopt what still runs, then stops the rest. `stop` is
 * immediate.
 *
 * The script itself is src/hostShell/hostShell.sh: plain sh, checked by shellcheck
 * in `npm run lint` and run directly under dash, bash and busybox sh by its
 * unit tests. Its exit statuses are the constants above.
 */
/**
 * The script (src/hostShell/hostShell.sh, beside this file in src and in dist), read
 * once. Whole-line comments are left out of what is sent: the script travels
 * on every host shell's command line.
 */
let script: string | undefined;
export function hostShellScript(): string {
  script ??= readFileSync(new URL('../hostShell/hostShell.sh', import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => !/^\s*(#|$)/.test(line))
    .join('\n');
  return script;
}

/** Quotes one argument for the host shell's `eval`: single quotes, with newlines spliced in as "$nl". */
export function slotQuote(arg: string): string {
  return arg
    .split('\n')
    .map((part) => shellQuote(part))
    .join('"$nl"');
}

/** A --stall DURATION checked every eighth of it: a stall is seen between DURATION and 1.125 x DURATION after the last change. */
const STALL_TICKS = 8;

/**
 * The WATCH word of a run line for --stall `ms`: "TICK,N", N sleeps of
 * TICK seconds without a change (see watch_stall in hostShell.sh). The host
 * counts the time itself, so --stall costs the controller no round trip and
 * never depends on the host's clock agreeing with this one.
 */
export function stallWatch(ms: number): string {
  const tickMs = Math.max(1, Math.round(ms / STALL_TICKS));
  return `${tickMs / 1000},${Math.ceil(ms / tickMs)}`;
}

/**
 * The line that runs a task in a lane: its outputs (cleared before it starts,
 * reported after), then its argv; with `stallMs`, the host shell stops it
 * once its log and outputs have not changed for that long.
 */
export function runLine(
  lane: number,
  id: string,
  argv: readonly string[],
  outputs: readonly string[] = [],
  stallMs?: number,
): string {
  const watch = stallMs === undefined ? '-' : stallWatch(stallMs);
  return `run ${lane} ${id} ${outputs.length} ${watch} ${[...outputs, ...argv].map(slotQuote).join(' ')}\n`;
}

/** The line of a file operation (see HostShell.fileOp): `rm ID PATH...`, `mkdir ID DIR...` or `mv ID NAME PATH`. */
export function fileOpLine(op: 'rm' | 'mkdir' | 'mv', id: string, args: readonly string[]): string {
  return `${op} ${id} ${args.map(slotQuote).join(' ')}\n`;
}

export function newToken(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

export interface HostShellOptions {
  workdir: string;
  env: Readonly<Record<string, string>>;
  token: string;
  slots: number;
  /** Seconds tasks outlive a lost controller, waiting to be adopted. */
  graceSeconds: number;
}

/** The argument vector for a local `sh` that becomes a host shell. */
export function hostShellArgv(o: HostShellOptions): string[] {
  const exports = Object.entries(o.env)
    .map(([k, v]) => {
      if (!ENV_NAME.test(k)) throw new Error(`environment variable name "${k}" is not valid`);
      return `export ${k}=${shellQuote(v)}\n`;
    })
    .join('');
  return [
    '-c',
    exports + hostShellScript(),
    'distray-host',
    o.workdir,
    o.token,
    String(o.slots),
    String(Math.max(0, Math.round(o.graceSeconds))),
  ];
}

/** The same as one command line, for a remote login shell to run. */
export function hostShellCommand(o: HostShellOptions): string {
  return `exec sh ${shellJoin(hostShellArgv(o))}`;
}
