/**
 * The commands and their options: one typed table per command, read by the
 * one parser (argv.ts), by `--help` (help.ts), by `distray completion`
 * (completion.ts) and held to the CLI reference (docs/cli.md) by a test.
 * An option added here is parsed, listed, completed and must be documented.
 */

/**
 * One option of a command: whether it takes a value (`--name VALUE` or
 * `--name=VALUE`), whether it may be given more than once, and its line in
 * `--help`.
 */
export interface OptionSpec {
  value: boolean;
  repeat?: boolean;
  /** A value only as --name=VALUE (--ui=8080): the next word is never taken. */
  optionalValue?: boolean;
  help: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** A command: its name, its usage line, what it does (in one line), and its options. */
export interface CommandSpec<Table extends OptionTable = OptionTable> {
  name: string;
  /** Its positionals, as distray --help lists them. */
  arguments: string;
  usage: string;
  about: string;
  options: Table;
  /**
   * After this many positionals the words are another program's: `run`'s
   * renderer takes its own options after <inventory> <frames> <exec>
   * (`-b`, `-o`, `+W`, even a `--help`), so from there only distray's own
   * long options are taken out and every other word is passed on. Without
   * it, every option-like word must be one of the command's.
   */
  ownWordsUntil?: number;
}

/**
 * Options of `run`. Everything else after <exec> belongs to the renderer
 * (`-b`, `-o`, `-f` of Blender, `+W` of POV-Ray...), so distray takes only
 * its own long options out of the argument list, wherever they stand; after
 * a `--`, nothing more is taken.
 */
export const RUN_OPTIONS = {
  in: {
    value: true,
    repeat: true,
    help: 'copy local SRC to DEST on the host (relative to its workdir) before running; SRC[=DEST], repeatable',
  },
  out: {
    value: true,
    repeat: true,
    help: 'copy SRC on the host back to local DEST after running; SRC[=DEST], repeatable',
  },
  retries: { value: true, help: 'attempts after the first, per task (default 2)' },
  timeout: { value: true, help: 'limit per attempt: 90s, 30m, 2h (a number alone is seconds)' },
  stall: {
    value: true,
    help: 'stop and retry elsewhere an attempt whose output and output files have not changed for this long: 5m, 90s',
  },
  grace: {
    value: true,
    help: 'how long renderers outlive a lost connection, waiting to be picked up again (default 30s; a number alone is seconds)',
  },
  tiles: { value: true, help: 'split every frame into C columns by R rows of tiles (CxR)' },
  size: { value: true, help: 'the full image size WxH; required with --tiles' },
  'tile-align': {
    value: true,
    help: "with --tiles: every inner tile edge on a multiple of N pixels (POV-Ray's +BS<N>, for antialiased tiles identical to a whole render)",
  },
  stitch: { value: true, help: "with --tiles: the local file each frame's tiles are stitched into" },
  report: { value: true, help: 'write a JSON summary when the run ends, however it ends' },
  events: {
    value: true,
    help: 'write every event of the run as it happens, one JSON object a line, to FILE (- for stdout; the view goes to stderr)',
  },
  junit: {
    value: true,
    help: 'write JUnit XML when the run ends, however it ends: a testcase per task, for CI test reports',
  },
  'on-end': {
    value: true,
    help: 'run this local shell command when the run ends, however it ends, with the JSON summary on its stdin',
  },
  'log-dir': { value: true, help: "where each attempt's output is kept (default .distray/logs/<time>)" },
  'keep-logs': {
    value: true,
    help: 'how many runs to keep in .distray/logs; older ones are removed when a run starts (default 20, 0 keeps all)',
  },
  'max-pixels': {
    value: true,
    help: 'refuse, without decoding it, an image output that declares more pixels than this (default 268402689, 16383x16383)',
  },
  'ssh-config': { value: true, help: 'the OpenSSH client config to read (default ~/.ssh/config)' },
  'dry-run': { value: false, help: "print every task's command line and copies, connect to nothing" },
  'keep-tiles': { value: false, help: 'with --stitch: keep the tile images after a frame is stitched' },
  force: { value: false, help: 'render again tasks whose outputs are already complete locally' },
  plain: { value: false, help: 'one line per event instead of the live view, even on a terminal' },
  quiet: { value: false, help: 'print only failures and the summary at the end' },
  speculate: {
    value: false,
    help: 'copy a running task to an idle faster slot when the queue is empty, first result wins (the default)',
  },
  'no-speculate': { value: false, help: 'never run a second copy of a task' },
  order: {
    value: true,
    help: 'sequential (the default) or preview: first, last and middle frames first, then halving the gaps',
  },
  hosts: { value: true, help: 'run only on these hosts of the inventory: NAME,...' },
  ui: {
    value: false,
    optionalValue: true,
    help: 'serve a live page of the run (--ui=PORT for a given port); its URL, with its token, is printed at the start',
  },
  'ui-host': {
    value: true,
    help: 'with --ui: the address the page listens on (default 127.0.0.1; another one is reachable from other machines)',
  },
  'ui-keep': { value: false, help: 'with --ui: keep the page up after the run ends, until Ctrl+C' },
  html: {
    value: true,
    help: 'write a self-contained HTML report (pictures, timeline, hosts, failures) when the run ends, however it ends',
  },
  exclude: { value: true, help: 'leave these hosts of the inventory out: NAME,...' },
  chunk: {
    value: true,
    help: 'N consecutive frames per task, or auto (sized to --chunk-target); args use %{first} %{last} %{count}',
  },
  'chunk-target': { value: true, help: 'with --chunk auto: about how long a task should take (default 2m)' },
} as const satisfies OptionTable;

export const CHECK_OPTIONS = {
  exec: {
    value: true,
    help: 'also check that this program is found on each host (in PATH, or relative to the workdir)',
  },
  json: { value: false, help: 'print the rows as JSON' },
  'ssh-config': { value: true, help: 'the OpenSSH client config to read (default ~/.ssh/config)' },
} as const satisfies OptionTable;

export const CLEAN_OPTIONS = {
  'dry-run': { value: false, help: 'print what would be removed on each host, remove nothing' },
  'ssh-config': { value: true, help: 'the OpenSSH client config to read (default ~/.ssh/config)' },
} as const satisfies OptionTable;

export const RUN = {
  name: 'run',
  arguments: '<inventory> <frames> <exec> [...args]',
  usage: 'distray run <inventory> <frames> <exec> [args...] [options]',
  about: 'render frames across the hosts of an inventory',
  options: RUN_OPTIONS,
  ownWordsUntil: 3,
} as const satisfies CommandSpec;

export const CHECK = {
  name: 'check',
  arguments: '<inventory>',
  usage: 'distray check <inventory> [--exec NAME] [--json] [--ssh-config FILE]',
  about: 'connect to every host, verify it, and print what it has; runs nothing else',
  options: CHECK_OPTIONS,
} as const satisfies CommandSpec;

export const CLEAN = {
  name: 'clean',
  arguments: '<inventory>',
  usage: 'distray clean <inventory> [--dry-run] [--ssh-config FILE]',
  about: "remove what distray left in every host's workdir",
  options: CLEAN_OPTIONS,
} as const satisfies CommandSpec;

export const COMPLETION = {
  name: 'completion',
  arguments: '<shell>',
  usage: 'distray completion bash|zsh|fish',
  about: 'print a script that completes commands and options in bash, zsh or fish',
  options: {},
} as const satisfies CommandSpec;

/** Every command, in the order --help and the completions list them. */
export const COMMANDS: readonly CommandSpec[] = [RUN, CHECK, CLEAN, COMPLETION];
