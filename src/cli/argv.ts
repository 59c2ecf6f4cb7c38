import { UsageError } from '../errors.js';
import { levenshtein } from '../text/closest.js';
import type { CommandSpec, OptionSpec, OptionTable } from './options.js';

/*
 * The one parser of every command's words (run, check, clean, completion),
 * driven by the command's table in options.ts. Not cac, which the top level
 * used to share: run's renderer takes its own options after <exec> (`-b`,
 * `+W`, `--python-expr`), and cac would parse them as distray's (camelCased,
 * `--no-x` negated, dotted names nested) instead of passing them on byte for
 * byte; and a misspelt option must be refused with the one it resembles
 * before anything connects (`clean --dryrun` must never clean), which needs
 * the table anyway.
 */

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

export interface ParsedArgv<Table extends OptionTable> {
  positionals: string[];
  options: Partial<Record<keyof Table & string, string | string[] | true>>;
  help: boolean;
}

/** Whether a word is one of the table's options (`--force`, `--out=x`). */
function isOptionOf(word: string, table: OptionTable): boolean {
  const name = /^--([a-z-]+)(?:=.*)?$/s.exec(word)?.[1];
  return name !== undefined && Object.hasOwn(table, name);
}

/**
 * The words after a command, checked against its table before anything
 * connects: an unknown option is refused (a UsageError, exit 2) with the
 * option it resembles, as is a value given to a flag, an option without its
 * value, or one given twice (a repeatable option makes a list). After `--`
 * every word is positional; a negative number (`-5,5`) is not an option.
 *
 * With `ownWordsUntil` (run), the words after that many positionals are
 * another program's: an unknown option there, or `--help`, is positional
 * (main warns about a word that looks like a misspelt option of distray).
 */
export function parseArgv<Table extends OptionTable>(
  words: readonly string[],
  command: CommandSpec<Table>,
): ParsedArgv<Table> {
  const table: OptionTable = command.options;
  const ownUntil = command.ownWordsUntil ?? Infinity;
  const positionals: string[] = [];
  const options: ParsedArgv<Table>['options'] = {};
  let help = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') {
      positionals.push(...words.slice(i + 1));
      break;
    }
    const own = positionals.length < ownUntil;
    if ((word === '--help' || word === '-h') && own) {
      help = true;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(word);
    const name = m?.[1];
    if (!m || name === undefined || !Object.hasOwn(table, name)) {
      if (own && looksLikeOption(word) && !/^-\d/.test(word)) throw unknownOption(word, table, command.name);
      positionals.push(word);
      continue;
    }
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
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      // "--report --force": the value was forgotten; --report=--force if that is really the name.
      if (next === '--' || isOptionOf(next, table))
        throw new UsageError(
          `--${name} needs a value, and "${next}" is an option of distray; write --${name}=${next} if that is the value`,
        );
      // A command whose every word is its own: "--exec -x" forgot the program too.
      if (ownUntil === Infinity && next.startsWith('-')) throw new UsageError(`--${name} needs a value`);
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
