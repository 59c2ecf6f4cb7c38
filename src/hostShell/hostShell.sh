# shellcheck shell=sh
#
# The host shell: one long-lived sh per host and run, on one SSH channel (or a
# local process for the local host), that starts tasks in lanes, stops them,
# reports when they end, and removes and puts files in place for the
# controller. The controller's side is src/hostShell/hostShell.ts; the
# protocol's constants are in src/hostShell/protocol.ts (a test checks they
# agree with the ones below).
#
# Usage:
#   sh -c "$(cat hostShell.sh)" distray-host WORKDIR TOKEN SLOTS GRACE
# with the controller's lines on stdin and its answers on stdout. WORKDIR is
# entered (made if missing), TOKEN names this shell's run directory and marks
# its lines, SLOTS is the number of leases (and of lanes the controller uses),
# GRACE the seconds tasks outlive a lost controller, waiting to be adopted.
# Whole-line comments, blank lines and indentation are left out of what is sent
# (the script travels on every host shell's command line): comments cost
# nothing, and no quoted string may hold a line that starts with blanks.
# It must run under any POSIX sh (dash, bash, busybox ash): the tests run it
# under all three.
#
# Why one shell per host: a login shell reads the user's rc files (85 ms of
# CPU for root on our CI image, seconds with some conda setups), once per
# host instead of once per task or slot.
#
# PROTOCOL
#
# Controller -> shell (stdin), one command a line; words of paths and argv
# are single-quoted, with newlines spliced in as "$nl" (they are eval'd):
#   run LANE ID NOUT WATCH OUTPUT... ARGV...
#       Queue task ID in lane LANE: NOUT outputs (workdir-relative, cleared
#       before it starts, reported after), then the renderer's argv. WATCH is
#       `-`, or `TICK,N` for --stall (stop it after N sleeps of TICK seconds
#       in which neither its log nor its outputs changed; see watch_stall).
#   stop ID          Stop task ID now: TERM to its process group, KILL
#                    after KILL_GRACE_TICKS.
#   adopt ID TOKEN   Take over task ID that an earlier shell TOKEN started
#                    (a controller back after a network blip): its result is
#                    picked up instead of rendering it again.
#   forget ID TOKEN  Task ID's files are no longer needed (a shell's own are
#                    removed in one go when it exits: less than one rm a task).
#   retire TOKEN     The lanes of an earlier shell TOKEN start nothing more.
#   rm ID PATH...    Remove the paths, never through a link.
#   mkdir ID DIR...  Make the directories, never through a link.
#   mv ID NAME PATH  Move file NAME of this shell's run directory (written
#                    there over SFTP) to PATH, never through a link.
#
# Shell -> controller (stdout). Every line is one write, shorter than PIPE_BUF,
# led by the mark `distray:TOKEN ` (see say; left out below). The controller
# looks for the mark anywhere in a line, not only at its start: whatever a
# login leaves running may print at any time (`(sleep 1; printf x) &` in a
# ~/.bashrc), and bytes without a newline end up glued before the next line of
# the protocol, which must still count. A line without the mark is the
# login's: warned about once, otherwise ignored. A new kind of line is a new
# word after the mark.
#   ready            Once, first: anything before it is the login's.
#   start ID         Task ID's renderer has started.
#   exit ID STATUS INFO
#                    Task ID has ended with STATUS (see EXIT STATUSES). INFO
#                    (absent for an adopted task) is `1` if its log is not
#                    empty, else `0`, then a letter per output, never
#                    following a link: f a non-empty regular file, e an empty
#                    one, d a directory, l a symbolic link, s anything else
#                    (a FIFO, a socket, a device), p a path through a link,
#                    - missing.
#   refused ID N     Instead of start and exit: output N runs through a
#                    link, so the task was not run (clearing it could remove
#                    a file elsewhere).
#   stalled ID       Just before `exit ID ...` (adopted tasks too): the
#                    renderer was stopped by its WATCH (--stall).
#   did ID LETTERS   Answers rm, mkdir and mv: a letter per path, - done,
#                    p not done (a directory on its way is a link, or not a
#                    directory), x failed.
#   part ID LETTERS  Before the `did` or `exit` of an ID with more than 1000
#                    letters, 1000 on each; the answer's own line has the
#                    rest. A longer line would be written in pieces, and a
#                    line another lane says meanwhile would land inside it.
#
# EXIT STATUSES of a task, besides its renderer's own (constants below):
#   EXIT_NO_LEASE     no lease file can ever be taken (each is a link, not a
#                     regular file, or unreadable): waiting would be for ever.
#   EXIT_NO_WORKDIR   the workdir (or the run directory) cannot be entered or
#                     made; also the shell's own exit status then.
#   EXIT_STOPPED      stopped before its renderer started (as a renderer
#                     stopped by TERM would be: 128 + 15).
#   EXIT_NOT_STARTED  adopt: the task had not started; the controller runs it
#                     again.
#   EXIT_VANISHED     adopt: its renderer is gone without a status (its shell
#                     died with the host).
#
# FILES, under WORKDIR/.distray:
#   run/TOKEN/ID.task  empty once the task is claimed, then "PID" while it
#       runs and "PID STATUS" when it has ended ("- STATUS" if it never
#       started; rewriting a file costs far less than creating one). A lane
#       claims a task (creates ID.task, O_EXCL) before starting it, and so
#       does adopt for one not yet started: whoever claims first decides, so
#       a task is never both run and given back.
#   run/TOKEN/ID.log   the renderer's output; ID.stop, ID.stalled,
#       ID.adopted, ID.adopted-from mark what happened to it. They survive
#       the controller, for the next one to adopt.
#   run/TOKEN/lane.N   the FIFO lane N reads its tasks from; lane.N.last the
#       last task queued to it; eof: the controller is gone.
#   leases/K.lock      the leases (see Leases below); active: held shared by every
#       live shell, so `distray clean` can tell a run is going.
#
# Notes for whoever edits this: `kill -TERM -PID`, not `kill -TERM -- -PID`
# (dash refuses the latter); never `exec ... 2>/dev/null` (the redirection
# would stay for the rest of the shell); sh gives background jobs /dev/null
# as stdin, hence the controller's input on fd 3; a redirection that fails
# on `:` (a special builtin) ends the shell, on `true` it does not: write
# `true >f`, never `: >f` (the run directory may be gone, or f may exist
# under `set -C`). POSIX sh has no `local`: each function's variables carry
# a prefix named after it (en_ for enter, ll_ for lane_loop), its results
# too (ap_s of at_path, ts_pid and ts_st of task_state), and the true
# globals are the ones declared below. File descriptors: 3 the controller's input, 4 a lane's FIFO, 7 the
# shared hold on .distray/active, 9 a lane's lease.

