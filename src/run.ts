import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathsMade, recordMade } from './clean/manifest.js';
import { LocalFault, UsageError, errorMessage } from './errors.js';
import { exitCode } from './outcome.js';
import { Teardown } from './teardown.js';
export { parseDuration, MAX_TIMER_MS as MAX_DURATION_MS } from './text/duration.js';
import { HostLifecycle } from './execute/hostLifecycle.js';
import { LiveInventory } from './execute/liveInventory.js';
import { loadInventory, loadInventoryAsync } from './inventory/load.js';
import { selectHosts } from './inventory/select.js';
import type { HostConfig } from './inventory/types.js';
import { parseDuration } from './text/duration.js';
import { parseFrameSpec } from './plan/frames.js';
import { entryProblem } from './plan/paths.js';
import { parseOrder, taskOrder } from './plan/order.js';
import { Plan } from './plan/plan.js';
import { ChunkSizer } from './plan/chunkSizer.js';
import { DEFAULT_CHUNK_TARGET_MS, parseChunk, type ChunkSize } from './plan/chunks.js';
import { parseGrid, parseSize, type Size } from './plan/tiles.js';
import { FrameStitcher } from './stitch/frames.js';
import { DEFAULT_KEEP_LOGS, pruneRunLogs, runLogName } from './report/logs.js';
import type { Progress } from './views/progress.js';
import { summarise } from './fold/summary.js';
import { writeReport } from './report/json.js';
import type { RunSummary } from './fold/types.js';
import { writeJunit } from './report/junit.js';
import { RunLog } from './report/runLog.js';
import type { TaskFold } from './fold/taskFold.js';
import type { HostFigures } from './fold/hostFigures.js';
import { Scheduler, type TaskRecord } from './scheduler/scheduler.js';
import { HostKeyChecker } from './ssh/hostKeys.js';
import { shellJoin } from './ssh/quote.js';
import { endClient, type Client, type ConnectContext } from './ssh/connect.js';
import { DEFAULT_MAX_PIXELS, isComplete } from './transfer/complete.js';
import { DirectoryListings } from './transfer/listing.js';
import { finalLines } from './views/failures.js';
import { visible } from './text/visible.js';
import { writeHtmlReport } from './report/html.js';
import { fileErrorReason } from './fsutil/atomicWrite.js';
import type { RunModel } from './ui/model.js';
import type { LivePage } from './ui/server.js';
import { framePictures, modelOfPlan, pictureOf } from './ui/fromPlan.js';

export interface RunOptions {
  inventory: string;
  frames: string;
  exec: string;
  args: string[];
  ins?: string[];
  outs?: string[];
  retries?: number;
  /** Per attempt, e.g. "90s", "30m", "2h". */
  timeout?: string | undefined;
  /** How long renderers outlive a lost controller connection, waiting to be picked up (default 30s). */
  grace?: string | undefined;
  /** --stall: an attempt whose output and output files have not changed this long is stopped and retried, e.g. "5m". */
  stall?: string | undefined;
  tiles?: string | undefined;
  size?: string | undefined;
  stitch?: string | undefined;
  report?: string | undefined;
  /** --events: every event as a JSON line, to this file, or `-` for stdout. */
  events?: string | undefined;
  /** --junit: JUnit XML written when the run ends. */
  junit?: string | undefined;
  dryRun?: boolean;
  force?: boolean;
  /** With --stitch: keep the tile images after a frame is stitched. */
  keepTiles?: boolean;
  /** Copies of slow, hung or lost tasks on idle slots once the queue is empty (default on). */
  speculate?: boolean;
  /** "sequential" (default) or "preview". */
  order?: string | undefined;
  /** --hosts and --exclude: comma-separated host names of the inventory. */
  hosts?: string | undefined;
  exclude?: string | undefined;
  /** --chunk: "N" frames per task, or "auto"; and --chunk-target, how long an auto-sized task should take ("2m"). */
  chunk?: string | undefined;
  chunkTarget?: string | undefined;
  /** Where each attempt's output is kept; defaults to .distray/logs/<start time>. */
  logDir?: string | undefined;
  /** Run directories kept under .distray/logs (default 20, 0 keeps all); only without logDir. */
  keepLogs?: number | undefined;
  /** --max-pixels: an image output that declares more pixels is refused without being decoded (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number | undefined;
  /** ~/.ssh/config unless given (tests point it at their own). */
  sshConfig?: string | undefined;
  progress: Progress;
  /** Where --dry-run prints. */
  print?: (line: string) => void;
  /** --html FILE: the self-contained HTML report, written when the run ends, however it ends. */
  html?: string | undefined;
  /** --ui: the live page, opened by the caller (so its URL is known before the run starts); fed and controlled from here. */
  page?: LivePage | undefined;
  /** Aborting cancels the run: renderers are stopped, the report says `cancelled`. */
  signal?: AbortSignal | undefined;
}

