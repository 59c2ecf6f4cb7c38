import { ENV_NAME, shellJoin, shellQuote } from './quote.js';

/** Seconds between TERM and KILL when a renderer is stopped. */
export const KILL_GRACE_SECONDS = 5;

/**
 * The script that runs one attempt on a host, under `sh -c`. It is the only
 * thing distray asks of a host besides sshd and the renderer.
 *
 * - The renderer runs in its own process group (setsid), so it and every
 *   child it forks can be stopped together: OpenSSH 9.2 neither forwards
 *   signals for root logins nor kills a pty-less process when the channel
 *   closes.
 * - A watchdog reads stdin (kept as fd 3: sh gives background jobs
 *   /dev/null as stdin), which is the controller's channel: a "stop" line
 *   (timeout, cancel) or end of file (the controller closed the channel or
 *   died, and sshd closed the pipe) stops the group, TERM then KILL.
 * - Its own output goes to /dev/null, so a lingering `sleep` never holds the
 *   channel open after the renderer has exited.
 */
const SCRIPT = `cd -- "$1" 2>/dev/null || { printf 'distray: cannot enter the workdir %s\\n' "$1" >&2; exit 125; }
shift
exec 3<&0
if command -v setsid >/dev/null 2>&1; then setsid "$@" </dev/null 3<&- & else "$@" </dev/null 3<&- & fi
pid=$!
(
  while IFS= read -r line <&3; do [ "$line" = stop ] && break; done
  kill -TERM -- -"$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  sleep ${KILL_GRACE_SECONDS}
  kill -KILL -- -"$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
) >/dev/null 2>&1 &
watchdog=$!
wait "$pid"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"`;

/** Exit status of the wrapper when the workdir cannot be entered. */
export const EXIT_NO_WORKDIR = 125;

/**
 * The argument vector for `sh` that runs `argv` in `workdir` with `env`.
 * Every value reaches the renderer byte for byte: exports and arguments are
 * single-quoted, and nothing else interprets them.
 */
export function wrapperArgv(workdir: string, env: Readonly<Record<string, string>>, argv: readonly string[]): string[] {
  const exports = Object.entries(env)
    .map(([k, v]) => {
      if (!ENV_NAME.test(k)) throw new Error(`environment variable name "${k}" is not valid`);
      return `export ${k}=${shellQuote(v)}\n`;
    })
    .join('');
  return ['-c', exports + SCRIPT, 'distray', workdir, ...argv];
}

/** The same as one command line, for a remote login shell to run. */
export function wrapperCommand(workdir: string, env: Readonly<Record<string, string>>, argv: readonly string[]): string {
  return `exec sh ${shellJoin(wrapperArgv(workdir, env, argv))}`;
}