# --- Constants -----------------------------------------------------------------

# Task statuses the controller knows (see EXIT STATUSES above).
EXIT_NO_LEASE=124
EXIT_NO_WORKDIR=125
EXIT_STOPPED=143
EXIT_NOT_STARTED=254
EXIT_VANISHED=255
# TERM, then KILL after this many 0.2 s ticks (5 s: KILL_GRACE_SECONDS in protocol.ts).
KILL_GRACE_TICKS=25
# A pattern of 1000 characters (any), to take that many off the front of a string.
q100='????????????????????????????????????????????????????????????????????????????????????????????????????'
q1000=$q100$q100$q100$q100$q100$q100$q100$q100$q100$q100
# $nl joins the lines of a multi-line argument in the task lines the controller sends (eval).
# shellcheck disable=SC2034
nl='
'

# --- Globals -------------------------------------------------------------------
#
# Set once by setup: token slots grace (the arguments), run (this shell's run
# directory, workdir-relative), wd_phys (the workdir as it is physically),
# have_flock and have_setsid (1 when the host has them). lanes: the pids of the
# lanes, for shutdown. In a lane's subshell: lane (its number) and leased (1
# while it holds a lease on fd 9).
token='' slots='' grace='' run='' wd_phys='' have_flock='' have_setsid='' lanes='' lane='' leased=''

