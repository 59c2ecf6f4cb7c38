import { describe, expect, it } from 'vitest';
import { splitRunArgv } from '../../../src/cli/argv.js';
import { CHECK_OPTIONS, CLEAN_OPTIONS, parseCommandArgv } from '../../../src/cli/options.js';

describe('parseCommandArgv: every option of check and clean is checked against its table', () => {
  it.each([
    [
      ['farm.yaml', '--dryrun'],
      CLEAN_OPTIONS,
      'clean',
      /unknown option "--dryrun" of distray clean; did you mean --dry-run\?/,
    ],
    [
      ['--dry', 'farm.yaml'],
      CLEAN_OPTIONS,
      'clean',
      /unknown option "--dry" of distray clean; did you mean --dry-run\?/,
    ],
    [
      ['farm.yaml', '-n'],
      CLEAN_OPTIONS,
      'clean',
      /unknown option "-n" of distray clean; distray clean --help lists its options/,
    ],
    [['farm.yaml', '--Dry-Run'], CLEAN_OPTIONS, 'clean', /did you mean --dry-run\?/],
    [['farm.yaml', '--dry-run=yes'], CLEAN_OPTIONS, 'clean', /--dry-run takes no value/],
    [['farm.yaml', '--ssh-config'], CLEAN_OPTIONS, 'clean', /--ssh-config needs a value/],
    [['farm.yaml', '--ssh-config='], CLEAN_OPTIONS, 'clean', /--ssh-config needs a value/],
    [['farm.yaml', '--constructor'], CLEAN_OPTIONS, 'clean', /unknown option "--constructor"/],
    [['farm.yaml', '--jsn'], CHECK_OPTIONS, 'check', /did you mean --json\?/],
    [['farm.yaml', '--exe', 'povray'], CHECK_OPTIONS, 'check', /did you mean --exec\?/],
    [['farm.yaml', '--exec', '--json'], CHECK_OPTIONS, 'check', /--exec needs a value/],
    [['farm.yaml', '--exec', 'a', '--exec', 'b'], CHECK_OPTIONS, 'check', /--exec is given twice/],
  ] as const)('%j (%s) is refused', (words, table, command, message) => {
    expect(() => parseCommandArgv(words, table, command)).toThrow(message);
  });

  it('takes the options in either form, anywhere, and everything after -- as positional', () => {
    expect(parseCommandArgv(['--dry-run', 'farm.yaml', '--ssh-config=c'], CLEAN_OPTIONS, 'clean')).toEqual({
      positionals: ['farm.yaml'],
      options: { 'dry-run': true, 'ssh-config': 'c' },
      help: false,
    });
    expect(parseCommandArgv(['farm.yaml', '--exec', 'povray', '--json'], CHECK_OPTIONS, 'check').options).toEqual({
      exec: 'povray',
      json: true,
    });
    expect(parseCommandArgv(['--', '--dryrun'], CLEAN_OPTIONS, 'clean').positionals).toEqual(['--dryrun']);
    expect(parseCommandArgv(['-'], CLEAN_OPTIONS, 'clean').positionals).toEqual(['-']);
    expect(parseCommandArgv(['farm.yaml', '-h'], CLEAN_OPTIONS, 'clean').help).toBe(true);
  });
});

describe('splitRunArgv: before <exec> only distray options stand', () => {
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
