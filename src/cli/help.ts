import { fileURLToPath } from 'node:url';
import { CHECK, CLEAN, COMPLETION, RUN, type CommandSpec, type OptionTable } from './options.js';

/** A page of the documentation shipped in the package (README.md, docs/), beside the bundle: on every machine distray is installed on. */
function docPath(path: string): string {
  return fileURLToPath(new URL(`../../${path}`, import.meta.url));
}

function optionRows(options: ReadonlyArray<[string, string]>): string[] {
  const width = Math.max(22, ...options.map(([flag]) => flag.length));
  return options.map(([flag, help]) => `  ${flag.padEnd(width)} ${help}`);
}

/** A command's option table as help rows: `--exec <value>`, `--json`, `--ui[=PORT]`. */
function tableRows(table: OptionTable): Array<[string, string]> {
  return Object.entries(table).map(([name, spec]) => [
    `--${name}${spec.value ? ` ${spec.arg ?? '<value>'}` : spec.optionalValue ? '[=PORT]' : ''}`,
    spec.help,
  ]);
}

function footer(exitStatus: string[]): string[] {
  return [
    '',
    'Exit status:',
    ...exitStatus.map((l) => `  ${l}`),
    '',
    `The complete reference: ${docPath('docs/cli.md')}`,
    `Recipes, troubleshooting and the other pages: ${docPath('README.md')}`,
  ];
}

export function runHelp(): string {
  return [
    `Usage: ${RUN.usage}`,
    '',
    'Runs <exec> [args...] once per frame (or tile) on the hosts of <inventory>.',
    '<frames> is FIRST[,LAST[,STEP]], inclusive. In args, --in, --out and --stitch:',
    '  %d frame, %04d zero-padded, %% a literal %, %{EXPR} arithmetic over',
    '  frame, host (and tile, tiles, x0, y0, x1, y1, w, h, width, height with --tiles;',
    '  first, last, count with --chunk).',
    'Options of distray may stand anywhere; every other word after <exec> goes',
    'to the renderer (before <exec> an unknown option is refused). After "--"',
    'every word goes to the renderer.',
    'Editing <inventory> during the run (or SIGHUP) adds and removes hosts.',
    '',
    'Options:',
    ...optionRows(tableRows(RUN.options)),
    '',
    'Examples:',
    '  POV-Ray, frames 1 to 120, the scene uploaded once per host, the images fetched back:',
    '    distray run farm.yaml 1,120 povray +Iscene.pov +Of%04d.png +W1920 +H1080 -D Declare=frame=%d \\',
    '      --in scene.pov --out f%04d.png=anim/f%04d.png',
    '  Blender, frames 1 to 250:',
    '    distray run farm.yaml 1,250 blender -b scene.blend -o //out/f_#### -F PNG -f %d \\',
    '      --in scene.blend --out out/f_%04d.png=anim/f_%04d.png',
    '  Blender in chunks of about 2 minutes (one start-up per chunk):',
    '    distray run farm.yaml 1,250 blender -b scene.blend -o //out/f_#### -F PNG -s %{first} -e %{last} -a \\',
    '      --chunk auto --in scene.blend --out out/f_%04d.png=anim/f_%04d.png',
    ...footer([
      '0    every task is done (or was already complete)',
      '1    some tasks failed after their retries; the others are done',
      '2    usage, inventory or placeholder error: nothing ran',
      '3    no host was usable',
      '130  interrupted (Ctrl+C, SIGTERM): the renderers were stopped',
    ]),
  ].join('\n');
}

export function checkHelp(): string {
  return [
    `Usage: ${CHECK.usage}`,
    '',
    'Connects to every host of <inventory> (through its jump host where it has one),',
    'verifies its host key, logs in, and prints one row per host: its state',
    '(ok, unreachable, auth failed, host key unknown...), CPUs, memory, free disk in',
    'the workdir and the OpenSSH version. It creates the workdir and runs nothing else.',
    '',
    'Options:',
    ...optionRows(tableRows(CHECK.options)),
    '',
    'Example:',
    '  distray check farm.yaml --exec povray',
    ...footer([
      '0  every host is usable',
      '1  some hosts are not',
      '2  usage or inventory error',
      '3  no host is usable',
    ]),
  ].join('\n');
}

export function cleanHelp(): string {
  return [
    `Usage: ${CLEAN.usage}`,
    '',
    "Removes from every host's workdir what distray left there: its .distray directory",
    '(run directories, leases), half-finished uploads, and the inputs and outputs of',
    'the runs started from this directory (recorded in .distray/made.json). Nothing',
    'outside the workdir is touched: a symbolic link is removed as a link, never followed.',
    'A workdir that a run is using is left alone.',
    '',
    'Options:',
    ...optionRows(tableRows(CLEAN.options)),
    '',
    'Example:',
    '  distray clean farm.yaml --dry-run',
    ...footer([
      '0  every host is clean',
      '1  some hosts could not be cleaned',
      '2  usage or inventory error',
      '3  no host could be cleaned',
    ]),
  ].join('\n');
}

/** distray --help: the commands, each with where to read more. */
export function mainHelp(version: string, commands: readonly CommandSpec[]): string {
  const rows = commands.map((c): [string, string] => [
    `${c.name} ${c.arguments}`,
    c.name === 'completion'
      ? `${c.about} (source <(distray completion bash))`
      : `${c.about} (distray ${c.name} --help)`,
  ]);
  const width = Math.max(...rows.map(([l]) => l.length));
  return [
    `distray/${version}`,
    '',
    'Usage:',
    '  $ distray <command> [options]',
    '',
    'Commands:',
    ...rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`),
    '',
    'For more info, run any command with the `--help` flag:',
    ...commands.map((c) => `  $ distray ${c.name} --help`),
    '',
    'Options:',
    '  -v, --version  Display version number',
    '  -h, --help     Display this message',
  ].join('\n');
}

export function completionHelp(): string {
  return [
    `Usage: ${COMPLETION.usage}`,
    '',
    "Prints a script that completes distray's commands and options in that shell:",
    '  source <(distray completion bash)      (bash; zsh alike)',
    '  distray completion fish | source',
  ].join('\n');
}