# --- Lines for the controller --------------------------------------------------

# Every line for the controller: one write, led by the mark distray:TOKEN, so that bytes a login
# prints (before this shell starts, or from something it left running) are told apart.
say() { printf 'distray:%s %s\n' "$token" "$1"; }

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

# --- Setup ---------------------------------------------------------------------

# setup WORKDIR TOKEN SLOTS GRACE: enters the workdir, makes the run directory, sets the globals
# and says ready; exits with EXIT_NO_WORKDIR when the workdir cannot be used.
setup() {
  cd -- "$1" 2>/dev/null || { mkdir -p -- "$1" 2>/dev/null && cd -- "$1"; } || { printf 'distray: cannot enter the workdir %s\n' "$1" >&2; exit "$EXIT_NO_WORKDIR"; }
  token=$2 slots=$3 grace=$4 lanes=''
  run=.distray/run/$token
  # Its own files never go through a link planted in the workdir.
  for su_d in .distray .distray/run .distray/leases; do
    [ -L "$su_d" ] && { printf 'distray: %s in the workdir is a symbolic link; remove it\n' "$su_d" >&2; exit "$EXIT_NO_WORKDIR"; }
  done
  mkdir -p "$run" .distray/leases || exit "$EXIT_NO_WORKDIR"
  # A lease file that is a link (or not a file) could never be taken: said now, not waited on for ever.
  su_i=0
  while [ "$su_i" -lt "$slots" ]; do
    su_f=.distray/leases/$su_i.lock
    if [ -L "$su_f" ] || { [ -e "$su_f" ] && [ ! -f "$su_f" ]; }; then
      printf 'distray: %s in the workdir is a symbolic link or not a regular file, so it cannot be a lease; remove it\n' "$su_f" >&2
      exit "$EXIT_NO_WORKDIR"
    fi
    su_i=$((su_i + 1))
  done
  # The workdir as it is physically: every removal and write proves it is in it (see enter).
  wd_phys=$(pwd -P) || exit "$EXIT_NO_WORKDIR"
  exec 3<&0 </dev/null
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
}

# --- Leases --------------------------------------------------------------------
#
# A task runs under a lease: an flock on one of .distray/leases/0..SLOTS-1.lock, taken before it
# starts, so two controllers on one host never run more than SLOTS tasks there together, and the
# kernel releases a lease however its holder dies. When a task ends its lane keeps the lease only if
# its next task is already queued (lane.N.last), so back-to-back tasks cost no flock process each
# (1.5-2 ms of CPU), and an idle lane holds nothing. (Held for a lane's whole life, two controllers
# could each hold part of one host and wait on the other's for ever.) Hosts without flock(1) run
# unleased.

# Creates file $1, failing if it exists: whoever claims a task first decides.
claim() {
  set -C
  if { true >"$1"; } 2>/dev/null; then set +C; return 0; fi
  set +C
  return 1
}

# Takes a lease for task $1 on fd 9. 0: leased; 1: stopped while waiting; 2: no lease file can ever
# be taken (each is a link, not a regular file, or unreadable, or the leases directory is a link):
# waiting would be for ever.
lease() {
  [ -n "$have_flock" ] || return 0
  [ -n "$leased" ] && return 0
  while :; do
    [ -e "$run/$1.stop" ] || [ -e "$run/eof" ] && return 1
    [ -L .distray ] || [ -L .distray/leases ] && return 2
    # Lane k tries lock k first, so it usually gets it at once.
    le_j=0 le_unusable=0
    while [ "$le_j" -lt "$slots" ]; do
      le_f=.distray/leases/$(( (lane + le_j) % slots )).lock
      le_j=$((le_j + 1))
      [ -e "$le_f" ] || [ -L "$le_f" ] || (umask 0; set -C; true >"$le_f") 2>/dev/null
      if [ -L "$le_f" ] || [ ! -f "$le_f" ] || [ ! -r "$le_f" ]; then le_unusable=$((le_unusable + 1)); continue; fi
      if exec 9<"$le_f" && flock -n 9; then leased=1; return 0; fi
      exec 9<&-
    done
    [ "$le_unusable" -ge "$slots" ] && return 2
    sleep 0.2
  done
}

