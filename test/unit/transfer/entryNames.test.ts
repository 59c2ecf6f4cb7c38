import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TransferError } from '../../../src/errors.js';
import { LocalSession } from '../../../src/hosts/localSession.js';
import type { RemoteStat } from '../../../src/hosts/session.js';
import { download } from '../../../src/transfer/copies.js';
import { entryNameProblem, placeProblem, visibleName } from '../../../src/transfer/entryNames.js';

/** The temporary names are random; a test that plants something at one makes the next one known. */
const nextRandom: { hex?: string } = {};
vi.mock('node:crypto', async (original) => {
  const crypto = await original<typeof import('node:crypto')>();
  return {
    ...crypto,
    randomBytes: (n: number) =>
      nextRandom.hex !== undefined ? Buffer.from(nextRandom.hex, 'hex') : crypto.randomBytes(n),
  };
});
afterEach(() => delete nextRandom.hex);

describe('entryNameProblem', () => {
  it.each([
    ['frame-0001.png', undefined],
    ['.hidden', undefined],
    ['...', undefined],
    ['a b', undefined],
    ['back\\slash', undefined],
    ['été 東京', undefined],
    ['', /empty/],
    ['.', /directory itself or its parent/],
    ['..', /directory itself or its parent/],
    ['../../x', /"\/"/],
    ['sub/x', /"\/"/],
    ['/etc/passwd', /"\/"/],
    ['a\nb', /control character/],
    ['a\rb', /control character/],
    ['nul\0', /control character/],
    ['\x1b[31mred', /control character/],
    ['del\x7f', /control character/],
    ['c1\u009b31m', /control character/],
    ['line\u2028sep', /control character/],
    ['txt.exe\u202egnp', /control character/],
  ])('%j: %s', (name, expected) => {
    const problem = entryNameProblem(name);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  it('keeps apart the names no directory can hold from the ones a renderer may have made', () => {
    expect(placeProblem('a\nb')).toBeUndefined();
    expect(placeProblem('..')).toBeDefined();
  });
});

describe('visibleName', () => {
  it.each([
    ['plain.png', '"plain.png"'],
    ['a\nb', '"a\\nb"'],
    ['tab\there\r', '"tab\\there\\r"'],
    ['nul\0', '"nul\\x00"'],
    ['\x1b[31mred\x1b[0m', '"\\x1b[31mred\\x1b[0m"'],
    ['del\x7f c1\u009b', '"del\\x7f c1\\x9b"'],
    ['rtl\u202eevil', '"rtl\\u202eevil"'],
    ['quote" back\\', '"quote\\" back\\\\"'],
    ['été', '"été"'],
  ])('%j is shown as %s', (name, shown) => {
    expect(visibleName(name)).toBe(shown);
    // One line, nothing a terminal acts on.
    // eslint-disable-next-line no-control-regex -- looking for control characters
    expect(visibleName(name)).not.toMatch(/[\0-\x1f\x7f-\x9f]/u);
  });
});

/** A host whose listings of a directory give other names than the files have: as a hostile SFTP server may. */
class RenamingSession extends LocalSession {
  renames = new Map<string, string>();
  listTwice: string | undefined;

  override async readdir(p: string): Promise<Array<{ name: string } & RemoteStat>> {
    const entries = (await super.readdir(p)).map((e) => ({ ...e, name: this.renames.get(e.name) ?? e.name }));
    const twice = entries.find((e) => e.name === this.listTwice);
    return twice ? [...entries, twice] : entries;
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-names-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('download of a directory output', () => {
  /** A host with d0/ holding a.txt and evil.txt, and a file two levels above d0 that `../../x` would fetch. */
  function host(): RenamingSession {
    const wd = join(dir, 'host', 'wd');
    mkdirSync(join(wd, 'd0'), { recursive: true });
    writeFileSync(join(wd, 'd0', 'a.txt'), 'a\n');
    writeFileSync(join(wd, 'd0', 'evil.txt'), 'evil\n');
    writeFileSync(join(dir, 'host', 'x'), 'from outside the output\n');
    return new RenamingSession('hostile', wd, {}, 1, 0);
  }

  const copy = (): { local: string; remote: string; dir: true } => ({
    local: join(dir, 'here', 'got', 'd0'),
    remote: 'd0',
    dir: true,
  });

  it('copies back a directory whose names are plain', async () => {
    const session = host();
    expect(await download(session, copy())).toBe(7);
    expect(readdirSync(join(dir, 'here', 'got', 'd0')).sort()).toEqual(['a.txt', 'evil.txt']);
  });

  it.each([
    ['../../x', /"\.\.\/\.\.\/x": a name with a "\/" in it/],
    ['sub/x', /"sub\/x": a name with a "\/" in it/],
    ['..', /"\.\.": a name for the directory itself or its parent/],
    ['', /"": an empty name/],
    [
      'a\nb',
      /"a\\nb": a name with a control character in it.*have the renderer name its files without control characters/,
    ],
    ['\x1b]0;title\x07', /"\\x1b]0;title\\x07": a name with a control character/],
  ])(
    'refuses an entry listed as %j: the attempt fails naming host and entry, and nothing of it is kept',
    async (name, message) => {
      const session = host();
      session.renames.set('evil.txt', name);
      const failed = download(session, copy());
      await expect(failed).rejects.toBeInstanceOf(TransferError);
      await expect(failed).rejects.toThrow(message);
      await expect(failed).rejects.toThrow(/^d0\/ on hostile lists an entry named /);
      await expect(failed).rejects.not.toThrow(/\n/);
      // Nothing written, inside the output or out of it: ../../x would have been here/x.
      expect(readdirSync(join(dir, 'here')).sort()).toEqual(['got']);
      expect(readdirSync(join(dir, 'here', 'got'))).toEqual([]);
    },
  );

  it('refuses a listing that names an entry twice', async () => {
    const session = host();
    session.listTwice = 'a.txt';
    await expect(download(session, copy())).rejects.toThrow(/^d0\/ on hostile lists an entry named "a\.txt" twice/);
    expect(readdirSync(join(dir, 'here', 'got'))).toEqual([]);
  });

  it.each(['a.txt', 'd0'])('never writes %s through a link planted at its local temporary name', async (name) => {
    const session = host();
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'keep me\n');
    mkdirSync(join(dir, 'here'));
    nextRandom.hex = '0123456789abcdef';
    const planted = join(dir, 'here', `.${name}.distray-0123456789abcdef.part`);
    symlinkSync(name === 'd0' ? dir : victim, planted);
    const target = name === 'd0' ? copy() : { local: join(dir, 'here', 'a.txt'), remote: 'd0/a.txt' };
    target.local = join(dir, 'here', name);
    await expect(download(session, target)).rejects.toThrow(/EEXIST/);
    expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
    expect(readdirSync(dir).sort()).toEqual(['here', 'host', 'victim.txt']);
    expect(existsSync(join(dir, 'here', name))).toBe(false);
    // What was planted is not distray's: left as it was.
    expect(lstatSync(planted).isSymbolicLink()).toBe(true);
  });
});
