#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { cac } from 'cac';
import { DistrayError, UsageError, errorMessage } from '../errors.js';
import { PlainProgress, TerminalProgress } from '../report/progress.js';
import { writeReport } from '../report/summary.js';
import { check, formatCheck } from '../check.js';
import { run } from '../run.js';
import { RUN_OPTIONS, splitRunArgv, type RunArgv } from './argv.js';
import { exitCodeFor } from './exitCode.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const RUN_USAGE = 'distray run <inventory> <frames> <exec> [args...] [options]';

function runHelp(): string {
  const rows = Object.entries(RUN_OPTIONS).map(([name, spec]) => {
    const flag = `--${name}${spec.value ? ' <value>' : ''}`;
    return `  ${flag.padEnd(22)} ${spec.help}`;
  });
  return [
    `Usage: ${RUN_USAGE}`,
    '',
    'Runs <exec> [args...] once per frame on the hosts of <inventory>.',
    '<frames> is FIRST[,LAST[,STEP]]. In args, --in, --out and --stitch:',
    '  %d frame, %04d zero-padded, %% a literal %, %{EXPR} arithmetic over',
    '  frame, host (and tile, tiles, x0, y0, x1, y1, w, h, width, height with --tiles).',
    'Options of distray may stand anywhere; every other word after <exec> goes',
    'to the renderer. After "--" every word goes to the renderer.',
    '',
    'Options:',
    ...rows,
    '',
    'Exit status: 0 all done, 1 some tasks failed, 2 usage or inventory error,',
    '3 no host was usable, 130 interrupted.',
  ].join('\n');
}

function stringOption(o: RunArgv['options'], name: keyof RunArgv['options']): string | undefined {
  const v = o[name];
  return typeof v === 'string' ? v : undefined;
}

function listOption(o: RunArgv['options'], name: keyof RunArgv['options']): string[] {
  const v = o[name];
  return Array.isArray(v) ? v : [];
}

/**
 * SIGINT/SIGTERM: the first stops the run gracefully (renderers stopped,
 * report written, exit 130); a second exits at once.
 */
function interruptController(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) {
      process.stderr.write('\ndistray: interrupted again, exiting now\n');
      process.exit(130);
    }
    process.stderr.write('\ndistray: stopping: renderers are being stopped (press Ctrl+C again to exit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

async function runCommand(words: string[]): Promise<number> {
  const argv = splitRunArgv(words);
  if (argv.help) {
    process.stdout.write(runHelp() + '\n');
    return 0;
  }
  const [inventory, frames, exec, ...args] = argv.positionals;
  const o = argv.options;
  const report = stringOption(o, 'report');
  const interrupt = interruptController();
  try {
    if (inventory === undefined || frames === undefined || exec === undefined) {
      throw new UsageError(`expected ${RUN_USAGE} (distray run --help for more)`);
    }
    const retries = stringOption(o, 'retries');
    if (retries !== undefined && !/^\d+$/.test(retries)) throw new UsageError(`--retries "${retries}": expected a whole number`);
    const plain = o.plain === true || !process.stderr.isTTY;
    const summary = await run({
      inventory,
      frames,
      exec,
      args,
      ins: listOption(o, 'in'),
      outs: listOption(o, 'out'),
      retries: retries === undefined ? undefined : Number(retries),
      timeout: stringOption(o, 'timeout'),
      grace: stringOption(o, 'grace'),
      tiles: stringOption(o, 'tiles'),
      size: stringOption(o, 'size'),
      stitch: stringOption(o, 'stitch'),
      report,
      logDir: stringOption(o, 'log-dir'),
      sshConfig: stringOption(o, 'ssh-config'),
      dryRun: o['dry-run'] === true,
      force: o.force === true,
      keepTiles: o['keep-tiles'] === true,
      speculate: o['no-speculate'] !== true,
      order: stringOption(o, 'order'),
      hosts: stringOption(o, 'hosts'),
      exclude: stringOption(o, 'exclude'),
      progress: plain ? new PlainProgress((l) => process.stderr.write(l + '\n')) : new TerminalProgress(),
      signal: interrupt.signal,
    });
    const counts = new Map<string, number>();
    for (const t of summary.tasks) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
    if (!o['dry-run']) {
      const parts = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
      process.stderr.write(`distray: ${parts || 'nothing to do'} in ${summary.seconds.toFixed(1)}s (exit ${summary.exitCode})\n`);
      for (const t of summary.tasks.filter((t) => t.status === 'failed')) {
        process.stderr.write(`distray: FAILED frame ${t.frame}${t.tile !== null ? ` tile ${t.tile}` : ''}: ${t.error ?? ''}\n`);
      }
      for (const e of summary.errors) process.stderr.write(`distray: ${e}\n`);
      if (summary.exitCode === 3) {
        process.stderr.write('distray: no host was usable:\n');
        for (const h of summary.hosts) process.stderr.write(`  ${h.name}: ${h.state}${h.message ? `: ${h.message}` : ''}\n`);
      }
    }
    return summary.exitCode;
  } catch (err) {
    const code = exitCodeFor(err);
    process.stderr.write(`distray: ${errorMessage(err)}\n`);
    if (!(err instanceof DistrayError)) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    if (report) {
      await writeReport(report, {
        ok: false,
        exitCode: code,
        startedAt: new Date().toISOString(),
        seconds: 0,
        tasks: [],
        hosts: [],
        errors: [errorMessage(err)],
      }).catch(() => {});
    }
    return code;
  } finally {
    interrupt.dispose();
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'run') return runCommand(rest);
  const cli = cac('distray');
  cli.command('run <inventory> <frames> <exec> [...args]', 'render frames across the hosts of <inventory> (distray run --help)');
  cli
    .command('check <inventory>', 'connect to every host, verify it, and print what it has; runs nothing else')
    .option('--exec <name>', 'also check that this program is found on each host', { type: [String] })
    .option('--ssh-config <file>', 'the OpenSSH client config to read (default ~/.ssh/config)', { type: [String] })
    .option('--json', 'print the rows as JSON');
  cli.version(pkg.version);
  cli.help();
  try {
    const parsed = cli.parse(['node', 'distray', ...argv], { run: false });
    if (parsed.options.help || parsed.options.version) return 0;
    if (cli.matchedCommandName === 'check') {
      const last = (v: unknown): string | undefined => (Array.isArray(v) ? (v.at(-1) as string | undefined) : undefined);
      const exec = last(parsed.options.exec);
      const result = await check({ inventory: String(parsed.args[0]), exec, sshConfig: last(parsed.options.sshConfig) });
      for (const w of result.warnings) process.stderr.write(`distray: ${w}\n`);
      process.stdout.write((parsed.options.json ? JSON.stringify(result.rows, null, 2) : formatCheck(result.rows, exec)) + '\n');
      return result.exitCode;
    }
    if (!cli.matchedCommand) {
      process.stderr.write(`distray: ${command ? `unknown command "${command}"` : 'no command given'}; try distray --help\n`);
      return 2;
    }
    return 0;
  } catch (err) {
    process.stderr.write(`distray: ${errorMessage(err)}\n`);
    return exitCodeFor(err) === 2 || !(err instanceof DistrayError) ? 2 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`distray: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
