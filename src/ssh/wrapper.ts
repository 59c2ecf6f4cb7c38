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
 * Before each task the slot shell takes a lease: an flock on one of
 * <workdir>/.distray/leases/0..slots-1.lock, held while the task runs. Two
 * controllers sharing a host and workdir (two CI pipelines) thus never run
 * more than `slots` tasks there together; the kernel releases a lease when
 * its shell dies, however it dies. Hosts without flock(1) run unleased.
 *
 * Each renderer runs in its own process group (setsid): OpenSSH 9.2 neither
 * forwards signals for root logins nor kills a pty-less process when the
 * channel closes, so the watchdog stops the group itself, TERM then KILL.
 * The watchdog reads fd 3, a copy of stdin, because sh gives background jobs
 * /dev/null as their stdin.
 */
const SCRIPT = `cd -- "$1" 2>/dev/null || { printf 'distray: cannot enter the workdir %s\\n' "$1" >&2; exit ${EXIT_NO_WORKDIR}; }
token=$2
slots=$3
nl='
'
exec 3<&0 </dev/null
leases=.distray/leases
mkdir -p "$leases" 2>/dev/null
have_flock=; command -v flock >/dev/null 2>&1 && have_flock=1
lease() {
  [ -n "$have_flock" ] || return 0
  while :; do
    i=0
    while [ "$i" -lt "$slots" ]; do
      f="$leases/$i.lock"
      [ -e "$f" ] || (umask 0; : >"$f") 2>/dev/null
      # No redirection on exec itself: "exec 9<f 2>/dev/null" would silence the shell for good.
      if [ -r "$f" ] && exec 9<"$f" && flock -n 9; then return 0; fi
      exec 9<&-
      i=$((i + 1))
    done
    sleep 0.2
  done
}
while IFS= read -r line <&3; do
  case $line in
    'run '*) ;;
    *) continue ;;
  esac
  eval "set -- \${line#run }"
  lease
  if command -v setsid >/dev/null 2>&1; then setsid "$@" >&2 3<&- 9<&- & else "$@" >&2 3<&- 9<&- & fi
  pid=$!
  (
    exec 9<&-
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
  exec 9<&-
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
export function slotShellArgv(workdir: string, env: Readonly<Record<string, string>>, token: string, slots: number): string[] {
  const exports = Object.entries(env)
    .map(([k, v]) => {
      if (!ENV_NAME.test(k)) throw new Error(`environment variable name "${k}" is not valid`);
      return `export ${k}=${shellQuote(v)}\n`;
    })
    .join('');
  return ['-c', exports + SCRIPT, 'distray-slot', workdir, token, String(slots)];
}

/** The same as one command line, for a remote login shell to run. */
export function slotShellCommand(workdir: string, env: Readonly<Record<string, string>>, token: string, slots: number): string {
  return `exec sh ${shellJoin(slotShellArgv(workdir, env, token, slots))}`;
}