release() {
  [ -n "$leased" ] && exec 9<&-
  leased=
}

# --- Paths and outputs ---------------------------------------------------------
#
# Whatever distray removes or puts in place on a host is done here, at the moment it acts, from
# inside the path's directory, entered one component at a time (`cd -P`, refusing a link) and then
# proved, by its physical path, to be that directory of the workdir: a directory swapped for a link
# at any moment before (by a renderer, during a lease wait) is never followed. So are a task's
# outputs cleared before it starts (under its lease); the outputs of a stopped or superseded
# attempt and fetched outputs removed (rm); and uploads moved into place (mv). Only builtins run
# unless there is something to remove or create.

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

# Clears a task's output $1 before it starts, and sets co_s: - done, p it runs through a link
# (now), x it could not be removed. A process is started only when there is something to remove or
# a directory to make.
clear_out() {
  co_s=-
  if through_link "$1"; then co_s=p; return; fi
  case $1 in */*) [ -d "${1%/*}" ] || { co_s=$(at_path clear "$1"; echo "$ap_s"); return; } ;; esac
  if [ -e "$1" ] || [ -L "$1" ]; then co_s=$(at_path clear "$1"; echo "$ap_s"); fi
}

# Sets os_s to a letter per output (the first $1 of the rest of the arguments), never following a
# link: f a non-empty regular file, e an empty one, d a directory, l a link, s anything else (a FIFO,
# a socket, a device), p a path through a link, - nothing.
out_states() {
  os_n=$1 os_s=
  shift
  while [ "$os_n" -gt 0 ]; do
    if through_link "$1"; then os_s=${os_s}p
    elif [ -L "$1" ]; then os_s=${os_s}l
    elif [ -d "$1" ]; then os_s=${os_s}d
    elif [ -f "$1" ]; then if [ -s "$1" ]; then os_s=${os_s}f; else os_s=${os_s}e; fi
    elif [ -e "$1" ]; then os_s=${os_s}s
    else os_s=$os_s-; fi
    shift
    os_n=$((os_n - 1))
  done
}

# --- Stall watch ---------------------------------------------------------------

# watch_stall PID ID NOUT WATCH OUTPUT... ARGV..., with --stall: stops the renderer PID once
# neither its log nor its outputs have changed for a whole WATCH "TICK,N" (N ticks of TICK seconds).
# Run in the background by its lane. All on the host's own clock: a change is an mtime newer than a
# mark this watcher wrote, and time is counted in sleeps (a loaded host only sleeps longer, so a
# stall is never declared early). Each tick compares with the mark written two ticks before, so a write in the same
# second as a mark (busybox's find compares whole seconds) is still seen at the next tick. The marks
# are the lane's, rewritten each tick rather than created per task. On a stall it writes ID.stalled,
# then stops the renderer; the lane reports the stall before the exit (it prints nothing itself: its
# channel may be gone).
watch_stall() {
  # Neither the lane's input, the run's shared lock nor the task's lease stays with the watcher.
  exec 3<&- 4<&- 7<&- 9<&-
  ws_sleep=
  trap '[ -n "$ws_sleep" ] && kill "$ws_sleep" 2>/dev/null; exit 0' TERM
  ws_pid=$1 ws_id=$2 ws_nout=$3 ws_tick=${4%,*} ws_need=${4#*,}
  shift 4
  # The files to watch: the outputs (workdir-relative, and led by ./ so that find never takes one for
  # an expression), then the log.
  ws_n=$# ws_i=0
  for ws_a do
    [ "$ws_i" -lt "$ws_nout" ] && set -- "$@" "./$ws_a"
    ws_i=$((ws_i + 1))
  done
  shift "$ws_n"
  set -- "$@" "$run/$ws_id.log"
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
  true >"$run/$ws_id.stalled"
  stop_pid "$ws_pid"
}

# --- Lanes ---------------------------------------------------------------------
#
# Tasks run in lanes, one per slot of the controller: a lane is a long-lived subshell reading its
# tasks from a FIFO, one after another. The controller may queue a lane's next task while the
# current one renders, so the next starts the moment the current ends, without a round trip to the
# controller; and a lane costs no fork of its own per task. Each renderer runs in its own process
# group (setsid): OpenSSH 9.2 neither forwards signals for root logins nor kills a pty-less process
# when the channel closes, so the shell stops the group itself, TERM then KILL.

# Lane $1: runs the tasks of its FIFO until it reads quit.
lane_loop() {
  lane=$1 leased=
  exec 3<&- 4<>"$run/lane.$lane"
  while IFS= read -r ll_task <&4; do
    [ "$ll_task" = quit ] && break
    # The task line is parsed here, once: its words become lane_task's arguments.
    eval "set -- $ll_task"
    lane_task "$@"
    # The lease passes to the next task only if that one is already queued; an idle lane holds none.
    ll_last=
    read -r ll_last <"$run/lane.$lane.last"
    [ "$ll_last" = "${ll_task%% *}" ] || [ -e "$run/eof" ] && release
  done
}

# Runs task ID NOUT WATCH OUTPUT... ARGV... (a run line's words after its lane).
lane_task() {
  lt_id=$1 lt_nout=$2
  # Nothing new starts once the controller is gone; an adopt may have claimed it.
  [ -e "$run/eof" ] && return
  # Claimed by an adopting shell first: it is not ours to run (nor to write a state for).
  claim "$run/$lt_id.task" || { say "exit $lt_id $EXIT_STOPPED"; return; }
  if [ -e "$run/$lt_id.stop" ]; then lane_refuse "$lt_id" "$EXIT_STOPPED"; return; fi
  # Outputs are cleared only under the lease: while it waits, another run's renderer may be writing
  # them. Each is checked for links as it is cleared, not before the wait (a link may appear meanwhile).
  lease "$lt_id"
  case $? in
    0) ;;
    2) lane_refuse "$lt_id" "$EXIT_NO_LEASE"; return ;;
    *) lane_refuse "$lt_id" "$EXIT_STOPPED"; return ;;
  esac
  # An output through a link is neither cleared nor given a directory: the task does not run.
  lane_clear "$@" || { echo "- $EXIT_STOPPED" >"$run/$lt_id.task"; say "refused $lt_id $lc_i"; return; }
  lane_spawn "$@"
  lt_pid=$!
  echo "$lt_pid" >"$run/$lt_id.task"
  # A stop that came before the pid was written has nobody to signal: do it here.
  [ -e "$run/$lt_id.stop" ] && stop_pid "$lt_pid"
  lt_watcher=
  [ "$3" = - ] || { watch_stall "$lt_pid" "$@" & lt_watcher=$!; }
  say "start $lt_id"
  wait "$lt_pid"
  lt_st=$?
  kill -KILL -"$lt_pid" 2>/dev/null
  [ -n "$lt_watcher" ] && kill "$lt_watcher" 2>/dev/null
  echo "$lt_pid $lt_st" >"$run/$lt_id.task"
  [ -e "$run/$lt_id.stalled" ] && say "stalled $lt_id"
  shift 3
  out_states "$lt_nout" "$@"
  if [ -s "$run/$lt_id.log" ]; then lt_wrote=1; else lt_wrote=0; fi
  say_letters exit "$lt_id" "$lt_st $lt_wrote" "$os_s"
}

# Task $1 ends with status $2 without starting.
lane_refuse() {
  echo "- $2" >"$run/$1.task"
  say "exit $1 $2"
}

# Clears the outputs of task ID NOUT WATCH OUTPUT...; fails with lc_i the first output that runs
# through a link.
lane_clear() {
  lc_i=0 lc_n=$2
  shift 3
  while [ "$lc_i" -lt "$lc_n" ]; do
    clear_out "$1"
    [ "$co_s" = p ] && return 1
    shift
    lc_i=$((lc_i + 1))
  done
}

# Starts the renderer of task ID NOUT WATCH OUTPUT... ARGV... in the background (its pid is $!).
lane_spawn() {
  lp_log=$run/$1.log
  shift $((3 + $2))
  if [ -n "$have_setsid" ]; then setsid "$@" >"$lp_log" 2>&1 4<&- 7<&- 9<&- & else "$@" >"$lp_log" 2>&1 4<&- 7<&- 9<&- & fi
}

# Stops process group $1: TERM now, KILL after the grace.
stop_pid() {
  kill -TERM -"$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
  # KILL what is left after the grace; return as soon as the group is gone, so the shell's last wait is short.
  (
    # Neither the lane's input nor its lease stays with a killer waiting out the grace.
    exec 3<&- 4<&- 9<&-
    sp_i=0
    while [ "$sp_i" -lt "$KILL_GRACE_TICKS" ] && kill -0 -"$1" 2>/dev/null; do sleep 0.2; sp_i=$((sp_i + 1)); done
    kill -KILL -"$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
  ) >/dev/null 2>&1 &
}

# --- Commands ------------------------------------------------------------------

# Reads a task file $1: ts_pid (pid, or - if it never started) and ts_st (exit status once it has ended).
task_state() {
  ts_pid='' ts_st=''
  [ -f "$1" ] && read -r ts_pid ts_st <"$1"
}

# run LANE ID ...: queues the task in its lane, starting the lane first if it has none yet.
cmd_run() {
  cr_lane=${1%% *} cr_task=${1#* }
  case $cr_lane in ''|*[!0-9]*) return ;; esac
  if [ ! -p "$run/lane.$cr_lane" ]; then
    if ! mkfifo "$run/lane.$cr_lane"; then say "exit ${cr_task%% *} $EXIT_NO_WORKDIR"; return; fi
    lane_loop "$cr_lane" &
    lanes="$lanes $!"
  fi
  printf '%s\n' "${cr_task%% *}" >"$run/lane.$cr_lane.last"
  printf '%s\n' "$cr_task" >"$run/lane.$cr_lane"
}

cmd_stop() {
  true >"$run/$1.stop"
  task_state "$run/$1.task"
  [ -n "$ts_pid" ] && [ "$ts_pid" != - ] && [ -z "$ts_st" ] && stop_pid "$ts_pid"
}

# adopt ID TOKEN
cmd_adopt() {
  ca_from=.distray/run/$2
  # Not started yet: claimed here, so its lane never starts it; the controller runs it again.
  if claim "$ca_from/$1.task"; then
    echo "- $EXIT_NOT_STARTED" >"$ca_from/$1.task"
    say "exit $1 $EXIT_NOT_STARTED"
    return 0
  fi
  true >"$ca_from/$1.adopted"
  echo "$2" >"$run/$1.adopted-from"
  # A subshell: its ts_st is its own.
  # shellcheck disable=SC2030,SC2031
  (
    exec 3<&-
    ca_empty=0
    while task_state "$ca_from/$1.task"; [ -z "$ts_st" ]; do
      if [ -z "$ts_pid" ]; then ca_empty=$((ca_empty + 1)); else ca_empty=0; fi
      # Gone without a status (its shell died with the host), or claimed and never started.
      if { [ -n "$ts_pid" ] && ! kill -0 "$ts_pid" 2>/dev/null; } || [ "$ca_empty" -ge 10 ]; then
        sleep 0.5
        task_state "$ca_from/$1.task"
        [ -n "$ts_st" ] || { ts_st=$EXIT_VANISHED; echo "${ts_pid:--} $ts_st" >"$ca_from/$1.task"; }
        break
      fi
      sleep 0.2
    done
    [ -e "$ca_from/$1.stalled" ] && say "stalled $1"
    say "exit $1 $ts_st"
  ) &
}

# forget ID TOKEN: removed from inside each run directory, proved to be in the workdir (see enter).
cmd_forget() {
  [ "$2" = "$token" ] && return
  (enter "$run" && rm -f -- "$1.adopted-from")
  (enter ".distray/run/$2" && rm -f -- "$1".*)
}

# Ends the lanes of the shell whose run directory is $1 once their running tasks end: they start
# nothing more and give up their leases. Opened read-write, a FIFO whose lane is gone takes the line
# instead of blocking.
retire() {
  [ -d "$1" ] || return 0
  true >"$1/eof"
  for re_f in "$1"/lane.*; do [ -p "$re_f" ] && printf 'quit\n' 1<>"$re_f"; done
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

# Reads the controller's lines until it is gone.
commands() {
  while IFS= read -r cm_line <&3; do
    case $cm_line in
      'run '*) cmd_run "${cm_line#run }" ;;
      'stop '*) cmd_stop "${cm_line#stop }" ;;
      'rm '*|'mkdir '*|'mv '*) file_op "$cm_line" & ;;
      'adopt '*)
        # shellcheck disable=SC2086 # split into its words on purpose
        cmd_adopt ${cm_line#adopt } ;;
      'forget '*)
        # shellcheck disable=SC2086
        cmd_forget ${cm_line#forget } ;;
      'retire '*)
        cm_t=${cm_line#retire }
        case $cm_t in ''|*[!A-Za-z0-9-]*) ;; *) [ "$cm_t" = "$token" ] || retire ".distray/run/$cm_t" ;; esac ;;
    esac
  done
}

# --- Shutdown ------------------------------------------------------------------
#
# At end of input (the controller closed the channel, or its connection is gone) lanes start
# nothing more, the shell waits GRACE seconds for a controller to adopt what still runs, then stops
# the rest, and removes its run directory unless another shell adopted a task of it.

# Lists the tasks (their run directory and ID) that have not ended: this shell's own, not adopted
# by another, and those it adopted.
# shellcheck disable=SC2031 # ts_st is set here by task_state, not in the adopt subshell.
unfinished() {
  for un_t in "$run"/*.task; do
    [ -e "$un_t" ] || continue
    un_id=${un_t##*/}; un_id=${un_id%.task}
    task_state "$un_t"
    [ -n "$ts_pid" ] && [ -z "$ts_st" ] && [ ! -e "$run/$un_id.adopted" ] && echo "$run/$un_id"
  done
  for un_a in "$run"/*.adopted-from; do
    [ -e "$un_a" ] || continue
    un_id=${un_a##*/}; un_id=${un_id%.adopted-from}
    read -r un_from <"$un_a"
    task_state ".distray/run/$un_from/$un_id.task"
    [ -z "$ts_st" ] && echo ".distray/run/$un_from/$un_id"
  done
}

