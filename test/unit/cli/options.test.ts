import { describe, expect, it } from 'vitest';
import { parseArgv, type ParsedArgv } from '../../../src/cli/argv.js';
import { CHECK, CLEAN, COMPLETION, RUN, type CommandSpec } from '../../../src/cli/options.js';

const splitRunArgv = (words: readonly string[]): ParsedArgv<typeof RUN.options> => parseArgv(words, RUN);

describe('parseArgv: every option of check and clean is checked against its table', () => {
  it.each([
    [['farm.yaml', '--dryrun'], CLEAN, /unknown option "--dryrun" of distray clean; did you mean --dry-run\?/],
    [['--dry', 'farm.yaml'], CLEAN, /unknown option "--dry" of distray clean; did you mean --dry-run\?/],
    [['farm.yaml', '-n'], CLEAN, /unknown option "-n" of distray clean; distray clean --help lists its options/],
    [['farm.yaml', '--Dry-Run'], CLEAN, /did you mean --dry-run\?/],
    [['farm.yaml', '--dry-run=yes'], CLEAN, /--dry-run takes no value/],
    [['farm.yaml', '--ssh-config'], CLEAN, /--ssh-config needs a value/],
    [['farm.yaml', '--ssh-config='], CLEAN, /--ssh-config needs a value/],
    [['farm.yaml', '--constructor'], CLEAN, /unknown option "--constructor"/],
    [['farm.yaml', '--jsn'], CHECK, /did you mean --json\?/],
    [['farm.yaml', '--exe', 'povray'], CHECK, /did you mean --exec\?/],
    [['farm.yaml', '--exec', '--json'], CHECK, /--exec needs a value/],
    [['farm.yaml', '--exec', 'a', '--exec', 'b'], CHECK, /--exec is given twice/],
  ] as const)('%j (%s) is refused', (words, command, message) => {
    expect(() => parseArgv(words, command as CommandSpec)).toThrow(message);
  });

  it('takes the options in either form, anywhere, and everything after -- as positional', () => {
    expect(parseArgv(['--dry-run', 'farm.yaml', '--ssh-config=c'], CLEAN)).toEqual({
      positionals: ['farm.yaml'],
      options: { 'dry-run': true, 'ssh-config': 'c' },
      help: false,
    });
    expect(parseArgv(['farm.yaml', '--exec', 'povray', '--json'], CHECK).options).toEqual({
      exec: 'povray',
      json: true,
    });
    expect(parseArgv(['--', '--dryrun'], CLEAN).positionals).toEqual(['--dryrun']);
    expect(parseArgv(['-'], CLEAN).positionals).toEqual(['-']);
    expect(parseArgv(['farm.yaml', '-h'], CLEAN).help).toBe(true);
  });
});

describe('parseArgv of run: before <exec> only distray options stand', () => {
  it.each([
    [['farm.yaml', '1,9', '--dryrun', './ray'], /unknown option "--dryrun" of distray run; did you mean --dry-run\?/],
    [['--retires', '3', 'farm.yaml', '1,9', './ray'], /did you mean --retries\?/],
    [['farm.yaml', '--ouput', 'x', '1,9', './ray'], /did you mean --out\?/],
    [['farm.yaml', '1,9', '-q', './ray'], /unknown option "-q" of distray run; distray run --help lists its options/],
    [['-x', 'farm.yaml', '1,9', './ray'], /unknown option "-x"/],
    [
      ['farm.yaml', '1,9', './ray', '--report', '--force'],
      /--report needs a value, and "--force" is an option of distray/,
    ],
    [['farm.yaml', '1,9', './ray', '--out', '--'], /--out needs a value/],
  ])('%j is refused', (words, message) => {
    expect(() => splitRunArgv(words)).toThrow(message);
  });

  it.each([
    // After <exec>: the renderer's words (main warns about the ones that look misspelt).
    [
      ['farm.yaml', '1,9', './ray', '--dryrun', '-q'],
      ['farm.yaml', '1,9', './ray', '--dryrun', '-q'],
    ],
    // A negative frame is not an option.
    [
      ['farm.yaml', '-5,5', './ray'],
      ['farm.yaml', '-5,5', './ray'],
    ],
    [
      ['farm.yaml', '-3', './ray'],
      ['farm.yaml', '-3', './ray'],
    ],
    // After --: the user's explicit choice, wherever it stands.
    [
      ['farm.yaml', '1,9', '--', '--odd-renderer', '--dryrun'],
      ['farm.yaml', '1,9', '--odd-renderer', '--dryrun'],
    ],
    // A value that merely looks like an option (not one of distray's) is a value.
    [
      ['farm.yaml', '1,9', './ray', '--in', '--ouput'],
      ['farm.yaml', '1,9', './ray'],
    ],
  ])('%j is taken', (words, positionals) => {
    expect(splitRunArgv(words).positionals).toEqual(positionals);
  });

  it('takes distray options before <exec> as before', () => {
    expect(
      splitRunArgv(['--dry-run', 'farm.yaml', '--retries', '3', '1,9', '--report=r.json', './ray', 'x']).options,
    ).toEqual({
      'dry-run': true,
      retries: '3',
      report: 'r.json',
    });
  });
});

describe('parseArgv: one parser, the same rules for every command', () => {
  it.each([
    // A flag twice, or an empty --name=, is refused by run as by check and clean.
    [['farm.yaml', '1,9', './ray', '--force', '--force'], RUN, /--force is given twice/],
    [['farm.yaml', '--json', '--json'], CHECK, /--json is given twice/],
    [['farm.yaml', '1,9', './ray', '--report='], RUN, /--report needs a value/],
    [['--bash'], COMPLETION, /unknown option "--bash" of distray completion/],
  ] as const)('%j is refused', (words, command, message) => {
    expect(() => parseArgv(words, command as CommandSpec)).toThrow(message);
  });

  it("leaves the renderer's words alone after <exec>, --help included, and takes every word as the command's without it", () => {
    expect(splitRunArgv(['farm.yaml', '1,9', 'blender', '--help', '-b', '--out', 'o.png'])).toEqual({
      positionals: ['farm.yaml', '1,9', 'blender', '--help', '-b'],
      options: { out: ['o.png'] },
      help: false,
    });
    expect(parseArgv(['farm.yaml', '--help'], CHECK).help).toBe(true);
    expect(() => parseArgv(['farm.yaml', 'x', '-b'], CLEAN)).toThrow(/unknown option "-b" of distray clean/);
  });
});
