import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runHelp } from '../../../src/cli/help.js';
import { COMMANDS, RUN, RUN_OPTIONS } from '../../../src/cli/options.js';
import { optionsTable, withOptionsTables } from '../../../src/cli/reference.js';

// The CLI reference's options table and distray run --help are both held to the option table the parser uses
// (RUN_OPTIONS): an option added, renamed or removed there without the reference fails here.

const reference = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');

/** The options named in the first column of the reference's options table (`--a` / `--b` rows name both). */
function referenced(): string[] {
  const table = reference.slice(
    reference.indexOf('## Options'),
    reference.indexOf('\n## ', reference.indexOf('## Options') + 1),
  );
  return table
    .split('\n')
    .filter((l) => l.startsWith('| `--'))
    .flatMap((l) => [...l.split(' | ')[0]!.matchAll(/`--([a-z-]+)/g)].map((m) => m[1]!));
}

describe('the CLI reference (docs/cli.md)', () => {
  it('holds the options tables npm run docs makes from the option tables (run it after changing an option)', () => {
    const commands = COMMANDS.filter((c) => Object.keys(c.options).length > 0);
    expect(withOptionsTables(reference, commands)).toBe(reference);
  });

  it("makes a row per option, its value's name, a partner in its row, and | escaped", () => {
    const table = optionsTable(RUN);
    expect(table).toContain('| `--in SRC[=DEST]` | copy local SRC (file or directory)');
    expect(table).toContain('| `--speculate` / `--no-speculate` |');
    expect(table).toContain('| `--chunk N\\|auto` |');
    expect(table).toContain('| `--ui[=PORT]` |');
    expect(table).not.toMatch(/^\| `--no-speculate`/m);
  });

  it('lists every option of run, and no other', () => {
    expect(referenced().sort()).toEqual(Object.keys(RUN_OPTIONS).sort());
  });

  it('and run --help lists every one too', () => {
    const help = runHelp();
    for (const o of Object.keys(RUN_OPTIONS)) expect(help, `--${o}`).toMatch(new RegExp(`--${o}\\b`));
  });
});
