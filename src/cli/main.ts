#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { DistrayError, UsageError, errorMessage } from '../errors.js';
import { PlainProgress, QuietProgress, TerminalProgress } from '../views/progress.js';
import { chooseView } from '../views/view.js';
import { finalLines } from '../views/failures.js';
import { writeReport } from '../report/json.js';
import type { RunSummary } from '../fold/types.js';
import { writeJunit } from '../report/junit.js';
import { runOnEnd } from '../report/onEnd.js';
import { entryProblem } from '../plan/paths.js';
import { check, formatCheck } from '../check.js';
import { RunCrashError, run, writeEndFile } from '../run.js';
import { parseArgv, type ParsedArgv } from './argv.js';
import { parseRunArgs } from './runArgs.js';
import { exitCodeFor } from './exitCode.js';
import { EXIT } from '../outcome.js';
import { removePartialsNow } from '../transfer/copies.js';
import { stdoutGivenUp } from '../report/eventStream.js';
import { checkHelp, cleanHelp, completionHelp, mainHelp, runHelp } from './help.js';
import { clean, formatClean } from '../clean/clean.js';
import { misspeltOptionWarnings } from './suggest.js';
import { CHECK, CLEAN, COMMANDS, COMPLETION, RUN, type CommandSpec, type OptionTable } from './options.js';
import { LivePage } from '../ui/server.js';
import { writeErrorHtml } from '../report/htmlError.js';
import { completionScript } from './completion.js';
import { visible } from '../text/visible.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Every line of a message gets the prefix: a multi-line inventory error reads as distray's throughout. */
function printError(message: string): void {
  for (const line of message.split('\n')) process.stderr.write(`distray: ${visible(line)}\n`);
}

type RunArgv = ParsedArgv<typeof RUN.options>;

function stringOption(o: RunArgv['options'], name: keyof RunArgv['options']): string | undefined {
  const v = o[name];
  return typeof v === 'string' ? v : undefined;
}

function listOption(o: RunArgv['options'], name: keyof RunArgv['options']): string[] {
  const v = o[name];
  return Array.isArray(v) ? v : [];
}

/**
 * The signals bin/distray.cjs caught while distray loaded (its handler is
 * removed here, so from now on distray's own, or Node's default, applies).
 */
function takeEarlySignals(): string[] {
  const take = (globalThis as { __distrayEarlySignals?: () => string[] }).__distrayEarlySignals;
  return take ? take() : [];
}

/**
 * Once the run is stopped, how long it has to end (renderers stopped, report
 * written) before distray exits anyway: every wait after a stop is bounded
 * well below this (a silent host's, the event stream's reader's), so this
 * only guards against one that is not. Not even process.exit ends a process
 * one of whose threads is blocked opening or reading a FIFO (Node waits for
 * its threads as it exits): local files are checked before they are opened
 * for that (see readRegularFile, EventStream, prepare's --in check).
 */
const STOP_DEADLINE_MS = 20_000;

/**
 * SIGINT/SIGTERM: the first stops the run gracefully (renderers stopped,
 * report written, exit 130); a second exits at once.
 */
