import { fileURLToPath } from 'node:url';
import { RUN_OPTIONS } from './argv.js';
import { CHECK_OPTIONS, CLEAN_OPTIONS, type OptionTable } from './options.js';

export const RUN_USAGE = 'distray run <inventory> <frames> <exec> [args...] [options]';
export const CLEAN_USAGE = 'distray clean <inventory> [--dry-run] [--ssh-config FILE]';
export const CHECK_USAGE = 'distray check <inventory> [--exec NAME] [--json] [--ssh-config FILE]';

/** A page of the documentation shipped in the package (README.md, docs/), beside the bundle: on every machine distray is installed on. */
function docPath(path: string): string {
  return fileURLToPath(new URL(`../../${path}`, import.meta.url));
}

function optionRows(options: ReadonlyArray<[string, string]>): string[] {
  return options.map(([flag, help]) => `  ${flag.padEnd(22)} ${help}`);
}

/** A command's option table as help rows: `--exec <value>`, `--json`. */
function tableRows(table: OptionTable): Array<[string, string]> {
  return Object.entries(table).map(([name, spec]) => [`--${name}${spec.value ? ' <value>' : ''}`, spec.help]);
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
  const rows = Object.entries(RUN_OPTIONS).map(([name, spec]): [string, string] => [
    `--${name}${spec.value ? ' <value>' : 'optionalValue' in spec ? '[=PORT]' : ''}`,
    spec.help,
  ]);
  return [
    `Usage: ${RUN_USAGE}`,
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
    ...optionRows(rows),
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
    `Usage: ${CHECK_USAGE}`,
    '',
    'Connects to every host of <inventory> (through its jump host where it has one),',
    'verifies its host key, logs in, and prints one row per host: its state',
    '(ok, unreachable, auth failed, host key unknown...), CPUs, memory, free disk in',
    'the workdir and the OpenSSH version. It creates the workdir and runs nothing else.',
    '',
    'Options:',
    ...optionRows(tableRows(CHECK_OPTIONS)),
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
    `Usage: ${CLEAN_USAGE}`,
    '',
    "Removes from every host's workdir what distray left there: its .distray directory",
    '(run directories, leases), half-finished uploads, and the inputs and outputs of',
    'the runs started from this directory (recorded in .distray/made.json). Nothing',
    'outside the workdir is touched: a symbolic link is removed as a link, never followed.',
    'A workdir that a run is using is left alone.',
    '',
    'Options:',
    ...optionRows(tableRows(CLEAN_OPTIONS)),
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