const MAX_CONSECUTIVE_FAILURES = 3;

/** A stitched frame's canvas is width x height x up to 8 bytes: 2 GB at this many pixels (sharp's own default limit). */
export const MAX_STITCH_PIXELS = 16383 * 16383;

/** Renderers outlive a lost connection this long, so a controller that reconnects picks up their work. */
export const DEFAULT_GRACE_MS = 30_000;

function isFileOrDirectory(path: string): boolean {
  try {
    const info = statSync(path);
    return info.isFile() || info.isDirectory();
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A local file distray will create fails, only when it is written (after
 * the render), if a directory on its way is a file: found now instead.
 */
function refuseUnderFile(path: string, option: string, shown: string): void {
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    let kind: 'directory' | 'other' | undefined;
    try {
      kind = statSync(dir).isDirectory() ? 'directory' : 'other';
    } catch {
      kind = undefined;
    }
    if (kind === 'directory') return;
    if (kind === 'other')
      throw new UsageError(
        `${option} "${shown}": ${relative('.', dir) || dir} is a file, so nothing can be written under it`,
      );
    if (dirname(dir) === dir) return;
  }
}

/** A file distray writes (--report, --junit, --events): a name it can write, checked before anything connects. */
function checkOutputFile(path: string, option: string, what: string, example: string): void {
  const problem = entryProblem(path);
  if (problem !== undefined)
    throw new UsageError(`${option} "${path}" ${problem}; name ${what} to write, such as ${option} ${example}`);
  if (isDirectory(path))
    throw new UsageError(
      `${option} "${path}" is a directory; name ${what} to write, such as ${option} ${join(path, example)}`,
    );
  refuseUnderFile(path, option, path);
}

/** The shortest --stall: the host looks every eighth of it, and a renderer's start-up alone can be quiet for a second. */
export const MIN_STALL_MS = 1000;

function parseStall(text: string): number {
  const ms = parseDuration(text, '--stall');
  if (ms < MIN_STALL_MS) {
    throw new UsageError(
      `--stall "${text}" is too short: at least 1s (it is how long a renderer may go without output or a change to its outputs; minutes suit most renderers)`,
    );
  }
  return ms;
}

interface Prepared {
  hosts: HostConfig[];
  plan: Plan;
  size: Size | undefined;
  timeoutMs: number | undefined;
  stallMs: number | undefined;
  graceMs: number;
  retries: number;
  /** Indexes of plan.tasks in the order they are queued. */
  order: number[];
  chunk: ChunkSize | undefined;
  chunkTargetMs: number;
}

/** Everything that can be wrong with the command line or inventory, found before anything connects. */
export function prepare(opts: RunOptions, inventory?: HostConfig[] | Error): Prepared {
  const frames = parseFrameSpec(opts.frames);
  if (opts.logDir === '') throw new UsageError('--log-dir is empty; name a directory (it is created if missing)');
  if (opts.logDir !== undefined && existsSync(opts.logDir) && !isDirectory(opts.logDir)) {
    throw new UsageError(`--log-dir "${opts.logDir}" is a file; name a directory (it is created if missing)`);
  }
  if (opts.logDir !== undefined) refuseUnderFile(join(opts.logDir, 'log'), '--log-dir', opts.logDir);
  // Found now, not when the report is written after the whole render.
  if (opts.report !== undefined) checkOutputFile(opts.report, '--report', 'the JSON file', 'run.json');
  if (opts.junit !== undefined) checkOutputFile(opts.junit, '--junit', 'the XML file', 'junit.xml');
  if (opts.events !== undefined && opts.events !== '-')
    checkOutputFile(opts.events, '--events', 'the file (or - for stdout)', 'events.ndjson');
  const retries = opts.retries ?? 2;
  if (!Number.isSafeInteger(retries) || retries < 0)
    throw new UsageError(`--retries must be a whole number of at least 0`);
  if (opts.keepLogs !== undefined && (!Number.isInteger(opts.keepLogs) || opts.keepLogs < 0)) {
    throw new UsageError("--keep-logs must be a whole number of at least 0 (0 keeps every run's logs)");
  }
  if (opts.maxPixels !== undefined && (!Number.isSafeInteger(opts.maxPixels) || opts.maxPixels < 1)) {
    throw new UsageError(
      `--max-pixels must be a whole number of at least 1 (the default is ${DEFAULT_MAX_PIXELS}, 16383x16383)`,
    );
  }
  const timeoutMs = opts.timeout !== undefined ? parseDuration(opts.timeout) : undefined;
  const stallMs = opts.stall !== undefined ? parseStall(opts.stall) : undefined;
  if (opts.tiles && !opts.size) throw new UsageError('--tiles needs --size WxH, the full image size');
  if (opts.size && !opts.tiles) {
    throw new UsageError(
      '--size is distray\'s option and only means something with --tiles; if it is meant for the renderer, put the renderer\'s words after "--" (distray run INV FRAMES [options] -- EXEC ARGS...)',
    );
  }
  const tiles = opts.tiles ? { grid: parseGrid(opts.tiles), size: parseSize(opts.size!) } : undefined;
  if (tiles && opts.stitch !== undefined && tiles.size.width * tiles.size.height > MAX_STITCH_PIXELS) {
    throw new UsageError(
      `--size ${opts.size} is too large to --stitch: the stitcher holds a whole frame in memory (up to 8 bytes a pixel), ` +
        `and at most ${MAX_STITCH_PIXELS} pixels (such as 16383x16383) are allowed; render tiles without --stitch and assemble them with another tool`,
    );
  }
  // Like --report: found now, not after the render.
  if (opts.html !== undefined) {
    const problem = entryProblem(opts.html);
    if (problem !== undefined)
      throw new UsageError(`--html "${opts.html}" ${problem}; name the HTML file to write, such as --html run.html`);
    if (isDirectory(opts.html))
      throw new UsageError(
        `--html "${opts.html}" is a directory; name the HTML file to write, such as --html ${join(opts.html, 'run.html')}`,
      );
    refuseUnderFile(opts.html, '--html', opts.html);
  }
  const order = parseOrder(opts.order);
  const chunk = parseChunk(opts.chunk);
  if (opts.chunkTarget !== undefined && chunk !== 'auto')
    throw new UsageError('--chunk-target sizes chunks of --chunk auto; add --chunk auto, or drop --chunk-target');
  const chunkTargetMs =
    opts.chunkTarget !== undefined ? parseDuration(opts.chunkTarget, '--chunk-target') : DEFAULT_CHUNK_TARGET_MS;
  if (chunk !== undefined && order === 'preview') {
    throw new UsageError(
      '--order preview and --chunk: a chunk is consecutive frames, preview order spreads them apart; drop one of them',
    );
  }
  if (inventory instanceof Error) throw inventory;
  const hosts = selectHosts(
    inventory ?? loadInventory(opts.inventory, { sshConfigPath: opts.sshConfig }),
    opts.hosts,
    opts.exclude,
  );
  const plan = new Plan({
    frames,
    exec: opts.exec,
    args: opts.args,
    ins: opts.ins ?? [],
    outs: opts.outs ?? [],
    tiles,
    stitch: opts.stitch,
    hostNames: hosts.map((h) => h.name),
    chunk,
  });
  const busy = hosts.filter((h) => h.slots > 1);
  const shared = plan.sharedRemotePaths();
  if (busy.length > 0 && shared.length > 0) {
    throw new UsageError(
      `${shared[0]}: its remote path is the same for every task, but ${busy[0]!.name} runs ${busy[0]!.slots} tasks at once, which would write it at the same time; ` +
        `put the task's placeholders in the remote path too (such as %d${plan.tiled ? ' and %{tile}' : ''}), or use slots: 1`,
    );
  }
  // Where outputs land here: checked for the first task and each host (a million stats would cost more than they find).
  const first = plan.tasks[0];
  if (first) for (const path of plan.localOutputs(first)) refuseUnderFile(path, '--out', path);
  for (const h of hosts) for (const c of plan.hostOuts(h.name)) refuseUnderFile(c.local, '--out', c.local);
  const stitched = first && plan.stitchPath(first.frame);
  if (stitched !== undefined) refuseUnderFile(stitched, '--stitch', stitched);
  for (const input of plan.localInputs()) {
    if (!existsSync(input)) throw new UsageError(`--in ${input}: no such file or directory here`);
    // A FIFO (or a device) would be read for ever, by a thread that even exiting has to wait for.
    if (!isFileOrDirectory(input))
      throw new UsageError(
        `--in ${input} is not a regular file or a directory (a FIFO, a socket or a device); name the file or directory to send`,
      );
  }
  const graceMs = opts.grace !== undefined ? parseDuration(opts.grace, '--grace', true) : DEFAULT_GRACE_MS;
  return {
    hosts,
    plan,
    timeoutMs,
    stallMs,
    graceMs,
    retries,
    size: tiles?.size,
    order: taskOrder(plan.tasks, order),
    chunk,
    chunkTargetMs,
  };
}

function printDryRun(p: Prepared, print: (line: string) => void): void {
  const host = p.hosts[0]!.name;
  for (const c of p.plan.hostIns(host)) print(`once per host: copy ${c.local} -> <host>:${c.remote}`);
  // Chunks of auto are sized as the run measures its frames: shown as the first ones start, a frame each.
  if (p.chunk === 'auto')
    print('--chunk auto: chunks are sized as the run measures its frames; the first ones take a frame each, as shown');
  const n = p.chunk === 'auto' ? 1 : p.chunk;
  const frames = p.plan.tasks;
  // In the order they will start (--order preview spreads them; chunks are consecutive frames).
  const tasks =
    n === undefined
      ? p.order.map((i) => frames[i]!)
      : Array.from({ length: Math.ceil(frames.length / n) }, (_, i) =>
          p.plan.chunkTask(frames[i * n]!.frame, Math.min(n, frames.length - i * n), i),
        );
  for (const task of tasks) {
    print(`${task.label}: ${shellJoin(p.plan.argv(task, host))}`);
    for (const c of p.plan.taskIns(task, host)) print(`  in:  ${c.local} -> <host>:${c.remote}`);
    for (const c of p.plan.taskOuts(task, host)) print(`  out: <host>:${c.remote} -> ${c.local}`);
  }
  for (const h of p.hosts)
    for (const c of p.plan.hostOuts(h.name))
      print(`after ${h.name}'s last task: copy ${h.name}:${c.remote} -> ${c.local}`);
  const noOut = resultsStayNote(p.plan, p.hosts);
  if (noOut) print(noOut);
  print(
    `${plural(tasks.length, 'task')} on ${plural(p.hosts.length, 'host')} (${p.hosts.map((h) => `${h.name} x${h.slots}`).join(', ')})`,
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A run that brings nothing back (no --out, no --stitch) says so once: its renderers' results stay in each host's workdir. */
function resultsStayNote(plan: Plan, hosts: readonly HostConfig[]): string | undefined {
  if (plan.hasLocalOutputs || plan.stitching || hosts.some((h) => plan.hostOuts(h.name).length > 0)) return undefined;
  return "no --out given: what the renderers write stays on the hosts, in each one's workdir (add --out FILE to copy results back here)";
}

/** The whole pipeline: plan, connect, schedule, collect, report. Returns the summary; throws only for usage errors. */
export async function run(opts: RunOptions): Promise<RunSummary> {
  const startedAt = new Date();
  const clockOrigin = performance.now();
  // Read without blocking the event loop (Ctrl+C included); its errors come in prepare's order.
  const inventory = await loadInventoryAsync(opts.inventory, { sshConfigPath: opts.sshConfig }).catch((err: unknown) =>
    err instanceof Error ? err : new Error(String(err)),
  );
  const prepared = prepare(opts, inventory);
  const { hosts, plan } = prepared;
  if (opts.dryRun) {
    printDryRun(prepared, opts.print ?? ((l) => process.stdout.write(l + '\n')));
    return summarise({ tasks: [] }, [], { exitCode: 0, startedAt, seconds: 0, errors: [] });
  }

  // The run's events: per-host figures are kept from them, and --events writes them as they happen.
  let progressStopped = false;
  const log = new RunLog({
    events: opts.events,
    plan,
    hosts,
    startedAt,
    clockOrigin,
    signal: opts.signal,
    // A stream that breaks after the view has closed is still reported.
    note: (m) => (progressStopped ? void process.stderr.write(`distray: ${visible(m)}\n`) : opts.progress.note(m)),
  });

  const made = pathsMade(
    plan,
    hosts.map((h) => h.name),
  );
  await recordMade(hosts.map((h) => ({ host: h.name, workdir: h.workdir, paths: made.get(h.name) ?? [] })));
  let records = plan.tasks.map((t) => Scheduler.record(t));
  // Made once the complete tasks are marked (it queues every pending task); until then a stop is only noted.
  let scheduler: Scheduler | undefined;
  let stopped = false;
  /** This machine could not write a file of the run's (disk full or unwritable): the run stops, exit 4, no host blamed. */
  let localFault: LocalFault | undefined;
  const errors: string[] = [];
  const teardown = new Teardown();
  const onAbort = (): void => {
    stopped = true;
    scheduler?.cancel();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  teardown.add(() => opts.signal?.removeEventListener('abort', onAbort));
  if (opts.signal?.aborted) stopped = true;
  let toRun = 0;
  let stitcher: FrameStitcher | undefined;
  let model: RunModel | undefined;
  // An exception anywhere below still closes what was opened and writes the report.
  let crash: unknown;
  try {
    stitcher =
      plan.stitching && prepared.size
        ? new FrameStitcher(plan, records, prepared.size, {
            keepTiles: opts.keepTiles ?? false,
            note: (m) => opts.progress.note(m),
            signal: opts.signal,
            onFrame: log.frame,
          })
        : undefined;
    if (!opts.force) {
      await stitcher?.skipComplete();
      await markComplete(plan, records, opts.maxPixels);
    }
    if (plan.chunked) records = chunkRecords(plan, records);
    // The report's tasks are folded from the scheduler's events, from these on.
    log.tasks.begin(records);
    const skipped = records.filter((r) => r.status === 'skipped').length;
    toRun = records.length - skipped;
    const chunks =
      prepared.chunk === undefined
        ? undefined
        : new ChunkSizer(
            (first, count, index) => plan.chunkTask(first, count, index),
            prepared.chunk,
            prepared.chunkTargetMs,
          );
    scheduler = new Scheduler(records, {
      retries: prepared.retries,
      maxConsecutiveFailures: MAX_CONSECUTIVE_FAILURES,
      now: () => performance.now(),
      // A copy of a chunk racing it could not split it where it stopped: chunks are not copied.
      speculate: (opts.speculate ?? true) && !chunks,
      order: chunks ? undefined : prepared.order,
      chunks,
      // Never expected: a host state change the state machine has no move for (see hosts/state.ts).
      onRefusedMove: (host, from, to) =>
        opts.progress.note(`internal: host ${host}: ignored a change from ${from} to ${to} (please report this)`),
    });
    // Fed from the first event on: the live page and the HTML report show the same model.
    const sched = scheduler;
    // The run's fold first: every view after it reads it with the event already in.
    sched.on('event', log.scheduler);
    if (opts.html !== undefined || opts.page)
      model = watchRun(scheduler, plan, hosts, opts, {
        startedAt,
        clockOrigin,
        records,
        fold: log.tasks,
        figures: log.figures,
      });
    // Hosts are only brought in for tasks to run: a rerun with every task complete contacts none.
    if (toRun > 0) for (const h of hosts) sched.expectHost(h.name);
    if (stopped) sched.cancel();
    const logBase = join('.distray', 'logs');
    const logDir = resolve(opts.logDir ?? join(logBase, runLogName(startedAt)));
    if (opts.logDir === undefined) await pruneRunLogs(logBase, opts.keepLogs ?? DEFAULT_KEEP_LOGS);

    if (stitcher) {
      const s = stitcher;
      sched.on('task-end', (r) => {
        if (r.status === 'done') s.tileDone(r);
      });
      s.start();
      teardown.add(() => s.idle());
    }
    if (toRun > 0) {
      const noOut = resultsStayNote(plan, hosts);
      if (noOut) opts.progress.note(noOut);
      // The view counts frames (with --tiles tiles) as the run's fold has them, the report's tasks being folded first.
      opts.progress.attach(sched, { fold: log.tasks, figures: log.figures, unit: plan.tiled ? 'tiles' : 'frames' });
      teardown.add(async () => {
        await opts.progress.stop();
        progressStopped = true;
      });
      const jumps = new Map<string, Promise<Client>>();
      teardown.add(() => {
        for (const j of jumps.values()) j.then(endClient).catch(() => {});
      });
      const connectAbort = new AbortController();
      const ctx: ConnectContext = {
        hostKeys: new HostKeyChecker(),
        warn: (m) => opts.progress.note(m),
        jumps,
        signal: connectAbort.signal,
      };
      const lifecycle = new HostLifecycle(sched, plan, ctx, {
        plan,
        timeoutMs: prepared.timeoutMs,
        stallMs: prepared.stallMs,
        graceMs: prepared.graceMs,
        note: (m) => opts.progress.note(m),
        logDir,
        maxPixels: opts.maxPixels,
        verify: stitcher ? (task, host) => stitcher!.verifyTile(task, host) : undefined,
        onHostFiles: log.hostFiles,
        onLocalFault: (fault) => {
          localFault ??= fault;
          sched.cancel();
        },
      });
      teardown.add(() => Promise.all([...lifecycle.sessions.values()].map((s) => s.close())));
      teardown.add(async () => {
        connectAbort.abort();
        await lifecycle.stop();
      });
      lifecycle.start(hosts);
      // Hosts come and go with edits of the inventory file (or SIGHUP) until every task has ended.
      const live = new LiveInventory(hosts, {
        file: opts.inventory,
        sshConfig: opts.sshConfig,
        only: opts.hosts,
        exclude: opts.exclude,
        plan,
        lifecycle,
        note: (m) => opts.progress.note(m),
      });
      live.start();
      teardown.add(() => live.stop());
      await sched.finished;
      await live.stop();
      connectAbort.abort();
      await sched.drained();
      await lifecycle.stop();
      errors.push(...lifecycle.errors.splice(0));

      // Outputs that are not one task's come back once per host, after its last task (hosts that left did so as they left).
      for (const host of lifecycle.current()) {
        const session = lifecycle.sessions.get(host.name);
        const record = sched.hosts.get(host.name);
        if (!session || record?.state === 'lost' || sched.cancelled) continue;
        await lifecycle.collectHostOutputs(host.name, session, opts.signal);
      }
      errors.push(...lifecycle.errors.splice(0));
    }
  } catch (err) {
    crash = err;
    if (err instanceof LocalFault) localFault ??= err;
    scheduler?.cancel();
    // Tasks not yet queued when it failed (the scheduler cancelled those it had) are cancelled with the run.
    log.tasks.begin(records);
    log.tasks.cancelWaiting();
    if (!(err instanceof LocalFault)) errors.push(`internal error: ${errorMessage(err)}`);
  } finally {
    for (const err of await teardown.run()) errors.push(`while closing the run: ${errorMessage(err)}`);
  }
  if (localFault) errors.push(localFault.message);
  const cancelled = scheduler?.cancelled ?? stopped;
  // A host still usable at the end is done with the run, or was stopped with it.
  scheduler?.closeHosts(cancelled && !crash ? 'cancelled' : 'done');
  const everUsable = scheduler?.everReady ?? false;
  const tasks = log.tasks.list();
  const frames = stitcher?.records();
  const statusOf = (local: boolean): number =>
    crash
      ? exitCode({ kind: 'error', error: crash })
      : exitCode({
          kind: 'run',
          localFault: local,
          interrupted: cancelled,
          noHostUsable: toRun > 0 && !everUsable,
          failed:
            tasks.tasks.some((t) => t.status === 'failed') ||
            errors.length > 0 ||
            frames?.some((f) => f.status === 'failed') === true,
        });
  const status = statusOf(localFault !== undefined);
  // The report's tasks and hosts are made from the run's events (closeHosts above sent the last), as a live view or the event stream's reader sees them.
  const hostFigures = log.figures.figures();
  const summary = summarise(tasks, hostFigures.hosts, {
    exitCode: status,
    startedAt,
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    errors,
    clockOrigin,
    figures: hostFigures,
  });
  // A file asked for that this machine cannot write is a local failure (exit 4); the files written after it say so too.
  const endFile = (written: boolean): void => {
    if (written) return;
    summary.exitCode = statusOf(true);
    summary.ok = summary.exitCode === 0;
  };
  if (model) endFile(await showEnd(model, summary, plan, opts, records));
  if (frames) summary.frames = frames;
  await log.finish(summary);
  if (opts.report) endFile(await writeEndFile('--report', opts.report, (p) => writeReport(p, summary)));
  if (opts.junit) endFile(await writeEndFile('--junit', opts.junit, (p) => writeJunit(p, summary)));
  if (crash)
    throw Object.assign(crash instanceof Error ? crash : new Error(errorMessage(crash)), {
      reportWritten: true,
      summary,
    });
  return summary;
}

/** The model the live page and the HTML report show, fed by the scheduler's events; the page is given it and the run's controls. */
function watchRun(
  sched: Scheduler,
  plan: Plan,
  hosts: readonly HostConfig[],
  opts: RunOptions,
  run: { startedAt: Date; clockOrigin: number; records: readonly TaskRecord[]; fold: TaskFold; figures: HostFigures },
): RunModel {
  const title = `${opts.exec} frames ${opts.frames} on ${hosts.length} host${hosts.length === 1 ? '' : 's'}`;
  const model = modelOfPlan(plan, hosts, { ...run, title, now: () => performance.now() });
  sched.on('event', (e) => model.apply(e));
  opts.page?.attach(model, { image: (i) => pictureOf(plan, i, run.records), retry: (i) => sched.retry(i) });
  return model;
}

/** The run's end on the page (its summary, the hosts' final states), and the HTML report. */
async function showEnd(
  model: RunModel,
  summary: RunSummary,
  plan: Plan,
  opts: RunOptions,
  records: readonly TaskRecord[],
): Promise<boolean> {
  for (const h of summary.hosts) model.hostEnded(h.name, h.state, h.message);
  model.ended({ exitCode: summary.exitCode, lines: finalLines(summary) });
  opts.page?.flush();
  if (opts.html === undefined) return true;
  return writeEndFile('--html', opts.html, (p) =>
    writeHtmlReport(
      p,
      model.snapshot(),
      (i) => pictureOf(plan, i, records),
      plan.chunked ? framePictures(plan) : undefined,
    ),
  );
}

const END_FILES = { '--report': 'JSON report', '--junit': 'JUnit file', '--html': 'HTML report' } as const;

/**
 * Writes a file asked for at the end of a run (--report, --junit, --html).
 * One that cannot be written is said in one line on stderr, naming the file
 * and why; the render's own result still decides the exit status, and its
 * summary is still printed. False if it could not be written.
 */
export async function writeEndFile(
  option: keyof typeof END_FILES,
  path: string,
  write: (path: string) => Promise<void>,
  outcome = 'the render itself is not affected (its summary follows), but distray exits 4 for the file missing',
): Promise<boolean> {
  try {
    await write(path);
    return true;
  } catch (err) {
    process.stderr.write(
      `distray: cannot write the ${END_FILES[option]} ${path}: ${fileErrorReason(err)}; ${outcome}; give ${option} a path you can write to\n`,
    );
    return false;
  }
}

/**
 * With --chunk: the frames' records as runs of frames complete and not, one
 * record each (a first run is one chunk of every frame). A slot takes the
 * first part of a queued run as it takes it (see Chunks), so a rerun
 * re-chunks the frames missing, each run from its own first frame.
 */
export function chunkRecords(plan: Plan, frames: readonly TaskRecord[]): TaskRecord[] {
  const records: TaskRecord[] = [];
  let i = 0;
  while (i < frames.length) {
    const status = frames[i]!.status;
    let j = i + 1;
    while (j < frames.length && frames[j]!.status === status) j++;
    const r = Scheduler.record(plan.chunkTask(frames[i]!.task.frame, j - i, records.length));
    r.status = status;
    records.push(r);
    i = j;
  }
  return records;
}

/**
 * Tasks whose local outputs are already complete are not rendered again.
 * Each output directory is listed once: a file that is not there needs no
 * stat, so a first run of a million tasks costs a few listings, not a
 * million system calls. Eight checks at a time, pulled from one cursor
 * rather than a queue of a million closures.
 */
export async function markComplete(
  plan: Plan,
  records: readonly TaskRecord[],
  maxPixels = DEFAULT_MAX_PIXELS,
): Promise<void> {
  if (!plan.hasLocalOutputs) return;
  const listings = new DirectoryListings();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < records.length) {
      const r = records[next++]!;
      if (r.status !== 'pending') continue;
      const outputs = plan.localOutputs(r.task);
      let present = true;
      for (const o of outputs) if (!(await listings.has(o))) present = false;
      if (!present) continue;
      const complete = await Promise.all(outputs.map((o) => isComplete(o, maxPixels)));
      if (complete.every(Boolean)) r.status = 'skipped';
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}
