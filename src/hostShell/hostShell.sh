# shellcheck shell=sh
# The host shell: one long-lived sh per host and run, on one SSH channel, that
# starts tasks in lanes, stops them, and reports when they end. The controller's
# side, and the protocol, are described in src/hostShell/protocol.ts and
# src/hostShell/hostShell.ts. Run as: sh -c "$(cat hostShell.sh)" distray-host WORKDIR TOKEN SLOTS GRACE
# with the controller's lines on stdin. It must run under any POSIX sh (dash,
# bash, busybox ash): the tests run it under all three.
#
# Notes for whoever edits this: `kill -TERM -PID`, not `kill -TERM -- -PID`
# (dash refuses the latter); never `exec ... 2>/dev/null` (the redirection
# would stay for the rest of the shell); sh gives background jobs /dev/null
# as stdin, hence the controller's input on fd 3; a redirection that fails
# on `:` (a special builtin) ends the shell, on `true` it does not: write
# `true >f`, never `: >f` (the run directory may be gone, or f may exist
# under `set -C`).

# Exit statuses the controller knows (src/hostShell/protocol.ts has the same values).
EXIT_NO_LEASE=124 EXIT_NO_WORKDIR=125 EXIT_NOT_STARTED=254 EXIT_VANISHED=255
# TERM, then KILL after this many 0.2 s ticks (5 s).
KILL_GRACE_TICKS=25

cd -- "$1" 2>/dev/null || { mkdir -p -- "$1" 2>/dev/null && cd -- "$1"; } || { printf 'distray: cannot enter the workdir %s\n' "$1" >&2; exit "$EXIT_NO_WORKDIR"; }
token=$2 slots=$3 grace=$4 lanes=''
# $nl joins the lines of a multi-line argument in the task lines the controller sends (eval).
# shellcheck disable=SC2034
nl='
'
run=.distray/run/$token
# Its own files never go through a link planted in the workdir.
for d in .distray .distray/run .distray/leases; do
  [ -L "$d" ] && { printf 'distray: %s in the workdir is a symbolic link; remove it\n' "$d" >&2; exit "$EXIT_NO_WORKDIR"; }
done
mkdir -p "$run" .distray/leases || exit "$EXIT_NO_WORKDIR"
# A lease file that is a link (or not a file) could never be taken: said now, not waited on for ever.
i=0
while [ "$i" -lt "$slots" ]; do
  f=.distray/leases/$i.lock
  if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then
    printf 'distray: %s in the workdir is a symbolic link or not a regular file, so it cannot be a lease; remove it\n' "$f" >&2
    exit "$EXIT_NO_WORKDIR"
  fi
  i=$((i + 1))