shutdown() {
  # Nobody reads what we would say, and a write to its closed pipe would kill this shell (SIGPIPE) and orphan the lanes.
  exec >/dev/null 2>&1
  true >"$run/eof"
  # A task still running when the controller went (not one it stopped) may end before a controller
  # comes back: its result is kept for the whole grace, for that controller to collect, not only
  # until it ends.
  sd_keep=''
  for sd_t in $(unfinished); do [ -e "$sd_t.stop" ] || sd_keep=1; done
  sd_waited=0
  while [ "$sd_waited" -lt "$grace" ] && { [ -n "$sd_keep" ] || [ -n "$(unfinished)" ]; }; do sleep 1; sd_waited=$((sd_waited + 1)); done
  for sd_t in $(unfinished); do
    task_state "$sd_t.task"
    [ -n "$ts_pid" ] && [ "$ts_pid" != - ] && stop_pid "$ts_pid"
  done
  retire "$run"
  # Lanes whose FIFOs were removed with the run directory (the workdir deleted under us) never hear quit.
  # shellcheck disable=SC2086 # a list of pids
  [ -d "$run" ] || kill $lanes 2>/dev/null
  wait
  # A task another shell adopted keeps its files until that shell has read them.
  for sd_a in "$run"/*.adopted; do [ -e "$sd_a" ] && return; done
  (at_path rm "$run")
}

main() {
  setup "$@"
  commands
  shutdown
  exit 0
}

main "$@"
