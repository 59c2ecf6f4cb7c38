import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathsMade, recordMade } from './clean/manifest.js';
import { LocalFault, UsageError, errorMessage } from './errors.js';
import { exitCode } from './outcome.js';
import { Teardown } from './teardown.js';
export { parseDuration, MAX_TIMER_MS as MAX_DURATION_MS } from './text/duration.js';
import { formatFrames, validateRunConfig, type RunConfig } from './config.js';
import { HostLifecycle } from './execute/hostLifecycle.js';
import { LiveInventory } from './execute/liveInventory.js';
import { loadInventory, loadInventoryAsync } from './inventory/load.js';
import { selectHosts } from './inventory/select.js';
import type { HostConfig } from './inventory/types.js';
import { entryProblem } from './plan/paths.js';
import { taskOrder } from './plan/order.js';
import { Plan } from './plan/plan.js';
import { sharedRemotePathProblem } from './plan/sharedRemotePaths.js';
import { ChunkSizer } from './plan/chunkSizer.js';
import { FrameStitcher } from './stitch/frames.js';
import { pruneRunLogs, runLogName } from './report/logs.js';
import type { Progress } from './views/progress.js';
import { summarise } from './fold/summary.js';
import { writeReport } from './report/json.js';
import type { RunSummary } from './fold/types.js';
import type { StreamEvent } from './fold/runEvents.js';
import { writeJunit } from './report/junit.js';
import { RunLog } from './report/runLog.js';
import type { TaskFold } from './fold/taskFold.js';
import type { HostFigures } from './fold/hostFigures.js';
import { Scheduler, type TaskRecord } from './scheduler/scheduler.js';
import { MAX_CONSECUTIVE_FAILURES } from './tuning.js';
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

/** How a run reports and is controlled, beside what it is asked to do (RunConfig). */
export interface RunOptions {
  /** The view the run's events are shown in; none (a silent one) when not given. */
  progress?: Progress | undefined;
  /** Where --dry-run prints; stdout when not given. */
  print?: ((line: string) => void) | undefined;
  /** --ui: the live page, opened by the caller (so its URL is known before the run starts); fed and controlled from here. */
  page?: LivePage | undefined;
  /** Every event of the run as it happens, the same as --events writes (without its `v`), run-end with the summary last. */
  onEvent?: ((event: StreamEvent) => void) | undefined;
  /** Aborting cancels the run: renderers are stopped, the report says `cancelled`. */
  signal?: AbortSignal | undefined;
}

/** A view that shows nothing: a program that runs distray reads its events or its summary instead. */
const SILENT: Progress = { attach: () => {}, note: () => {}, stop: () => Promise.resolve() };

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

/** A file distray writes (--report, --junit, --events, --html): a name it can write, checked before anything connects. */
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

interface Prepared {
  config: RunConfig;
  hosts: HostConfig[];
  plan: Plan;
  /** Indexes of plan.tasks in the order they are queued. */
  order: number[];
}

/**
 * Everything that can be wrong with the configuration, the inventory or the
 * local files it names, found before anything connects. The configuration
 * is validated again: a program may have built it without runConfig().
 */
export function prepare(config: RunConfig, inventory?: HostConfig[] | Error): Prepared {
  validateRunConfig(config);
  const { logDir, report, junit, events, html } = config;
  if (logDir !== undefined && existsSync(logDir) && !isDirectory(logDir)) {
    throw new UsageError(`--log-dir "${logDir}" is a file; name a directory (it is created if missing)`);
  }
  if (logDir !== undefined) refuseUnderFile(join(logDir, 'log'), '--log-dir', logDir);
  // Found now, not when the report is written after the whole render.
  if (report !== undefined) checkOutputFile(report, '--report', 'the JSON file', 'run.json');
  if (junit !== undefined) checkOutputFile(junit, '--junit', 'the XML file', 'junit.xml');
  if (events !== undefined && events !== '-')
    checkOutputFile(events, '--events', 'the file (or - for stdout)', 'events.ndjson');
  // Like --report: found now, not after the render.
  if (html !== undefined) checkOutputFile(html, '--html', 'the HTML file', 'run.html');
  if (inventory instanceof Error) throw inventory;
  const hosts = selectHosts(
    inventory ?? loadInventory(config.inventory, { sshConfigPath: config.sshConfig }),
    config.hosts,
    config.exclude,
  );
  const plan = new Plan({
    frames: config.frames,
    exec: config.exec,
    args: [...config.args],
    ins: [...config.ins],
    outs: [...config.outs],
    tiles: config.tiles,
    stitch: config.stitch,
    hostNames: hosts.map((h) => h.name),
    chunk: config.chunk,
  });
  const sharedProblem = sharedRemotePathProblem(plan, hosts);
  if (sharedProblem !== undefined) throw new UsageError(sharedProblem);
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
  return { config, hosts, plan, order: taskOrder(plan.tasks, config.order) };
}

