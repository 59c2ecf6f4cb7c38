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
  /** Its value's name in `--help` and the reference: `--in SRC[=DEST]`, `--retries N`. */
  arg?: string;
  /** Its line in `--help`. */
  help: string;
  /** Its row in the CLI reference (docs/cli.md, Markdown), when it says more than `help`. */
  doc?: string;
  /** Listed in the reference in the row of this option (`--speculate` / `--no-speculate`). */
  inRowOf?: string;
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

/** --ssh-config, an option of every command that connects. */
const SSH_CONFIG = {
  value: true,
  arg: 'FILE',
  help: 'the OpenSSH client config to read (default ~/.ssh/config)',
} as const satisfies OptionSpec;

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
    arg: 'SRC[=DEST]',
    help: 'copy local SRC to DEST on the host (relative to its workdir) before running; SRC[=DEST], repeatable',
    doc: 'copy local SRC (file or directory) to DEST on the host, relative to its workdir; DEST defaults to SRC. Repeatable.',
  },
  out: {
    value: true,
    repeat: true,
    arg: 'SRC[=DEST]',
    help: 'copy SRC on the host back to local DEST after running; SRC[=DEST], repeatable',
    doc: 'copy SRC from the host back to local DEST; DEST defaults to SRC. Repeatable. A run without any `--out` (nor `--stitch`) says once that what its renderers write stays on the hosts.',
  },
  retries: {
    value: true,
    arg: 'N',
    help: 'attempts after the first, per task (default 2)',
  },
  timeout: {
    value: true,
    arg: 'DURATION',
    help: 'limit per attempt: 90s, 30m, 2h (a number alone is seconds)',
    doc: 'limit per attempt: `90s`, `30m`, `2h` (also `500ms`; a number alone is seconds), at most `596h`; the renderer is stopped (TERM, then KILL)',
  },
  stall: {
    value: true,
    arg: 'DURATION',
    help: 'stop and retry elsewhere an attempt whose output and output files have not changed for this long: 5m, 90s',
    doc: 'an attempt whose output (what the renderer prints) and output files have not changed for DURATION is hung: it is stopped (TERM, then KILL), fails with `stalled` in the report, and is retried on another host; at least `1s`, at most `596h` (see [When things go wrong](how-it-works.md#when-things-go-wrong))',
  },
  grace: {
    value: true,
    arg: 'DURATION',
    help: 'how long renderers outlive a lost connection, waiting to be picked up again (default 30s; a number alone is seconds)',
    doc: 'how long renderers outlive a lost connection, waiting to be picked up again (default `30s`; the same units, a number alone is seconds; at most `596h`)',
  },
  tiles: {
    value: true,
    arg: 'CxR',
    help: 'split every frame into C columns by R rows of tiles (CxR)',
    doc: 'split every frame into C columns by R rows of tiles; each tile is a task; at most 10,000 tiles',
  },
  size: {
    value: true,
    arg: 'WxH',
    help: 'the full image size WxH; required with --tiles',
    doc: 'the full image size; required with `--tiles`; at most 1,000,000 pixels a side',
  },
  'tile-align': {
    value: true,
    arg: 'N',
    help: "with --tiles: every inner tile edge on a multiple of N pixels (POV-Ray's +BS<N>, for antialiased tiles identical to a whole render)",
    doc: "with `--tiles`: put every inner tile edge on a multiple of N pixels from the top-left corner (tile sizes then differ by at most N); with POV-Ray's `+BS<N>`, antialiased tiles stitch into exactly the whole render (see [Antialiased tiles](tiles-and-chunks.md#antialiased-tiles))",
  },
  stitch: {
    value: true,
    arg: 'PATTERN',
    help: "with --tiles: the local file each frame's tiles are stitched into",
    doc: "with `--tiles`: the local file each frame's tiles are stitched into",
  },
  chunk: {
    value: true,
    arg: 'N|auto',
    help: 'N consecutive frames per task, or auto (sized to --chunk-target); args use %{first} %{last} %{count}',
    doc: 'give each task N consecutive frames (at most 10,000), or with `auto` as many as fill about `--chunk-target`; the command gets `%{first}`, `%{last}`, `%{count}` (see [Chunks](tiles-and-chunks.md#chunks))',
  },
  'chunk-target': {
    value: true,
    arg: 'DURATION',
    help: 'with --chunk auto: about how long a task should take (default 2m)',
    doc: 'with `--chunk auto`: about how long a task should take (default `2m`)',
  },
  'keep-tiles': {
    value: false,
    help: 'with --stitch: keep the tile images after a frame is stitched',
    doc: 'with `--stitch`: keep the tile images after their frame is stitched',
  },
  report: {
    value: true,
    arg: 'FILE',
    help: 'write a JSON summary when the run ends, however it ends',
    doc: 'write a JSON summary when the run ends, however it ends (a directory, or a name ending in `/`, is refused before the run)',
  },
  events: {
    value: true,
    arg: 'FILE|-',
    help: 'write every event of the run as it happens, one JSON object a line, to FILE (- for stdout; the view goes to stderr)',
    doc: 'write every event of the run as it happens, one JSON object a line (`-`: to stdout, and the progress view stays on stderr); see [Events](reports.md#events---events)',
  },
  junit: {
    value: true,
    arg: 'FILE',
    help: 'write JUnit XML when the run ends, however it ends: a testcase per task, for CI test reports',
    doc: 'write JUnit XML when the run ends, however it ends: a testcase per task, for CI test reports; see [JUnit XML](reports.md#junit-xml---junit)',
  },
  'on-end': {
    value: true,
    arg: 'CMD',
    help: 'run this local shell command when the run ends, however it ends, with the JSON summary on its stdin',
    doc: 'run this local shell command when the run ends, however it ends, with the JSON summary on its stdin; see [Notifications](reports.md#notifications---on-end)',
  },
  'dry-run': {
    value: false,
    help: "print every task's command line and copies, connect to nothing",
    doc: "print every task's command line and copies, in the order the tasks will start (`--order preview` included), connect to nothing",
  },
  force: {
    value: false,
    help: 'render again tasks whose outputs are already complete locally',
  },
  'keep-logs': {
    value: true,
    arg: 'N',
    help: 'how many runs to keep in .distray/logs; older ones are removed when a run starts (default 20, 0 keeps all)',
    doc: 'runs kept in `.distray/logs`: when a run starts, older run directories are removed so that N remain with it (default 20; `0` keeps all; only without `--log-dir`)',
  },
  'log-dir': {
    value: true,
    arg: 'DIR',
    help: "where each attempt's output is kept (default .distray/logs/<time>)",
    doc: "where each attempt's output is kept, its last 1 MiB (a line at its top says how much more there was) (default `.distray/logs/<start time>/`; an attempt that succeeded without printing anything leaves no file)",
  },
  'max-pixels': {
    value: true,
    arg: 'N',
    help: 'refuse, without decoding it, an image output that declares more pixels than this (default 268402689, 16383x16383)',
    doc: 'an image output (PNG, JPEG, WebP, TIFF, GIF, AVIF) whose header declares more than N pixels is refused without being decoded: the attempt fails and is retried (default 268402689, 16383x16383; raise it for larger frames)',
  },
  'ssh-config': { ...SSH_CONFIG, doc: 'the OpenSSH client config to read (default `~/.ssh/config`)' },
  speculate: {
    value: false,
    help: 'copy a running task to an idle faster slot when the queue is empty, first result wins (the default)',
    doc: 'once the queue is empty, run a second copy of a task that is slow, hung, or on a lost host on an idle slot expected to finish it sooner; the first complete result wins (default on; see [Speculation](how-it-works.md#speculation))',
  },
  'no-speculate': { value: false, help: 'never run a second copy of a task', inRowOf: 'speculate' },
  order: {
    value: true,
    arg: 'sequential|preview',
    help: 'sequential (the default) or preview: first, last and middle frames first, then halving the gaps',
    doc: 'the order tasks are queued in: `sequential` (default) as the frames are given; `preview` the first, last and middle frames first, then the middles of the gaps, so the whole animation can be looked at early',
  },
  hosts: {
    value: true,
    arg: 'NAME,...',
    help: 'run only on these hosts of the inventory: NAME,...',
    doc: 'run only on these hosts of the inventory (a wrong name is an error with a "did you mean")',
  },
  exclude: {
    value: true,
    arg: 'NAME,...',
    help: 'leave these hosts of the inventory out: NAME,...',
    doc: 'leave these hosts of the inventory out (both options keep applying when the inventory is re-read during the run)',
  },
  ui: {
    value: false,
    optionalValue: true,
    help: 'serve a live page of the run (--ui=PORT for a given port); its URL, with its token, is printed at the start',
    doc: 'serve a live page of the run on 127.0.0.1 (any free port, or PORT); its URL, with a random token, is printed at the start (see [The live page and the HTML report](live-page.md))',
  },
  'ui-host': {
    value: true,
    arg: 'ADDR',
    help: 'with --ui: the address the page listens on (default 127.0.0.1; another one is reachable from other machines)',
    doc: 'with `--ui`: the address the page listens on, instead of 127.0.0.1 (with a warning: the page is then reachable from other machines, unencrypted)',
  },
  'ui-keep': {
    value: false,
    help: 'with --ui: keep the page up after the run ends, until Ctrl+C',
    doc: "with `--ui`: keep the page up after the run ends, until Ctrl+C (the exit status is the run's)",
  },
  html: {
    value: true,
    arg: 'FILE',
    help: 'write a self-contained HTML report (pictures, timeline, hosts, failures) when the run ends, however it ends',
    doc: 'write a self-contained HTML report (contact sheet, timeline, hosts, failures) when the run ends, however it ends, like `--report`',
  },
  plain: {
    value: false,
    help: 'one line per event instead of the live view, even on a terminal',
  },
  quiet: {
    value: false,
    help: 'print only failures and the summary at the end',
    doc: 'print only the failures that gave up, and the summary at the end',
  },
} as const satisfies OptionTable;

export const CHECK_OPTIONS = {
  exec: {
    value: true,
    arg: 'NAME',
    help: 'also check that this program is found on each host (in PATH, or relative to the workdir)',
  },
  json: { value: false, help: 'print the rows as JSON' },
  'ssh-config': SSH_CONFIG,
} as const satisfies OptionTable;

export const CLEAN_OPTIONS = {
  'dry-run': { value: false, help: 'print what would be removed on each host, remove nothing' },
  'ssh-config': SSH_CONFIG,
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