function interruptController(): { signal: AbortSignal; dispose(): void; stop(from: string): void } {
  const controller = new AbortController();
  let deadline: NodeJS.Timeout | undefined;
  const exitNow = (why: string): never => {
    process.stderr.write(`\ndistray: ${why}, exiting now\n`);
    // No half-written download may stay behind, even now.
    removePartialsNow();
    process.exit(EXIT.interrupted);
  };
  const stop = (from: string): void => {
    if (controller.signal.aborted) return;
    process.stderr.write(
      `\ndistray: stopping${from}: renderers are being stopped (press Ctrl+C again to exit at once)\n`,
    );
    controller.abort();
    deadline = setTimeout(
      () => exitNow(`the run did not end within ${STOP_DEADLINE_MS / 1000} s of being stopped`),
      STOP_DEADLINE_MS,
    );
    deadline.unref();
  };
  const onSignal = (): void => {
    if (controller.signal.aborted) exitNow('interrupted again');
    stop('');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // One that came while distray loaded counts as if it came now.
  for (let n = takeEarlySignals().length; n > 0; n--) onSignal();
  return {
    signal: controller.signal,
    stop,
    dispose: () => {
      clearTimeout(deadline);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Files written when the run ends and the command run then, however it ended. */
interface EndActions {
  report?: string | undefined;
  html?: string | undefined;
  junit?: string | undefined;
  onEnd?: string | undefined;
}

/**
 * Runs --on-end's command; its failure is reported and changes nothing else.
 * The run is over: from here a Ctrl+C (or SIGTERM) stops the command, no longer the run.
 */
async function onEnd(command: string | undefined, summary: RunSummary, runSignals: { dispose(): void }): Promise<void> {
  if (command === undefined) return;
  runSignals.dispose();
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const problem = await runOnEnd(command, summary, { signal: stop.signal });
    if (problem !== undefined) printError(problem);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Prints why the run could not go, writes the report (and JUnit file) if asked for, runs --on-end, and returns the exit status. */
async function runFailed(thrown: unknown, end: EndActions, runSignals: { dispose(): void }): Promise<number> {
  // A run that crashed part-way has its summary (it wrote the report and JUnit file from it already).
  const crashed = thrown instanceof RunCrashError ? thrown : undefined;
  const err = crashed ? crashed.cause : thrown;
  const code = exitCodeFor(err);
  printError(errorMessage(err));
  if (!(err instanceof DistrayError)) process.stderr.write(`${err instanceof Error ? (err.stack ?? '') : ''}\n`);
  const summary: RunSummary = crashed?.summary ?? {
    ok: false,
    exitCode: code,
    startedAt: new Date().toISOString(),
    seconds: 0,
    tasks: [],
    hosts: [],
    errors: [errorMessage(err)],
  };
  // Not where the file itself is what is wrong (a directory, a name ending in "/", what the error is about), nor where the run wrote it already.
  const written = crashed !== undefined;
  const writable = (option: string, path: string | undefined): path is string =>
    path !== undefined &&
    path !== '' &&
    !written &&
    entryProblem(path) === undefined &&
    !errorMessage(err).startsWith(`${option} "`);
  const outcome = 'the run itself failed as said above';
  if (writable('--report', end.report))
    await writeEndFile('--report', end.report, (p) => writeReport(p, summary), outcome);
  if (writable('--junit', end.junit)) await writeEndFile('--junit', end.junit, (p) => writeJunit(p, summary), outcome);
  if (writable('--html', end.html))
    await writeEndFile('--html', end.html, (p) => writeErrorHtml(p, errorMessage(err), code), outcome);
  await onEnd(end.onEnd, summary, runSignals);
  return code;
}

async function runCommand(words: string[]): Promise<number> {
  // First of all: from here on a Ctrl+C stops the run cleanly and writes its report.
  const interrupt = interruptController();
  let argv: RunArgv;
  try {
    argv = parseArgv(words, RUN);
  } catch (err) {
    interrupt.dispose();
    // A malformed command line (an option twice, a missing value) is a usage error like any other.
    return runFailed(err, {}, interrupt);
  }
  if (argv.help) {
    interrupt.dispose();
    process.stdout.write(runHelp() + '\n');
    return 0;
  }
  for (const w of misspeltOptionWarnings(words)) process.stderr.write(`distray: warning: ${w}\n`);
  const [inventory, frames, exec, ...args] = argv.positionals;
  const o = argv.options;
  const html = stringOption(o, 'html');
  let page: LivePage | undefined;
  const report = stringOption(o, 'report');
  const end: EndActions = { report, html, junit: stringOption(o, 'junit'), onEnd: stringOption(o, 'on-end') };
  const events = stringOption(o, 'events');
  try {
    if (inventory === undefined || frames === undefined || exec === undefined) {
      throw new UsageError(`expected ${RUN.usage} (distray run --help for more)`);
    }
    const config = parseRunArgs({
      inventory,
      frames,
      exec,
      args,
      ins: listOption(o, 'in'),
      outs: listOption(o, 'out'),
      retries: stringOption(o, 'retries'),
      timeout: stringOption(o, 'timeout'),
      grace: stringOption(o, 'grace'),
      stall: stringOption(o, 'stall'),
      tiles: stringOption(o, 'tiles'),
      size: stringOption(o, 'size'),
      tileAlign: stringOption(o, 'tile-align'),
      stitch: stringOption(o, 'stitch'),
      html,
      report,
      junit: end.junit,
      events,
      logDir: stringOption(o, 'log-dir'),
      keepLogs: stringOption(o, 'keep-logs'),
      maxPixels: stringOption(o, 'max-pixels'),
      sshConfig: stringOption(o, 'ssh-config'),
      dryRun: o['dry-run'] === true,
      force: o.force === true,
      keepTiles: o['keep-tiles'] === true,
      speculate: o['no-speculate'] !== true,
      order: stringOption(o, 'order'),
      hosts: stringOption(o, 'hosts'),
      exclude: stringOption(o, 'exclude'),
      chunk: stringOption(o, 'chunk'),
      chunkTarget: stringOption(o, 'chunk-target'),
    });
    page = await openPage(o, (from) => interrupt.stop(from));
    const view = chooseView({
      plain: o.plain === true,
      quiet: o.quiet === true,
      isTTY: process.stderr.isTTY,
      env: process.env,
    });
    const write = (l: string): void => void process.stderr.write(visible(l) + '\n');
    const summary = await run(config, {
      page,
      // With the events on stdout, the live view draws on stderr alone.
      progress:
        view === 'quiet'
          ? new QuietProgress(write)
          : view === 'plain'
            ? new PlainProgress(write)
            : new TerminalProgress({ stderrOnly: events === '-' || !process.stdout.isTTY }),
      signal: interrupt.signal,
    });
    // One entry per line of the summary; a renderer's output tail stays as it printed it, below its entry.
    if (!o['dry-run']) {
      // --quiet keeps to the counts and the failures.
      for (const entry of finalLines(summary, { figures: view !== 'quiet' }))
        process.stderr.write(`distray: ${visible(entry)}\n`);
      await onEnd(end.onEnd, summary, interrupt);
    }
    if (page && o['ui-keep'] === true) {
      interrupt.dispose();
      process.stderr.write(`distray: the page stays up at ${page.url} until Ctrl+C\n`);
      await nextSignal();
    }
    return summary.exitCode;
  } catch (err) {
    return runFailed(err, end, interrupt);
  } finally {
    interrupt.dispose();
    await page?.close();
  }
}

/** --ui, --ui-host, --ui-keep: the live page, listening before the run starts, its URL printed; or none. */
async function openPage(o: RunArgv['options'], stop: (from: string) => void): Promise<LivePage | undefined> {
  const ui = o.ui;
  if (ui === undefined) {
    for (const name of ['ui-host', 'ui-keep'] as const)
      if (o[name] !== undefined)
        throw new UsageError(`--${name} only means something with --ui; add --ui (or --ui=PORT)`);
    return undefined;
  }
  let port = 0;
  if (typeof ui === 'string') {
    if (!/^\d+$/.test(ui) || Number(ui) < 1 || Number(ui) > 65535)
      throw new UsageError(`--ui=${ui}: expected a port number from 1 to 65535 (or --ui alone for any free port)`);
    port = Number(ui);
  }
  const host = stringOption(o, 'ui-host') ?? '127.0.0.1';
  const page = await LivePage.open({ port, host, stop: () => stop(' (asked from the live page)') });
  for (const w of page.warnings) process.stderr.write(`distray: warning: ${w}\n`);
  process.stderr.write(`distray: live page: ${page.url}\n`);
  return page;
}

/** Resolves at the next SIGINT or SIGTERM (distray's own handlers are gone by then). */
function nextSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/** One string option's value, if given. */
function valueOf(v: string | string[] | true | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** What check and clean print: warnings on stderr, their rows on stdout, and their exit status. */
interface HostsResult {
  warnings: readonly string[];
  output: string;
  exitCode: number;
}

/**
 * check and clean: every word checked against the command's table before
 * anything connects (a misspelt --dry-run never cleans), then one inventory,
 * acted on.
 */
async function inventoryCommand<Table extends OptionTable>(
  words: readonly string[],
  command: CommandSpec<Table>,
  help: () => string,
  act: (inventory: string, options: ParsedArgv<Table>['options']) => Promise<HostsResult>,
): Promise<number> {
  const argv = parseArgv(words, command);
  if (argv.help) {
    process.stdout.write(help() + '\n');
    return 0;
  }
  if (argv.positionals.length === 0)
    throw new UsageError(`no inventory given: expected ${command.usage} (distray ${command.name} --help for more)`);
  if (argv.positionals.length !== 1) throw new UsageError(`expected ${command.usage}: one inventory`);
  const result = await act(argv.positionals[0]!, argv.options);
  for (const w of result.warnings) process.stderr.write(`distray: ${visible(w)}\n`);
  process.stdout.write(result.output + '\n');
  return result.exitCode;
}

const checkCommand = (words: readonly string[]): Promise<number> =>
  inventoryCommand(words, CHECK, checkHelp, async (inventory, o) => {
    const exec = valueOf(o.exec);
    const result = await check({ inventory, exec, sshConfig: valueOf(o['ssh-config']) });
    const output = o.json ? JSON.stringify(result.rows, null, 2) : visible(formatCheck(result.rows, exec));
    return { ...result, output };
  });

const cleanCommand = (words: readonly string[]): Promise<number> =>
  inventoryCommand(words, CLEAN, cleanHelp, async (inventory, o) => {
    const dryRun = o['dry-run'] === true;
    const result = await clean({ inventory, dryRun, sshConfig: valueOf(o['ssh-config']) });
    return { ...result, output: visible(formatClean(result.rows, dryRun)) };
  });

function completionCommand(words: readonly string[]): number {
  const argv = parseArgv(words, COMPLETION);
  if (argv.help) {
    process.stdout.write(completionHelp() + '\n');
    return 0;
  }
  if (argv.positionals.length > 1) throw new UsageError('expected distray completion bash|zsh|fish: one shell');
  process.stdout.write(completionScript(argv.positionals[0]));
  return 0;
}

/** distray/0.1.0 linux-x64 node-v20.12.2: the version, and where it runs, for a bug report. */
const versionLine = (): string => `distray/${pkg.version} ${process.platform}-${process.arch} node-${process.version}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'run') return runCommand(rest);
  // Other commands stop at once on a signal, as Node does by default.
  if (takeEarlySignals().length > 0) return EXIT.interrupted;
  try {
    if (command === 'check') return await checkCommand(rest);
    if (command === 'clean') return await cleanCommand(rest);
    if (command === 'completion') return completionCommand(rest);
    if (command === '--version' || command === '-v') {
      process.stdout.write(versionLine() + '\n');
      return 0;
    }
    if (command === '--help' || command === '-h') {
      process.stdout.write(mainHelp(pkg.version, COMMANDS) + '\n');
      return 0;
    }
    throw new UsageError(`${command ? `unknown command "${command}"` : 'no command given'}; try distray --help`);
  } catch (err) {
    printError(errorMessage(err));
    return exitCodeFor(err);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Events left in stdout's pipe for a reader that does not read would keep the process alive for as long.
    if (stdoutGivenUp()) process.exit(code);
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `distray: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = exitCodeFor(err);
  },
);
