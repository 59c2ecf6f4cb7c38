import { randomBytes } from 'node:crypto';
import { ENV_NAME, shellJoin, shellQuote } from './quote.js';

/** Seconds between TERM and KILL when a renderer is stopped. */
export const KILL_GRACE_SECONDS = 5;

/** Exit status of the slot shell when the workdir cannot be entered. */
export const EXIT_NO_WORKDIR = 125;

/**
 * The slot shell: one long-lived `sh` per host slot that runs the slot's
 * tasks one after another. Starting it costs one SSH channel and one login
 * shell for the whole run instead of one per task (a login shell reads the
 * user's rc files: 85 ms of CPU for root on our CI image, seconds with some
 * conda setups).
 *
 * Note `kill -TERM -PID`, not `kill -TERM -- -PID`: dash refuses the latter.
 *
 * Protocol, one line each way:
 * - controller -> stdin: `run ARGV` (ARGV single-quoted, newlines as "$nl"),
 *   or `stop` to stop the running task. End of file (the controller closed
 *   the channel or died and sshd closed the pipe) stops it too.
 * - stdout -> controller: `exit STATUS` when a task has ended.
 * - stderr: the renderer's stdout and stderr, then a line holding the
 *   session's token, so the controller knows the task's output is complete.
 *
 * Each renderer runs in its own process group (setsid): OpenSSH 9.2 neither
 * forwards signals for root logins nor kills a pty-less process when the
 * channel closes, so the watchdog stops the group itself, TERM then KILL.
 * The watchdog reads fd 3, a copy of stdin, because sh gives background jobs
 * /dev/null as their stdin.
 */
const SCRIPT = `cd -- "$1" 2>/dev/null || { printf 'distray: cannot enter the workdir %s\\n' "$1" >&2; exit ${EXIT_NO_WORKDIR}; }
token=$2
nl='
'
exec 3<&0 </dev/null
while IFS= read -r line <&3; do
  case $line in
    'run '*) ;;
    *) continue ;;
  esac
  eval "set -- \${line#run }"
  if command -v setsid >/dev/null 2>&1; then setsid "$@" >&2 3<&- & else "$@" >&2 3<&- & fi
  pid=$!
  (
    while IFS= read -r cmd <&3; do [ "$cmd" = stop ] && break; done
    kill -TERM -"$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    sleep ${KILL_GRACE_SECONDS}
    kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  ) >/dev/null 2>&1 &
  watchdog=$!
  wait "$pid"
  status=$?
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  kill -KILL -"$pid" 2>/dev/null
  printf '\\n%s\\n' "$token" >&2
  printf 'exit %s\\n' "$status"
done`;

/** Quotes one argument for the slot shell's `eval`: single quotes, with newlines spliced in as "$nl". */
export function slotQuote(arg: string): string {
  return arg
    .split('\n')
    .map((part) => shellQuote(part))
    .join('"$nl"');
}

/** The `run` line for a task. */
export function runLine(argv: readonly string[]): string {
  return `run ${argv.map(slotQuote).join(' ')}\n`;
}

export function newToken(): string {
  return `distray-end-${randomBytes(12).toString('hex')}`;
}

/** The argument vector for a local `sh` that becomes a slot shell in `workdir` with `env`. */
export function slotShellArgv(workdir: string, env: Readonly<Record<string, string>>, token: string): string[] {
  const exports = Object.entries(env)
    .map(([k, v]) => {
      if (!ENV_NAME.test(k)) throw new Error(`environment variable name "${k}" is not valid`);
      return `export ${k}=${shellQuote(v)}\n`;
    })
    .join('');
  return ['-c', exports + SCRIPT, 'distray-slot', workdir, token];
}

/** The same as one command line, for a remote login shell to run. */
export function slotShellCommand(workdir: string, env: Readonly<Record<string, string>>, token: string): string {
  return `exec sh ${shellJoin(slotShellArgv(workdir, env, token))}`;
}
