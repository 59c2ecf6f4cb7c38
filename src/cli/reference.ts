import type { CommandSpec } from './options.js';

/**
 * The CLI reference's options tables (docs/cli.md), made from the same
 * tables as `--help` and the parser: `npm run docs` writes them between
 * the page's `<!-- options of COMMAND -->` markers, and a test fails when
 * the page and the tables differ.
 */

const cell = (text: string): string => text.replaceAll('|', '\\|');

/** A command's options as a Markdown table: one row per option, its value's name, and its reference text. */
export function optionsTable(command: CommandSpec): string {
  const entries = Object.entries(command.options);
  const rows = entries
    .filter(([, spec]) => spec.inRowOf === undefined)
    .map(([name, spec]) => {
      const flag = (n: string, arg = command.options[n]!.arg): string =>
        `\`--${n}${command.options[n]!.optionalValue ? '[=PORT]' : arg ? ` ${cell(arg)}` : ''}\``;
      const partners = entries.filter(([, s]) => s.inRowOf === name).map(([n]) => flag(n));
      return `| ${[flag(name), ...partners].join(' / ')} | ${spec.doc ?? spec.help} |`;
    });
  return ['| option | meaning |', '|---|---|', ...rows].join('\n');
}

const MARKER = (command: string): RegExp =>
  new RegExp(
    `(<!-- options of ${command}: made by npm run docs from src/cli/options.ts -->\\n)(?:[^]*?\\n)??(<!-- end -->)`,
  );

/** The page with each command's table between its markers made anew; a page without a command's markers is an error. */
export function withOptionsTables(page: string, commands: readonly CommandSpec[]): string {
  return commands.reduce((text, command) => {
    const marker = MARKER(command.name);
    if (!marker.test(text)) throw new Error(`docs/cli.md has no markers for the options of ${command.name}`);
    return text.replace(marker, (_, open: string, close: string) => `${open}${optionsTable(command)}\n${close}`);
  }, page);
}
