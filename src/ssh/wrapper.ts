import { randomBytes } from 'node:crypto';
import { ENV_NAME, shellJoin, shellQuote } from './quote.js';

/** Seconds between TERM and KILL when a renderer is stopped. */
export const KILL_GRACE_SECONDS = 5;

/** Exit status of the host shell when the workdir cannot be entered. */
export const EXIT_NO_WORKDIR = 125;

/** `adopt` of a task that had not started yet: it is simply run again. */
export const EXIT_NOT_STARTED = 254;
/** `adopt` of a task whose renderer is gone without a status (its shell died with the host). */
export const EXIT_VANISHED = 255;

/** Where a host shell keeps its tasks' pid, output and status, relative to the workdir. */
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
 * Each task's pid, output and exit status live in files under
 * <workdir>/.distray/run/<token>/, so they survive the controller: a
 * controller that reconnects after a network blip adopts a running task
 * (`adopt`) and picks up its result instead of rendering it again.
 *
 * Protocol, one line each way:
 * - stdin: `run ID ARGV` (ARGV single-quoted, newlines as "$nl"), after an
 *   optional `outs PATHS` (quoted the same way) naming the task's outputs,
 *   `stop ID`, `adopt ID TOKEN` (a task an earlier shell TOKEN started), or
 *   `forget ID TOKEN` (its files are no longer needed; a shell's own are
 *   removed in one go when it exits, which costs less than one rm a task).
 * - stdout: `exit ID STATUS INFO` when a task has ended (one write each, so
 *   lines from concurrent tasks never interleave). INFO is `1` if the task
 *   wrote any output (its log is not empty) else `0`, then one letter per
 *   output: `f` a non-empty file, `e` an empty one, `d` a directory, `-`
 *   missing. `adopt` answers without INFO.
 *
 * Outputs are looked after here rather than over SFTP, with shell builtins
 * (no process is started unless there is something to remove or create):
 * before the renderer starts a stale output is removed, so it can never pass
 * for this attempt's, and its directory is created; after it ends the INFO
 * says what to fetch. That is ten SFTP round trips a task fewer.
 *
 * Before a task runs it takes a lease: an flock on one of
 * <workdir>/.distray/leases/0..slots-1.lock, held while it runs, so two
 * controllers on one host never run more than `slots` tasks there together;
 * the kernel releases a lease however its holder dies. Hosts without
 * flock(1) run unleased.
 *
 * Each renderer runs in its own process group (setsid): OpenSSH 9.2 neither
 * forwards signals for root logins nor kills a pty-less process when the
 * channel closes, so the shell stops the group itself, TERM then KILL.
 * At end of input (the controller closed the channel, or its connection is
 * gone) the shell waits GRACE seconds for a controller to adopt what still
 * runs, then stops the rest. `stop` is immediate.
 *
 * Notes for whoever edits this: `kill -TERM -PID`, not `kill -TERM -- -PID`
 * (dash refuses the latter); never `exec ... 2>/dev/null` (the redirection
 * would stay for the rest of the shell); sh gives background jobs /dev/null
 * as stdin, hence the controller's input on fd 3.
 */
