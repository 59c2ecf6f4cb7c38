import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellJoin, shellQuote } from '../../../src/ssh/quote.js';

/** What /bin/sh hands a program for a quoted command line. */
function throughShell(argv: string[]): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${shellJoin(argv)}`]);
  return out.toString('utf8').split('\0').slice(0, -1);
}

// A small deterministic generator, so a failure is reproducible.
function* randomArgs(seed: number, count: number): Generator<string[]> {
  let s = seed;
  const next = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31);
  const alphabet = ` \t\n'"\\$\`;|&<>(){}[]*?!#~%=,.-_/aZ09é✓`;
  for (let i = 0; i < count; i++) {
    const argv: string[] = [];
    for (let a = next() % 5; a >= 0; a--) {
      let word = '';
      for (let c = next() % 12; c > 0; c--) word += alphabet[next() % alphabet.length];
      argv.push(word);
    }
    yield argv;
  }
}

describe('shellQuote', () => {
  it('leaves plain words alone and quotes the rest', () => {
    expect(shellQuote('out/f_0001.png')).toBe('out/f_0001.png');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it('survives the shell byte for byte, for random arguments', () => {
    for (const argv of randomArgs(42, 200)) expect(throughShell(argv)).toEqual(argv);
  });
});

describe('parseChecksums', () => {
  it('reads sha256sum output, escaped names included', async () => {
    const { parseChecksums } = await import('../../../src/hosts/checksums.js');
    const h = 'a'.repeat(64);
    expect(
      parseChecksums(`${h}  plain.txt\n\\${h}  back\\\\slash\\nnewline\nsha256sum: missing: No such file\n`),
    ).toEqual([
      ['plain.txt', h],
      ['back\\slash\nnewline', h],
    ]);
  });
});

describe('parseCksums', () => {
  it('reads cksum output in the order asked, skipping files that were not there', async () => {
    const { parseCksums } = await import('../../../src/hosts/checksums.js');
    const out = '123 45 a.txt\n678 9 odd\nname 2\n4294967295 0 empty\n';
    expect(parseCksums(out, ['a.txt', 'gone', 'odd\nname 2', 'empty'])).toEqual([
      ['a.txt', '123 45'],
      ['odd\nname 2', '678 9'],
      ['empty', '4294967295 0'],
    ]);
  });
});
