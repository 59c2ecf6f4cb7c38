import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

/**
 * Command lines that must be refused before anything runs: exit 2 and one
 * line that says what is wrong, never "internal error" and a stack trace.
 * A `local: true` host is enough: a refused run never creates its workdir.
 */
let cwd: string;
let inv: string;

beforeAll(() => {
  cwd = mkdtempSync(join(tmpdir(), 'distray-usage-'));
  inv = join(cwd, 'hosts.yaml');
  writeFileSync(inv, 'hosts:\n  - local: true\n    workdir: work\n');
  writeFileSync(join(cwd, 'x'), 'input\n');
});

afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
});

async function expectUsageError(args: string[], message: RegExp): Promise<void> {
  const r = await runCli(['run', inv, ...args], { cwd });
  const what = `${args.join(' ')}: ${r.stderr}`;
  expect(r.code, what).toBe(2);
  expect(r.stderr, what).toMatch(/^distray: [^\n]*\n$/);
  expect(r.stderr, what).toMatch(message);
  expect(r.stderr, what).not.toMatch(/internal error|\n\s+at /);
  expect(existsSync(join(cwd, 'work')), what).toBe(false);
}

describe('malformed command lines', () => {
  it.each([
    [['1', 'true', '--timeout', '1s', '--timeout', '2s'], /--timeout is given twice/],
    [['1', 'true', '--dry-run=yes'], /--dry-run takes no value/],
    [['1', 'true', '--in'], /--in needs a value/],
    [['1', 'true', '--retries', 'abc'], /--retries/],
    [['1', 'true', '--retries', '1.5'], /--retries/],
    [['1', 'true', '--tiles', '0x3', '--size', '10x10'], /--tiles "0x3"/],
    [['1', 'true', '--tiles', '1x1', '--size', '0x0'], /--size "0x0"/],
    [['', 'true'], /frames ""/],
    [['1', 'true', '--timeout', '597h'], /--timeout "597h" is too long/],
    [['1', 'true', '--grace', '1000h'], /--grace "1000h" is too long/],
    [['1', 'true', '--in', 'x=.'], /--in "x=\.": its DEST, the path on the host, "\." ends in "\."/],
    [['1', 'true', '--in', 'x=sub/'], /such as --in x=sub\/x$/m],
    [['1', 'true', '--out', 'o%d=.'], /--out "o%d=\.": its DEST, the local path/],
    [['1', 'true', '--out', '.=o%d'], /its SRC, the path on the host/],
    [['1', 'true', '--report', 'reports/'], /--report "reports\/" ends in "\/"/],
    [['1', 'true', '--report', '.'], /--report "\."/],
    [['1', 'true', '--retries', '99999999999999999999'], /--retries must be a whole number/],
    [['1', 'true', '--log-dir', 'x'], /--log-dir "x" is a file/],
    [['1', 'true', '--log-dir', ''], /--log-dir is empty/],
    [['1', 'true', '--log-dir', 'x/logs'], /--log-dir "x\/logs": x is a file, so nothing can be written under it/],
    [['1', 'true', '--report', 'x/r.json'], /--report "x\/r\.json": x is a file/],
    [['1', 'true', '--out', 'o%d=x/sub/o%d'], /--out "x\/sub\/o1": x is a file/],
    [['1', 'true', '--out', 'o=x/o.%{host}'], /--out "x\/o\.local": x is a file/],
    // Sizes that took minutes and gigabytes, or crashed out of memory, before being refused.
    [
      ['1', 'true', '--tiles', '200x200', '--size', '1000x1000'],
      /--tiles "200x200" makes 40000 tiles per frame; at most 10000/,
    ],
    [['1', 'true', '--tiles', '99999x99999', '--size', '99999x99999'], /at most 10000/],
    [
      ['0,99999', 'true', '--tiles', '100x100', '--size', '1000x1000'],
      /100000 frames of 10000 tiles make 1000000000 tasks; at most 1000000/,
    ],
    [['0,99999999999', 'true'], /at most 1000000 are allowed/],
    [
      ['1', 'true', '--tiles', '1x1', '--size', '99999999999999999999x1'],
      /--size "99999999999999999999x1": at most 1000000 pixels a side/,
    ],
    [
      [
        '1',
        'true',
        '--tiles',
        '2x2',
        '--size',
        '20000x20000',
        '--stitch',
        'f.png',
        '--out',
        't%{tile}.png=t/%{tile}.png',
      ],
      /too large to --stitch/,
    ],
  ])('refuses %j with exit 2 and one line', async (args, message) => {
    await expectUsageError(args, message);
  });

  it.each([
    [[], /expected distray check <inventory>/],
    [['INV', 'extra'], /expected distray check <inventory>/],
    [['INV', '--exec'], /--exec needs a value/],
    [['INV', '--exec', '--json'], /--exec needs a value/],
    [['INV', '--ssh-config'], /--ssh-config needs a value/],
    [['INV', '--bogus'], /unknown option "--bogus" of distray check/],
    [['INV', '--jsn'], /unknown option "--jsn" of distray check; did you mean --json\?/],
    [['INV', '--exec', 'a', '--exec', 'b'], /--exec is given twice/],
  ])('refuses check %j with exit 2 and one line', async (args, message) => {
    const r = await runCli(['check', ...args.map((a) => (a === 'INV' ? inv : a))], { cwd });
    const what = `${args.join(' ')}: ${r.stderr}`;
    expect(r.code, what).toBe(2);
    expect(r.stderr, what).toMatch(/^distray: [^\n]*\n$/);
    expect(r.stderr, what).toMatch(message);
    expect(r.stdout, what).toBe('');
  });

  it.each([
    [['1,9', '--dryrun', 'true'], /unknown option "--dryrun" of distray run; did you mean --dry-run\?/],
    [['--retires', '0', '1', 'true'], /did you mean --retries\?/],
    [['1', '-n', 'true'], /unknown option "-n" of distray run/],
    [['1', 'true', '--report', '--force'], /--report needs a value, and "--force" is an option of distray/],
  ])('refuses run %j before <exec> with exit 2 and one line', async (args, message) => {
    await expectUsageError(args, message);
  });

  it.each([
    [['INV', '--dryrun'], /unknown option "--dryrun" of distray clean; did you mean --dry-run\?/],
    [['--dry', 'INV'], /did you mean --dry-run\?/],
    [['INV', '-n'], /unknown option "-n" of distray clean/],
    [['INV', '--dry-run=no'], /--dry-run takes no value/],
    [['INV', '--ssh-config'], /--ssh-config needs a value/],
    [['INV', 'INV'], /expected distray clean <inventory>/],
  ])('refuses clean %j with exit 2 and one line, removing nothing', async (args, message) => {
    // A workdir with what clean removes: its .distray directory and a half-finished upload.
    mkdirSync(join(cwd, 'work', '.distray'), { recursive: true });
    writeFileSync(join(cwd, 'work', '.x.distray-1.part'), 'half');
    try {
      const r = await runCli(['clean', ...args.map((a) => (a === 'INV' ? inv : a))], { cwd });
      const what = `${args.join(' ')}: ${r.stderr}`;
      expect(r.code, what).toBe(2);
      expect(r.stderr, what).toMatch(/^distray: [^\n]*\n$/);
      expect(r.stderr, what).toMatch(message);
      expect(r.stdout, what).toBe('');
      expect(existsSync(join(cwd, 'work', '.distray')), what).toBe(true);
      expect(existsSync(join(cwd, 'work', '.x.distray-1.part')), what).toBe(true);
    } finally {
      rmSync(join(cwd, 'work'), { recursive: true, force: true });
    }
  });

  it('writes the asked-for report when the rest of the line is fine but an option is malformed', async () => {
    const r = await runCli(['run', inv, '1', 'true', '--report', 'r.json', '--timeout', 'x'], { cwd });
    expect(r.code).toBe(2);
    expect(existsSync(join(cwd, 'r.json'))).toBe(true);
  });
});
