import { describe, expect, it } from 'vitest';
import { parseArgv } from '../../../src/cli/argv.js';
import { RUN } from '../../../src/cli/options.js';

describe('parseArgv of run: --ui, whose value is only ever given with =', () => {
  it.each([
    [['inv', '1', 'r', '--ui'], true, ['inv', '1', 'r']],
    [['inv', '1', 'r', '--ui=8080'], '8080', ['inv', '1', 'r']],
    // The next word is the renderer's, not a port.
    [['inv', '1', 'r', '--ui', '8080'], true, ['inv', '1', 'r', '8080']],
    [['inv', '1', 'r', '--', '--ui'], undefined, ['inv', '1', 'r', '--ui']],
  ] as const)('%j', (words, ui, positionals) => {
    const argv = parseArgv(words, RUN);
    expect(argv.options.ui).toBe(ui);
    expect(argv.positionals).toEqual(positionals);
  });

  it('refuses it twice, and a value for --ui-keep', () => {
    expect(() => parseArgv(['--ui', '--ui=1'], RUN)).toThrow('--ui is given twice');
    expect(() => parseArgv(['--ui-keep=yes'], RUN)).toThrow('--ui-keep takes no value');
  });

  it('takes --ui-host and --html with their values', () => {
    expect(parseArgv(['--ui-host', '0.0.0.0', '--html=r.html'], RUN).options).toEqual({
      'ui-host': '0.0.0.0',
      html: 'r.html',
    });
  });
});
