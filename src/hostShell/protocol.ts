import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ENV_NAME, shellJoin, shellQuote } from '../ssh/quote.js';

/*
 * The host shell's protocol (the lines each way, their fields, the exit
 * statuses and the files it keeps) is described in the header of the script
 * itself, src/hostShell/hostShell.sh. The constants below are the
 * controller's copy of the script's; test/shell/protocolConstants.test.ts
 * checks that the two agree.
 */

/** Seconds between TERM and KILL when a renderer is stopped (KILL_GRACE_TICKS of 0.2 s in the script). */
export const KILL_GRACE_SECONDS = 5;

/** A task's status when no lease file on the host can ever be taken (each is a link, or not a file). */
export const EXIT_NO_LEASE = 124;

/** Exit status of the host shell when the workdir cannot be entered. */
export const EXIT_NO_WORKDIR = 125;

/** A task stopped before its renderer started (128 + TERM, as a renderer stopped by TERM). */
export const EXIT_STOPPED = 143;

/** `adopt` of a task that had not started yet: it is simply run again. */
export const EXIT_NOT_STARTED = 254;
/** `adopt` of a task whose renderer is gone without a status (its shell died with the host). */
export const EXIT_VANISHED = 255;

/** What leads every line the host shell prints for the controller: `distray:TOKEN WORD ARGS...` (see `say` in hostShell.sh). */
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
 * The script (src/hostShell/hostShell.sh, beside this file in src and in dist), read
 * once. Whole-line comments, blank lines and indentation are left out of what
 * is sent: the script travels on every host shell's command line (it has no
 * string or here-document whose lines start with blanks).
 */
let script: string | undefined;
export function hostShellScript(): string {
  script ??= readFileSync(new URL('../hostShell/hostShell.sh', import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => !/^\s*(#|$)/.test(line))
    .map((line) => line.trimStart())
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
