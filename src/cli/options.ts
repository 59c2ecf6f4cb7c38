import { UsageError } from '../errors.js';
import { levenshtein } from '../text/closest.js';

/**
 * One option of a command: whether it takes a value (`--name VALUE` or
 * `--name=VALUE`), whether it may be given more than once, and its line in
 * `--help`. Each command has one table of these (RUN_OPTIONS in argv.ts,
 * CHECK_OPTIONS and CLEAN_OPTIONS here); the command line is checked against
 * it before anything else happens.
 */
export interface OptionSpec {
  value: boolean;
  repeat?: boolean;
  /** A value only as --name=VALUE (--ui=8080): the next word is never taken. */
  optionalValue?: boolean;
  help: string;
}

export type OptionTable = Record<string, OptionSpec>;

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

/** The option of `names` a word was probably meant to be (without its dashes), if any. */
export function meantOption<Name extends string>(name: string, names: readonly Name[]): Name | undefined {
  const lower = name.toLowerCase();
  let best: Name | undefined;
  let bestDistance = Infinity;
  for (const option of names) {
    const distance = levenshtein(lower, option);
    // "--retry" for --retries, "--output" for --out: a short form or a longer spelling of the same word.
    const shared = [...lower].findIndex((c, k) => c !== option[k]);
    const common = shared < 0 ? lower.length : shared;
    const prefix =
      common >= 3 && common >= Math.min(lower.length, option.length) - 1 && Math.abs(lower.length - option.length) <= 3;
    const near = distance <= (lower.length > 4 ? 2 : 1);
    if ((prefix || near) && distance < bestDistance) [best, bestDistance] = [option, distance];
  }
  return best;
}

/** The refusal of a word that looks like an option but is none of `table`'s, with the one it resembles. */
export function unknownOption(word: string, table: OptionTable, command: string): UsageError {
  const name = /^-+([^=]*)/s.exec(word)?.[1] ?? word;
  const names = Object.keys(table);
  // Refused either way, so a looser guess than the renderer's words get: the one option the word begins (--dry).
  const starting = names.filter((n) => name.length >= 2 && n.startsWith(name.toLowerCase()));
  const meant = meantOption(name, names) ?? (starting.length === 1 ? starting[0] : undefined);
  const hint = meant ? `did you mean --${meant}? ` : '';
  return new UsageError(
    `unknown option "${word}" of distray ${command}; ${hint}distray ${command} --help lists its options`,
  );
}

/** Whether a word is an option word to be checked: `-x`, `--name`, `--name=v`; not `-` (a name for stdin) nor `--`. */
export function looksLikeOption(word: string): boolean {
  return word.length > 1 && word.startsWith('-') && word !== '--';
}

export interface CommandArgv<Table extends OptionTable> {
  positionals: string[];
  options: Partial<Record<keyof Table & string, string | string[] | true>>;
  help: boolean;
}

/**
 * The words after a command whose every option is its own (check, clean):
 * an unknown option, a value for a flag, an option without its value or
 * given twice is refused (a UsageError, exit 2) before anything connects, so
 * that `clean --dryrun` never cleans. After `--` every word is positional.
 */
export function parseCommandArgv<Table extends OptionTable>(
  words: readonly string[],
  table: Table,
  command: string,
): CommandArgv<Table> {
  const positionals: string[] = [];
  const options: CommandArgv<Table>['options'] = {};
  let help = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      positionals.push(...words.slice(i + 1));
      break;
    }
    if (word === '--help' || word === '-h') {
      help = true;
      continue;
    }
    if (!looksLikeOption(word)) {
      positionals.push(word);
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(word);
    const name = m?.[1];
    if (!m || name === undefined || !Object.hasOwn(table, name)) throw unknownOption(word, table, command);
    const spec: OptionSpec = table[name]!;
    let value: string | true;
    if (!spec.value) {
      if (m[2] !== undefined && !spec.optionalValue) throw new UsageError(`--${name} takes no value`);
      value = m[2] ?? true;
    } else if (m[2] !== undefined) {
      if (m[2] === '') throw new UsageError(`--${name} needs a value`);
      value = m[2];
    } else {
      const next = words[i + 1];
      // "--exec --json": the program was forgotten, not named "--json".
      if (next === undefined || next.startsWith('-')) throw new UsageError(`--${name} needs a value`);
      value = next;
      i++;
    }
    const key = name as keyof Table & string;
    const before: string | string[] | true | undefined = options[key];
    if (spec.repeat) options[key] = [...(Array.isArray(before) ? before : []), String(value)];
    else if (before !== undefined) throw new UsageError(`--${name} is given twice`);
    else options[key] = value;
  }
  return { positionals, options, help };
}