function printDryRun(p: Prepared, print: (line: string) => void): void {
  const host = p.hosts[0]!.name;
  for (const c of p.plan.hostIns(host)) print(`once per host: copy ${c.local} -> <host>:${c.remote}`);
  // Chunks of auto are sized as the run measures its frames: shown as the first ones start, a frame each.
  if (p.config.chunk === 'auto')
    print('--chunk auto: chunks are sized as the run measures its frames; the first ones take a frame each, as shown');
  const n = p.config.chunk === 'auto' ? 1 : p.config.chunk;
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

/**
 * A run that failed part-way through (an exception, not a failed task): it
 * still closed what it opened and wrote its report, JUnit file and event
 * stream from `summary`, which the CLI uses for what is left to do (the
 * --on-end command). `cause` is what failed; the message is its message.
 *
 * Here rather than in errors.ts beside the other error classes: the leaves
 * of src/ import nothing, and the summary's type belongs to fold/.
 */
export class RunCrashError extends Error {
  readonly summary: RunSummary;
  constructor(cause: unknown, summary: RunSummary) {
    super(errorMessage(cause), { cause });
    this.name = 'RunCrashError';
    this.summary = summary;
  }
}

/** The whole pipeline: plan, connect, schedule, collect, report. Returns the summary; throws only for usage errors. */
export async function run(config: RunConfig, options: RunOptions = {}): Promise<RunSummary> {
  const progress = options.progress ?? SILENT;
  const { signal } = options;
  const startedAt = new Date();
  const clockOrigin = performance.now();
  // Read without blocking the event loop (Ctrl+C included); its errors come in prepare's order.
  const inventory = await loadInventoryAsync(config.inventory, { sshConfigPath: config.sshConfig }).catch(
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  const prepared = prepare(config, inventory);
  const { hosts, plan } = prepared;
  if (config.dryRun) {
    printDryRun(prepared, options.print ?? ((l) => process.stdout.write(l + '\n')));
    return summarise({ tasks: [] }, [], { exitCode: 0, startedAt, seconds: 0, errors: [] });
  }

  // The run's events: per-host figures are kept from them, and --events writes them as they happen.
  let progressStopped = false;
  const log = new RunLog({
    events: config.events,
    onEvent: options.onEvent,
    plan,
    hosts,
    startedAt,
    clockOrigin,
    signal: signal,
    // A stream that breaks after the view has closed is still reported.
    note: (m) => (progressStopped ? void process.stderr.write(`distray: ${visible(m)}\n`) : progress.note(m)),
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
  signal?.addEventListener('abort', onAbort, { once: true });
  teardown.add(() => signal?.removeEventListener('abort', onAbort));
  if (signal?.aborted) stopped = true;
  let toRun = 0;
  let stitcher: FrameStitcher | undefined;
  let model: RunModel | undefined;
  // An exception anywhere below still closes what was opened and writes the report.
  let crash: unknown;
  try {
    stitcher =
      plan.stitching && config.tiles
        ? new FrameStitcher(plan, records, config.tiles.size, {
            keepTiles: config.keepTiles,
            note: (m) => progress.note(m),
            signal: signal,
            onFrame: log.frame,
          })
        : undefined;
    if (!config.force) {
      await stitcher?.skipComplete();
      await markComplete(plan, records, config.maxPixels);
    }
    if (plan.chunked) records = chunkRecords(plan, records);
    // The report's tasks are folded from the scheduler's events, from these on.
    log.tasks.begin(records);
    const skipped = records.filter((r) => r.status === 'skipped').length;
    toRun = records.length - skipped;
    const chunks =
      config.chunk === undefined
        ? undefined
        : new ChunkSizer(
            (first, count, index) => plan.chunkTask(first, count, index),
            config.chunk,
            config.chunkTargetMs,
          );
    scheduler = new Scheduler(records, {
      retries: config.retries,
      maxConsecutiveFailures: MAX_CONSECUTIVE_FAILURES,
      now: () => performance.now(),
      // A copy of a chunk racing it could not split it where it stopped: chunks are not copied.
      speculate: config.speculate && !chunks,
      order: chunks ? undefined : prepared.order,
      chunks,
      // Never expected: a host state change the state machine has no move for (see scheduler/hostStates.ts).
      onRefusedMove: (host, from, to) =>
        progress.note(`internal: host ${host}: ignored a change from ${from} to ${to} (please report this)`),
    });
    // Fed from the first event on: the live page and the HTML report show the same model.
    const sched = scheduler;
    // The run's fold first: every view after it reads it with the event already in.
    sched.on('event', log.scheduler);
    if (config.html !== undefined || options.page)
      model = watchRun(scheduler, plan, hosts, config, options, {
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
    const logDir = resolve(config.logDir ?? join(logBase, runLogName(startedAt)));
    if (config.logDir === undefined) await pruneRunLogs(logBase, config.keepLogs);

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
      if (noOut) progress.note(noOut);
      // The view counts frames (with --tiles tiles) as the run's fold has them, the report's tasks being folded first.
      progress.attach(sched, { fold: log.tasks, figures: log.figures, unit: plan.tiled ? 'tiles' : 'frames' });
      teardown.add(async () => {
        await progress.stop();
        progressStopped = true;
      });
      const jumps = new Map<string, Promise<Client>>();
      teardown.add(() => {
        for (const j of jumps.values()) j.then(endClient).catch(() => {});
      });
      const connectAbort = new AbortController();
      const ctx: ConnectContext = {
        hostKeys: new HostKeyChecker(),
        warn: (m) => progress.note(m),
        jumps,
        signal: connectAbort.signal,
      };
      const lifecycle = new HostLifecycle(sched, plan, ctx, {
        plan,
        timeoutMs: config.timeoutMs,
        stallMs: config.stallMs,
        graceMs: config.graceMs,
        note: (m) => progress.note(m),
        logDir,
        maxPixels: config.maxPixels,
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
        file: config.inventory,
        sshConfig: config.sshConfig,
        only: config.hosts,
        exclude: config.exclude,
        plan,
        lifecycle,
        note: (m) => progress.note(m),
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
        await lifecycle.collectHostOutputs(host.name, session, signal);
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
  if (model) endFile(await showEnd(model, summary, plan, { ...options, html: config.html }, records));
  if (frames) summary.frames = frames;
  await log.finish(summary);
  if (config.report) endFile(await writeEndFile('--report', config.report, (p) => writeReport(p, summary)));
  if (config.junit) endFile(await writeEndFile('--junit', config.junit, (p) => writeJunit(p, summary)));
  if (crash) throw new RunCrashError(crash, summary);
  return summary;
}

/** The model the live page and the HTML report show, fed by the scheduler's events; the page is given it and the run's controls. */
function watchRun(
  sched: Scheduler,
  plan: Plan,
  hosts: readonly HostConfig[],
  config: RunConfig,
  options: RunOptions,
  run: { startedAt: Date; clockOrigin: number; records: readonly TaskRecord[]; fold: TaskFold; figures: HostFigures },
): RunModel {
  const title = `${config.exec} frames ${formatFrames(config.frames)} on ${hosts.length} host${hosts.length === 1 ? '' : 's'}`;
  const model = modelOfPlan(plan, hosts, { ...run, title, now: () => performance.now() });
  sched.on('event', (e) => model.apply(e));
  options.page?.attach(model, { image: (i) => pictureOf(plan, i, run.records), retry: (i) => sched.retry(i) });
  return model;
}

/** The run's end on the page (its summary, the hosts' final states), and the HTML report. */
async function showEnd(
  model: RunModel,
  summary: RunSummary,
  plan: Plan,
  options: RunOptions & { html: string | undefined },
  records: readonly TaskRecord[],
): Promise<boolean> {
  for (const h of summary.hosts) model.hostEnded(h.name, h.state, h.message);
  model.ended({ exitCode: summary.exitCode, lines: finalLines(summary) });
  options.page?.flush();
  if (options.html === undefined) return true;
  return writeEndFile('--html', options.html, (p) =>
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
