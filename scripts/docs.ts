// npm run docs: writes the options tables of docs/cli.md from the option
// tables in src/cli/options.ts (the ones --help and the parser read).
// test/unit/docs/cliReference.test.ts fails until this has been run.
import { readFileSync, writeFileSync } from 'node:fs';
import { COMMANDS } from '../src/cli/options.js';
import { withOptionsTables } from '../src/cli/reference.js';

const page = new URL('../docs/cli.md', import.meta.url);
const before = readFileSync(page, 'utf8');
const after = withOptionsTables(
  before,
  COMMANDS.filter((c) => Object.keys(c.options).length > 0),
);
if (after !== before) writeFileSync(page, after);
console.log(
  after === before ? 'docs/cli.md: the options tables are up to date' : 'docs/cli.md: options tables written',
);