done
# The workdir as it is physically: every removal and write below proves it is in it (see enter).
wd_phys=$(pwd -P) || exit "$EXIT_NO_WORKDIR"
exec 3<&0 </dev/null
# Every line for the controller: one write, led by the mark distray:TOKEN (see src/hostShell/protocol.ts), so that
# bytes a login prints (before this shell starts, or from something it left running) are told apart.
say() { printf 'distray:%s %s\n' "$token" "$1"; }
# A pattern of 1000 characters (any), to take that many off the front of a string.
q100='????????????????????????????????????????????????????????????????????????????????????????????????????'
q1000=$q100$q100$q100$q100$q100$q100$q100$q100$q100$q100
# Says "$1 $2 $3$4", $4 being a letter per path or output, as many as the controller asked about:
# when it is long, its letters go first on lines `part $2 LETTERS`, 1000 at a time. A line longer
# than PIPE_BUF (4 KiB) is written in pieces (bash and busybox 4 KiB at a time, dash the parts of its
# format), and a line another lane says at that moment would land inside it: both would be lost,
# and what they answer waited for for ever.
say_letters() {
  sl_rest=$4
  while [ "${#sl_rest}" -gt 1000 ]; do
    # shellcheck disable=SC2295 # a pattern on purpose
    sl_more=${sl_rest#$q1000}
    say "part $2 ${sl_rest%"$sl_more"}"
    sl_rest=$sl_more
  done
  say "$1 $2 $3$sl_rest"
}
# Whatever the login printed before this line is not the protocol.
say ready
have_flock=; command -v flock >/dev/null 2>&1 && have_flock=1
# Held (shared) for the shell's whole life, so distray clean can tell a run is going (it takes it exclusively).
# (A failed redirection on exec would end the shell: it is tried in a subshell first.)
if [ -n "$have_flock" ] && [ ! -L .distray/active ] && (true >>.distray/active) 2>/dev/null; then
  exec 7>>.distray/active
  flock -s -n 7
fi
have_setsid=; command -v setsid >/dev/null 2>&1 && have_setsid=1
claim() {
  set -C
  if { true >"$1"; } 2>/dev/null; then set +C; return 0; fi
  set +C
  return 1
}
# 0: leased; 1: stopped while waiting; 2: no lease file can ever be taken (each is a link, not a
# regular file, or unreadable, or the leases directory is a link): waiting would be for ever.
lease() {
  [ -n "$have_flock" ] || return 0
  [ -n "$leased" ] && return 0
  while :; do
    [ -e "$run/$id.stop" ] || [ -e "$run/eof" ] && return 1
    [ -L .distray ] || [ -L .distray/leases ] && return 2
    # Lane k tries lock k first, so it usually gets it at once.
    j=0 unusable=0
    while [ "$j" -lt "$slots" ]; do
      f=.distray/leases/$(( (lane + j) % slots )).lock
      j=$((j + 1))
      [ -e "$f" ] || [ -L "$f" ] || (umask 0; set -C; true >"$f") 2>/dev/null
      if [ -L "$f" ] || [ ! -f "$f" ] || [ ! -r "$f" ]; then unusable=$((unusable + 1)); continue; fi
      if exec 9<"$f" && flock -n 9; then leased=1; return 0; fi
      exec 9<&-
    done
    [ "$unusable" -ge "$slots" ] && return 2
    sleep 0.2
  done
}
# Whether a workdir-relative path runs through a symbolic link: what is below one may be anywhere.
through_link() {
  tl_rest=$1 tl_at=
  while :; do
    case $tl_rest in */*) ;; *) return 1 ;; esac
    tl_at=${tl_at:+$tl_at/}${tl_rest%%/*}
    tl_rest=${tl_rest#*/}
    [ -L "$tl_at" ] && return 0
  done
}
# Enters the workdir-relative directory $1 one component at a time, never through a link, making
# missing ones if $2 is 1; then proves that where it is, physically, is that directory of the workdir,
# so a component swapped for a link between its check and the cd is caught. It changes directory:
# run it in a subshell. Fails with 1 on a link, a non-directory or .. on the way, 2 when a directory
# is missing (and not to be made), 3 when a directory cannot be made or entered (no permission, a
# name too long): not a link, and not to be reported as one.
enter() {
  en_rest=$1/ en_at=${wd_phys%/}
  while [ -n "$en_rest" ]; do
    en_c=${en_rest%%/*} en_rest=${en_rest#*/}
    case $en_c in ''|.) continue ;; ..) return 1 ;; esac
    [ -L "$en_c" ] && return 1
    if [ ! -d "$en_c" ]; then
      [ -e "$en_c" ] && return 1
      [ "$2" = 1 ] || return 2
      # Another file operation may make it at the same moment: what counts is that it is there now.
      if ! mkdir -- "$en_c" 2>/dev/null && [ ! -d "$en_c" ]; then
        [ -L "$en_c" ] || [ -e "$en_c" ] && return 1
        return 3
      fi
    fi
    if ! cd -P -- "$en_c" 2>/dev/null; then
      [ -L "$en_c" ] || [ ! -d "$en_c" ] && return 1
      return 3
    fi
    en_at=$en_at/$en_c
    [ "$PWD" = "$en_at" ] || return 1
  done
}
# Acts on workdir-relative $2 from inside its directory, entered by enter (so never through a link):
# rm removes it (a file, a link itself or a whole tree: rm -rf never follows a link inside it),
# clear removes it and makes its directory, mkdir makes it (a directory), and mv moves the file $3
# (physical path) to it (mv -T neither moves into a directory nor follows a link at $2). Sets ap_s:
# - (done), p (not done: a directory on its way is a link or not a directory) or x (it failed).
# It changes directory: call it only in a subshell.
at_path() {
  case $2 in */*) ap_dir=${2%/*} ;; *) ap_dir=. ;; esac
  ap_base=${2##*/} ap_mk=1 ap_s=p
  case $ap_base in ''|.|..) return ;; esac
  [ "$1" = rm ] && ap_mk=
  [ "$1" = mkdir ] && ap_dir=$2
  enter "$ap_dir" "$ap_mk"
  case $? in 0) ;; 2) ap_s=-; return ;; 3) ap_s=x; return ;; *) return ;; esac
  ap_s=x
  case $1 in
    rm|clear) if [ -e "$ap_base" ] || [ -L "$ap_base" ]; then rm -rf -- "$ap_base" || return; fi ;;
    mv) mv -f -T -- "$3" "$ap_base" 2>/dev/null || return ;;
  esac
  ap_s=-
}
# Clears a task's output $1 before it starts, and sets cleared: - done, p it runs through a link
# (now), x it could not be removed. A process is started only when there is something to remove or
# a directory to make.
clear_out() {
  cleared=-
  if through_link "$1"; then cleared=p; return; fi
  case $1 in */*) [ -d "${1%/*}" ] || { cleared=$(at_path clear "$1"; echo "$ap_s"); return; } ;; esac
  if [ -e "$1" ] || [ -L "$1" ]; then cleared=$(at_path clear "$1"; echo "$ap_s"); fi
}
# Removes the names given (of the directory file_op is in) in one rm, unless none is there, and adds
# a letter for each to fo_s: - done, x failed (rm -rf never follows a link, and refuses . and ..).
rm_group() {
  [ "$#" -gt 0 ] || return 0
  rg_l=-
  [ -z "$fo_any" ] || rm -rf -- "$@" || rg_l=x
  while [ "$#" -gt 0 ]; do fo_s=$fo_s$rg_l; shift; done
}
# A line `rm ID PATH...`, `mkdir ID DIR...` or `mv ID NAME PATH` (NAME a file in the run directory),
# answered `did ID` and a letter per path (see at_path). Run in the background (a subshell of its
# own, so at_path may change its directory): a large tree takes a while to remove, and stop lines
# must not wait for it.
file_op() {
  exec 3<&-
  fo_op=${1%% *}
  eval "set -- ${1#* }"
  fo_id=$1 fo_s=
  shift
  case $fo_op in
    mv) case $1 in ''|.|..|*/*) fo_s=x ;; *) at_path mv "$2" "$wd_phys/$run/$1"; fo_s=$ap_s ;; esac ;;
    rm)
      # The paths of one directory (the controller sends them together) go in one rm, from inside it;
      # the positional parameters become the bases of that directory (the loop's list is already read).
      fo_dir=/ fo_e=1 fo_any='' fo_new=1
      for fo_p do
        [ -n "$fo_new" ] && set --
        fo_new=
        case $fo_p in */*) fo_pd=${fo_p%/*} ;; *) fo_pd=. ;; esac
        if [ "$fo_pd" != "$fo_dir" ]; then
          rm_group "$@"
          set --
          fo_dir=$fo_pd fo_any=''
          cd -P -- "$wd_phys" && enter "$fo_pd"
          fo_e=$?
        fi
        case $fo_e in
          0)
            set -- "$@" "${fo_p##*/}"
            if [ -e "${fo_p##*/}" ] || [ -L "${fo_p##*/}" ]; then fo_any=1; fi
            ;;
          2) fo_s=$fo_s- ;;
          3) fo_s=${fo_s}x ;;
          *) fo_s=${fo_s}p ;;
        esac
      done
      rm_group "$@"
      ;;
    *)
      for fo_p do
        # Each path from the workdir: the last one may have left this shell anywhere in it.
        [ -z "$fo_s" ] || cd -P -- "$wd_phys" || { fo_s=${fo_s}x; continue; }
        at_path "$fo_op" "$fo_p"
        fo_s=$fo_s$ap_s
      done
      ;;
  esac
  say_letters did "$fo_id" '' "$fo_s"
}
# Never following a link: f a non-empty regular file, e an empty one, d a directory, l a link,
# s anything else (a FIFO, a socket, a device), p a path through a link, - nothing.
out_state() {
  if through_link "$1"; then s=p
  elif [ -L "$1" ]; then s=l
  elif [ -d "$1" ]; then s=d
  elif [ -f "$1" ]; then if [ -s "$1" ]; then s=f; else s=e; fi
  elif [ -e "$1" ]; then s=s
  else s=-; fi
  states=$states$s
}
refuse() {
  echo "- 143" >"$run/$id.task"
  say "exit $id 143"
}
release() {
  [ -n "$leased" ] && exec 9<&-
  leased=
}
# With --stall: stops the task's renderer ($pid) once neither its log nor its outputs have changed for
# a whole DURATION, given as $watch = "TICK,N" (N ticks of TICK seconds). Run in the background by its
# lane. All on the host's own clock: a change is an mtime newer than a mark this watcher wrote, and
# time is counted in sleeps (a loaded host only sleeps longer, so a stall is never declared early).
# Each tick compares with the mark written two ticks before, so a write in the same second as a mark
# (busybox's find compares whole seconds) is still seen at the next tick. The marks are the lane's,
# rewritten each tick rather than created per task. On a stall it writes ID.stalled, then stops the
# renderer; the lane reports the stall before the exit (it prints nothing itself: its channel may be gone).
watch_stall() {
  # Neither the lane's input, the run's shared lock nor the task's lease stays with the watcher.
  exec 3<&- 4<&- 7<&- 9<&-
  ws_sleep=
  trap '[ -n "$ws_sleep" ] && kill "$ws_sleep" 2>/dev/null; exit 0' TERM
  ws_tick=${watch%,*} ws_need=${watch#*,}
  # The files to watch: the outputs (the first $nout words after ID NOUT WATCH; workdir-relative, and
  # led by ./ so that find never takes one for an expression), then the log.
  eval "set -- $task"
  shift 3
  ws_n=$# ws_i=0
  for ws_a do
    [ "$ws_i" -lt "$nout" ] && set -- "$@" "./$ws_a"
    ws_i=$((ws_i + 1))
  done
  shift "$ws_n"
  set -- "$@" "$run/$id.log"
  ws_mark=$run/lane.$lane.mark
  echo >"$ws_mark.0"
  ws_k=0 ws_changed=0
  while :; do
    sleep "$ws_tick" &
    ws_sleep=$!
    wait "$ws_sleep"
    ws_sleep=
    ws_k=$((ws_k + 1))
    echo >"$ws_mark.$((ws_k % 3))"
    ws_ref=$((ws_k - 2))
    [ "$ws_ref" -lt 0 ] && ws_ref=0
    if [ -n "$(find "$@" -newer "$ws_mark.$((ws_ref % 3))" -print 2>/dev/null)" ]; then
      ws_changed=$ws_k
    else
      # Quiet at every tick since the last change: nothing was written since the mark before it.
      ws_since=$((ws_changed - 1))
      [ "$ws_since" -lt 0 ] && ws_since=0
      [ $((ws_k - ws_since)) -ge "$ws_need" ] && break
    fi
  done
  true >"$run/$id.stalled"
  stop_pid "$pid"
}
# Runs the task in $task (eval'd into the positional parameters).
# shellcheck disable=SC2120
lane_task() {
  eval "set -- $task"
  id=$1 nout=$2 watch=$3
  shift 3
  # Nothing new starts once the controller is gone; an adopt may have claimed it.
  [ -e "$run/eof" ] && return
  # Claimed by an adopting shell first: it is not ours to run (nor to write a state for).
  claim "$run/$id.task" || { say "exit $id 143"; return; }
  if [ -e "$run/$id.stop" ]; then refuse; return; fi
  # Outputs are cleared only under the lease: while it waits, another run's renderer may be writing
  # them. Each is checked for links as it is cleared, not before the wait (a link may appear meanwhile).
  lease
  case $? in
    0) ;;
    2) echo "- $EXIT_NO_LEASE" >"$run/$id.task"; say "exit $id $EXIT_NO_LEASE"; return ;;
    *) refuse; return ;;
  esac
  # An output through a link is neither cleared nor given a directory: the task does not run.
  i=0
  while [ "$i" -lt "$nout" ]; do
    clear_out "$1"
    if [ "$cleared" = p ]; then echo "- 143" >"$run/$id.task"; say "refused $id $i"; return; fi
    shift
    i=$((i + 1))
  done
  if [ -n "$have_setsid" ]; then setsid "$@" >"$run/$id.log" 2>&1 4<&- 7<&- 9<&- & else "$@" >"$run/$id.log" 2>&1 4<&- 7<&- 9<&- & fi
  pid=$!
  echo "$pid" >"$run/$id.task"
  # A stop that came before the pid was written has nobody to signal: do it here.
  [ -e "$run/$id.stop" ] && stop_pid "$pid"
  watcher=
  [ "$watch" = - ] || { watch_stall & watcher=$!; }
  say "start $id"
  wait "$pid"
  st=$?
  kill -KILL -"$pid" 2>/dev/null
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null
  echo "$pid $st" >"$run/$id.task"
  [ -e "$run/$id.stalled" ] && say "stalled $id"
  eval "set -- $task"
  shift 3
  states='' i=0
  while [ "$i" -lt "$nout" ]; do out_state "$1"; shift; i=$((i + 1)); done
  if [ -s "$run/$id.log" ]; then wrote=1; else wrote=0; fi
  say_letters exit "$id" "$st $wrote" "$states"
}
lane_loop() {
  lane=$1 leased=
  exec 3<&- 4<>"$run/lane.$lane"
  while IFS= read -r task <&4; do
    [ "$task" = quit ] && break
    # shellcheck disable=SC2119
    lane_task
    # The lease passes to the next task only if that one is already queued; an idle lane holds none.
    last=
    read -r last <"$run/lane.$lane.last"
    [ "$last" = "$id" ] || [ -e "$run/eof" ] && release
  done
}
stop_pid() {
  kill -TERM -"$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
  # KILL what is left after the grace; return as soon as the group is gone, so the shell's last wait is short.
  (
    # Neither the lane's input nor its lease stays with a killer waiting out the grace.
    exec 3<&- 4<&- 9<&-
    i=0
    while [ "$i" -lt "$KILL_GRACE_TICKS" ] && kill -0 -"$1" 2>/dev/null; do sleep 0.2; i=$((i + 1)); done
    kill -KILL -"$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
  ) >/dev/null 2>&1 &
}
# Reads a task file: p (pid, or - if it never started) and st (exit status once it has ended).
task_state() {
  p='' st=''
  [ -f "$1" ] && read -r p st <"$1"
}
stop() {
  true >"$run/$1.stop"
  task_state "$run/$1.task"
  [ -n "$p" ] && [ "$p" != - ] && [ -z "$st" ] && stop_pid "$p"
}
adopt() {
  id=$1 from=.distray/run/$2
  # Not started yet: claimed here, so its lane never starts it; the controller runs it again.
  if claim "$from/$id.task"; then
    echo "- $EXIT_NOT_STARTED" >"$from/$id.task"
    say "exit $id $EXIT_NOT_STARTED"
    return 0
  fi
  true >"$from/$id.adopted"
  echo "$2" >"$run/$id.adopted-from"
  # A subshell: its st is its own.
  # shellcheck disable=SC2030,SC2031
  (
    exec 3<&-
    empty=0
    while task_state "$from/$id.task"; [ -z "$st" ]; do
      if [ -z "$p" ]; then empty=$((empty + 1)); else empty=0; fi
      # Gone without a status (its shell died with the host), or claimed and never started.
      if { [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null; } || [ "$empty" -ge 10 ]; then
        sleep 0.5
        task_state "$from/$id.task"
        [ -n "$st" ] || { st=$EXIT_VANISHED; echo "${p:--} $st" >"$from/$id.task"; }
        break
      fi
      sleep 0.2
    done
    [ -e "$from/$id.stalled" ] && say "stalled $id"
    say "exit $id $st"
  ) &
}
# st is set here by task_state, not in the adopt subshell above.
# shellcheck disable=SC2031
unfinished() {
  for t in "$run"/*.task; do
    [ -e "$t" ] || continue
    id=${t##*/}; id=${id%.task}
    task_state "$t"
    [ -n "$p" ] && [ -z "$st" ] && [ ! -e "$run/$id.adopted" ] && echo "$run/$id"
  done
  for a in "$run"/*.adopted-from; do
    [ -e "$a" ] || continue
    id=${a##*/}; id=${id%.adopted-from}
    read -r from <"$a"
    task_state ".distray/run/$from/$id.task"
    [ -z "$st" ] && echo ".distray/run/$from/$id"
  done
}
# Ends a shell's lanes once their running tasks end: they start nothing more and give up their leases.
# Opened read-write, a FIFO whose lane is gone takes the line instead of blocking.
retire() {
  [ -d "$1" ] || return 0
  true >"$1/eof"
  for f in "$1"/lane.*; do [ -p "$f" ] && printf 'quit\n' 1<>"$f"; done
}
while IFS= read -r line <&3; do
  case $line in
    'run '*)
      rest=${line#run }
      l=${rest%% *}
      case $l in ''|*[!0-9]*) continue ;; esac
      if [ ! -p "$run/lane.$l" ]; then
        if ! mkfifo "$run/lane.$l"; then t=${rest#* }; say "exit ${t%% *} $EXIT_NO_WORKDIR"; continue; fi
        lane_loop "$l" &
        lanes="$lanes $!"
      fi
      t=${rest#* }
      printf '%s\n' "${t%% *}" >"$run/lane.$l.last"
      printf '%s\n' "$t" >"$run/lane.$l"
      ;;
    'stop '*) stop "${line#stop }" ;;
    'rm '*|'mkdir '*|'mv '*) file_op "$line" & ;;
    'adopt '*)
      # shellcheck disable=SC2086 # split into its words on purpose
      set -- ${line#adopt }
      adopt "$1" "$2" ;;
    'forget '*)
      # shellcheck disable=SC2086
      set -- ${line#forget }
      # Removed from inside each run directory, proved to be in the workdir (see enter).
      [ "$2" = "$token" ] || { (enter "$run" && rm -f -- "$1.adopted-from"); (enter ".distray/run/$2" && rm -f -- "$1".*); } ;;
    'retire '*) t=${line#retire }; case $t in ''|*[!A-Za-z0-9-]*) ;; *) [ "$t" = "$token" ] || retire ".distray/run/$t" ;; esac ;;
  esac
done
# The controller is gone: nobody reads what we would say, and a write to its closed pipe would kill this shell (SIGPIPE) and orphan the lanes.
exec >/dev/null 2>&1
true >"$run/eof"
# A task still running when the controller went (not one it stopped) may end before a controller
# comes back: its result is kept for the whole grace, for that controller to collect, not only
# until it ends.
keep=''
for t in $(unfinished); do [ -e "$t.stop" ] || keep=1; done
waited=0
while [ "$waited" -lt "$grace" ] && { [ -n "$keep" ] || [ -n "$(unfinished)" ]; }; do sleep 1; waited=$((waited + 1)); done
for t in $(unfinished); do
  task_state "$t.task"
  [ -n "$p" ] && [ "$p" != - ] && stop_pid "$p"
done
retire "$run"
# Lanes whose FIFOs were removed with the run directory (the workdir deleted under us) never hear quit.
# shellcheck disable=SC2086 # a list of pids
[ -d "$run" ] || kill $lanes 2>/dev/null
wait
# A task another shell adopted keeps its files until that shell has read them.
for a in "$run"/*.adopted; do [ -e "$a" ] && exit 0; done
(at_path rm "$run")
exit 0
