import { UsageError } from '../errors.js';
import { looksLikeOption, unknownOption } from './options.js';

/**
 * Options of `run`: one typed table. Everything else after <exec> belongs to
 * the renderer (`-b`, `-o`, `-f` of Blender, `+W` of POV-Ray...), so distray
 * takes only its own long options out of the argument list, wherever they
 * stand; after a `--`, nothing more is taken.
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
} as const satisfies Record<string, { value: boolean; repeat?: boolean; optionalValue?: boolean; help: string }>;

export type RunOptionName = keyof typeof RUN_OPTIONS;

export interface RunArgv {
  positionals: string[];
  options: Partial<Record<RunOptionName, string | string[] | true>>;
  help: boolean;
}

/** Whether a word is one of run's own options (`--force`, `--out=x`). */
function isRunOption(word: string): boolean {
  const name = /^--([a-z-]+)(?:=.*)?$/s.exec(word)?.[1];
  return name !== undefined && Object.hasOwn(RUN_OPTIONS, name);
}

/**
 * Splits the words after `run` into distray's options and the positional
 * words (inventory, frames, exec, args). Before <exec> only distray's options
 * can stand, so an unknown one there is refused (exit 2) with the option it
 * resembles: `run farm.yaml 1,9 --dryrun ./ray` must not run `--dryrun`.
 * After <exec> an unknown word is the renderer's (main warns when it looks
 * like a misspelt option of distray). A negative <frames> (`-5,5`) is not an
 * option.
 */
export function splitRunArgv(words: readonly string[]): RunArgv {
  const positionals: string[] = [];
  const options: RunArgv['options'] = {};
  let help = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      positionals.push(...words.slice(i + 1));
      break;
    }
    if ((word === '--help' || word === '-h') && positionals.length < 3) {
      help = true;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(word);
    const name = m?.[1] as RunOptionName | undefined;
    if (!m || !name || !Object.hasOwn(RUN_OPTIONS, name)) {
      if (positionals.length < 3 && looksLikeOption(word) && !/^-\d/.test(word))
        throw unknownOption(word, RUN_OPTIONS, 'run');
      positionals.push(word);
      continue;
    }
    const spec = RUN_OPTIONS[name];
    if (!spec.value) {
      // A value only as --name=VALUE (--ui=8080): the next word is never taken.
      if (m[2] !== undefined && !('optionalValue' in spec)) throw new UsageError(`--${name} takes no value`);
      if (options[name] !== undefined && 'optionalValue' in spec) throw new UsageError(`--${name} is given twice`);
      options[name] = m[2] ?? true;
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      value = words[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      // "--report --force": the value was forgotten; --report=--force if that is really the name.
      if (value === '--' || isRunOption(value))
        throw new UsageError(
          `--${name} needs a value, and "${value}" is an option of distray; write --${name}=${value} if that is the value`,
        );
    }
    if ('repeat' in spec && spec.repeat) {
      const list = (options[name] as string[] | undefined) ?? [];
      list.push(value);
      options[name] = list;
    } else {
      if (options[name] !== undefined) throw new UsageError(`--${name} is given twice`);
      options[name] = value;
    }
  }
  return { positionals, options, help };
}