const SCRIPT = `cd -- "$1" 2>/dev/null || { mkdir -p -- "$1" 2>/dev/null && cd -- "$1"; } || { printf 'distray: cannot enter the workdir %s\\n' "$1" >&2; exit ${EXIT_NO_WORKDIR}; }
token=$2 slots=$3 grace=$4
nl='
'
run=.distray/run/$token
mkdir -p "$run" .distray/leases || exit ${EXIT_NO_WORKDIR}
exec 3<&0 </dev/null
have_flock=; command -v flock >/dev/null 2>&1 && have_flock=1
have_setsid=; command -v setsid >/dev/null 2>&1 && have_setsid=1
n=0
outs=
lease() {
  [ -n "$have_flock" ] || return 0
  while :; do
    [ -e "$run/$id.stop" ] && return 1
    # Start at a different lock each task, so the first try usually finds a free one.
    k=0
    while [ "$k" -lt "$slots" ]; do
      f=.distray/leases/$(( (n + k) % slots )).lock
      [ -e "$f" ] || (umask 0; : >"$f") 2>/dev/null
      if [ -r "$f" ] && exec 9<"$f" && flock -n 9; then return 0; fi
      exec 9<&-
      k=$((k + 1))
    done
    sleep 0.2
  done
}
clear_outs() {
  eval "set -- $1"
  for f; do
    if [ -e "$f" ] || [ -L "$f" ]; then rm -rf -- "$f"; fi
    case $f in */*) [ -d "\${f%/*}" ] || mkdir -p -- "\${f%/*}" 2>/dev/null ;; esac
  done
}
out_states() {
  eval "set -- $1"
  states=
  for f; do
    if [ -d "$f" ]; then states=\${states}d; elif [ -s "$f" ]; then states=\${states}f; elif [ -e "$f" ]; then states=\${states}e; else states=\${states}-; fi
  done
}
start() {
  id=$1
  shift
  o=$outs
  outs=
  (
    exec 3<&-
    clear_outs "$o"
    if ! lease; then echo 143 >"$run/$id.status"; printf 'exit %s 143\\n' "$id"; exit 0; fi
    if [ -n "$have_setsid" ]; then setsid "$@" >"$run/$id.log" 2>&1 9<&- & else "$@" >"$run/$id.log" 2>&1 9<&- & fi
    pid=$!
    echo "$pid" >"$run/$id.pid"
    wait "$pid"
    st=$?
    kill -KILL -"$pid" 2>/dev/null
    echo "$st" >"$run/$id.status"
    out_states "$o"
    if [ -s "$run/$id.log" ]; then wrote=1; else wrote=0; fi
    printf 'exit %s %s %s%s\\n' "$id" "$st" "$wrote" "$states"
  ) &
  n=$((n + 1))
}
stop_pid() {
  kill -TERM -"$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
  # KILL what is left after the grace; return as soon as the group is gone, so the shell's last wait is short.
  (
    exec 3<&-
    i=0
    while [ "$i" -lt ${KILL_GRACE_SECONDS * 5} ] && kill -0 -"$1" 2>/dev/null; do sleep 0.2; i=$((i + 1)); done
    kill -KILL -"$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
  ) >/dev/null 2>&1 &
}
stop() {
  : >"$run/$1.stop"
  [ -e "$run/$1.status" ] && return 0
  p=$(cat "$run/$1.pid" 2>/dev/null) && stop_pid "$p"
}
adopt() {
  id=$1 from=.distray/run/$2
  if [ ! -e "$from/$id.pid" ] && [ ! -e "$from/$id.status" ]; then
    : >"$from/$id.stop"
    printf 'exit %s ${EXIT_NOT_STARTED}\n' "$id"
    return 0
  fi
  : >"$from/$id.adopted"
  echo "$2" >"$run/$id.adopted-from"
  (
    exec 3<&-
    while [ ! -e "$from/$id.status" ]; do
      p=$(cat "$from/$id.pid" 2>/dev/null)
      if [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null; then
        sleep 0.5
        [ -e "$from/$id.status" ] || echo ${EXIT_VANISHED} >"$from/$id.status"
        break
      fi
      sleep 0.2
    done
    printf 'exit %s %s\n' "$id" "$(cat "$from/$id.status")"
  ) &
}
unfinished() {
  for p in "$run"/*.pid; do
    [ -e "$p" ] || continue
    id=\${p##*/}; id=\${id%.pid}
    [ -e "$run/$id.status" ] || [ -e "$run/$id.adopted" ] || echo "$run/$id"
  done
  for a in "$run"/*.adopted-from; do
    [ -e "$a" ] || continue
    id=\${a##*/}; id=\${id%.adopted-from}
    from=.distray/run/$(cat "$a")
    [ -e "$from/$id.status" ] || echo "$from/$id"
  done
}
while IFS= read -r line <&3; do
  case $line in
    'outs '*) outs=\${line#outs } ;;
    'run '*) eval "set -- \${line#run }"; start "$@" ;;
    'stop '*) stop "\${line#stop }" ;;
    'adopt '*) set -- \${line#adopt }; adopt "$1" "$2" ;;
    'forget '*) set -- \${line#forget }; [ "$2" = "$token" ] || rm -f ".distray/run/$2/$1".* "$run/$1.adopted-from" ;;
  esac
done
waited=0
while [ "$waited" -lt "$grace" ] && [ -n "$(unfinished)" ]; do sleep 1; waited=$((waited + 1)); done
for t in $(unfinished); do
  p=$(cat "$t.pid" 2>/dev/null) && stop_pid "$p"
done
wait
# A task another shell adopted keeps its files until that shell has read them.
for a in "$run"/*.adopted; do [ -e "$a" ] && exit 0; done
rm -rf "$run"
exit 0`;

/** Quotes one argument for the host shell's `eval`: single quotes, with newlines spliced in as "$nl". */
export function slotQuote(arg: string): string {
  return arg
    .split('\n')
    .map((part) => shellQuote(part))
    .join('"$nl"');
}

/** The lines that run a task: its outputs (cleared before it starts, reported after), then its argv. */
export function runLine(id: string, argv: readonly string[], outputs: readonly string[] = []): string {
  const outs = outputs.length > 0 ? `outs ${outputs.map(slotQuote).join(' ')}\n` : '';
  return `${outs}run ${id} ${argv.map(slotQuote).join(' ')}\n`;
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
  return ['-c', exports + SCRIPT, 'distray-host', o.workdir, o.token, String(o.slots), String(Math.max(0, Math.round(o.graceSeconds)))];
}

/** The same as one command line, for a remote login shell to run. */
export function hostShellCommand(o: HostShellOptions): string {
  return `exec sh ${shellJoin(hostShellArgv(o))}`;
}
