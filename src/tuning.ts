/**
 * Every number that tunes how distray behaves, each with why it is what it
 * is: change one here, and read its reason first. Limits a user sets
 * (--retries, --timeout, --stall, ...) are options, not here; numbers that
 * are facts of a protocol or a format live beside the code that speaks it.
 */

// ---------------------------------------------------------------------------
// The run (run.ts)

/**
 * A host whose last attempts failed on this many different tasks in a row is
 * taken out of the run ('blocked'): one failure may be the task's fault, three
 * different ones are the host's, and its slots would otherwise use up every
 * task's retries.
 */
export const MAX_CONSECUTIVE_FAILURES = 3;

/** A stitched frame's canvas is width x height x up to 8 bytes: 2 GB at this many pixels (sharp's own default limit). */
export const MAX_STITCH_PIXELS = 16383 * 16383;

/** Renderers outlive a lost connection this long, so a controller that reconnects picks up their work. */
export const DEFAULT_GRACE_MS = 30_000;

/** The shortest --stall: the host looks every eighth of it, and a renderer's start-up alone can be quiet for a second. */
export const MIN_STALL_MS = 1000;

// ---------------------------------------------------------------------------
// Bringing hosts into the run (execute/hostLifecycle.ts)

/** Hosts opening their SSH handshakes at once; OpenSSH's MaxStartups drops more than 10 per server. */
export const CONNECT_CONCURRENCY = 10;

/** Backoff between tries of a host whose handshake was dropped (MaxStartups) or reset. */
export const HANDSHAKE_BACKOFF_MS = [250, 500, 1000, 2000, 4000];

/**
 * Tries of a host that never completed a handshake: one that accepts TCP and
 * closes at once is given up after these (about 12 s of backoff), not retried
 * for as long as the run lasts.
 */
export const MAX_HANDSHAKE_TRIES = 7;

/** A lost host is waited for this long before the run stops counting on it (it keeps being retried). */
export const REJOIN_WINDOW_MS = 60_000;

/** A lost host is retried with a backoff that doubles up to this: a host back after a long outage waits no more than this to rejoin. */
export const MAX_BACKOFF_MS = 30_000;

// ---------------------------------------------------------------------------
// One attempt on a host (execute/attempt.ts)

/** Lines of a failed renderer's output quoted in its error: enough for the error itself, short enough for a terminal. */
export const TAIL_LINES = 10;

/**
 * How long a stopped run may spend bringing back the outputs of frames that
 * were finished when it was stopped (a second Ctrl+C exits at once).
 */
export const KEEP_FINISHED_MS = 10_000;

/**
 * Of an attempt's output, the last this many bytes are kept in its log here
 * (and read from the host at an offset): a renderer that writes gigabytes
 * costs the controller no more than this.
 */
export const LOG_KEPT = 1024 * 1024;

/** Once the run is stopped, how long a removal of outputs on a host may keep an attempt from ending. */
export const REMOVE_AFTER_STOP_MS = 2_000;

/** Longest run line that may wait in a lane's pipe on the host (pipes hold 64 KiB on Linux, 4 KiB at the least). */
export const MAX_QUEUED_LINE = 3 * 1024;

/**
 * Once the run is stopped, how long a host has to say that a renderer it was
 * told to stop has ended, beyond the TERM-to-KILL grace the host shell gives
 * it (KILL_GRACE_SECONDS, a fact of the protocol): a host that went silent
 * never says, and the run does not wait for keepalive to give it up. See
 * STOP_CONFIRM_MS in execute/attempt.ts.
 */
export const STOP_CONFIRM_SLACK_MS = 3000;

// ---------------------------------------------------------------------------
// The scheduler (scheduler/)

/**
 * A slot queues a second task behind its running one only while the queue
 * takes more than this many of its host's task times to drain: the queued
 * task then waits about one task time, and the farm still has work for that
 * long, so the wait cannot delay the end of the run.
 */
export const QUEUE_FACTOR = 2;

/**
 * Until every host's pace is known (hosts still connecting, or not yet
 * through a task), the queue counts as long enough to queue on a host only at
 * this many times what the hosts timed so far need: the others only make it
 * drain sooner.
 */
export const QUEUE_MARGIN = 4;

/**
 * Held slots and slots that do not queue are looked at again when the queue's
 * drain time has grown by more than this factor since the last look (a host
 * lost or stalled, a task back), not on every change: they can be most of a
 * farm near the end of a run.
 */
export const RECHECK_GROWTH = 1.05;

/**
 * With spare slots and no host timed yet, how soon they look again for a
 * render worth a copy (once a host is timed: half the fastest spare host's
 * task time, when a render there could first be expected to end).
 */
export const SPARE_RECHECK_MS = 1000;

/** The soonest a look again at held and spare slots is timed for: a farm of very short tasks would otherwise look every millisecond. */
export const MIN_RECHECK_MS = 100;

/** A render counts as late at this multiple of its host's estimate: task times vary, and a render a little late is not stalled. */
export const STALL_LATE = 1.25;

/** A late render is looked at again each time it has run this much longer: its host's pace is updated in steps, not on every tick. */
export const STALL_STEP = 1.5;

/**
 * Weight of the newest attempt in a host's moving average of task time: high
 * enough that a host that slows down (thermal throttling, another user) is
 * seen within a few tasks, low enough that one odd task does not swing it.
 */
export const ESTIMATE_WEIGHT = 0.3;

/** A render that has run t so far is expected to take this multiple of t in all (it is not counted on to end just now). */
export const RUNNING_FACTOR = 1.5;

/**
 * A copy must be expected to take no more than 1 / COPY_MARGIN of the time
 * the original is expected to need still: task times vary, and a host's
 * pace is an average, so a copy that would win only narrowly is as likely
 * to lose, and takes a slot a better copy could have had.
 */
export const COPY_MARGIN = 1.5;

/** Live attempts of one task at most: the original and two copies (the first may have gone to a slow host, the only one free then). */
export const MAX_COPIES = 3;

/**
 * Running attempts looked at for one spare slot's copy, latest expected end
 * first: past these, a copy worth making is unlikely, and a slot's look must
 * stay cheap on a farm with thousands of renders in flight.
 */
export const COPY_CANDIDATES = 32;
