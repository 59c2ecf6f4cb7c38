import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

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

const { fileErrorReason, tempNameBeside, writeFileAtomically } = await import('../../../src/fsutil/atomicWrite.js');

const dir = mkdtempSync(join(tmpdir(), 'distray-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => delete nextRandom.hex);

let n = 0;
function fresh(): string {
  const d = join(dir, `case${++n}`);
  mkdirSync(d);
  return d;
}

/** What a write left beside its file: nothing, if it cleaned up. */
function partials(d: string): string[] {
  return readdirSync(d).filter((f) => f.includes('.distray-'));
}

describe('writeFileAtomically', () => {
  it('writes a string, a buffer or pieces of both, replacing what was there, and leaves no temporary file', async () => {
    const d = fresh();
    const path = join(d, 'r.json');
    writeFileSync(path, 'old');
    await writeFileAtomically(path, 'one');
    expect(readFileSync(path, 'utf8')).toBe('one');
    await writeFileAtomically(path, Buffer.from('two'));
    expect(readFileSync(path, 'utf8')).toBe('two');
    await writeFileAtomically(path, ['th', Buffer.from('re'), 'e']);
    expect(readFileSync(path, 'utf8')).toBe('three');
    await writeFileAtomically(join(d, 'new', 'dir', 'x.txt'), 'made');
    expect(readFileSync(join(d, 'new', 'dir', 'x.txt'), 'utf8')).toBe('made');
    expect(partials(d)).toEqual([]);
  });

  it('names each temporary file afresh, hidden beside its file', () => {
    const a = tempNameBeside('/x/y/r.json');
    expect(a).toMatch(/^\/x\/y\/\.r\.json\.distray-[0-9a-f]{16}\.part$/);
    expect(tempNameBeside('/x/y/r.json')).not.toBe(a);
    expect(tempNameBeside('r.json')).toMatch(/^\.r\.json\.distray-[0-9a-f]{16}\.part$/);
  });

  it('gives the file the permission bits asked for, and can flush it to disk', async () => {
    const d = fresh();
    const path = join(d, 'known_hosts');
    const umask = process.umask();
    await writeFileAtomically(path, 'k\n', { mode: 0o600, fsync: true });
    expect(statSync(path).mode & 0o777).toBe(0o600 & ~umask);
  });

  it('never follows a symbolic link planted at its temporary name: it fails, and the link and its target stay as they were', async () => {
    const d = fresh();
    const victim = join(d, 'victim.txt');
    writeFileSync(victim, 'keep me\n');
    nextRandom.hex = '0123456789abcdef';
    const planted = join(d, '.r.json.distray-0123456789abcdef.part');
    symlinkSync(victim, planted);
    await expect(writeFileAtomically(join(d, 'r.json'), 'report')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(victim, 'utf8')).toBe('keep me\n');
    expect(lstatSync(planted).isSymbolicLink()).toBe(true);
    expect(readdirSync(d).sort()).toEqual(['.r.json.distray-0123456789abcdef.part', 'victim.txt']);
  });

  it('does not block on a FIFO at its temporary name, nor at the file it replaces', async () => {
    const d = fresh();
    nextRandom.hex = 'fedcba9876543210';
    execFileSync('mkfifo', [join(d, '.r.json.distray-fedcba9876543210.part')]);
    // Opening a FIFO for writing would wait for a reader for ever; creating one exclusively fails at once.
    await expect(writeFileAtomically(join(d, 'r.json'), 'report')).rejects.toMatchObject({ code: 'EEXIST' });
    delete nextRandom.hex;
    execFileSync('mkfifo', [join(d, 'p.json')]);
    await writeFileAtomically(join(d, 'p.json'), 'report');
    expect(statSync(join(d, 'p.json')).isFile()).toBe(true);
    expect(readFileSync(join(d, 'p.json'), 'utf8')).toBe('report');
  });

  it('removes its temporary file when the rename fails', async () => {
    const d = fresh();
    mkdirSync(join(d, 'r.json'));
    writeFileSync(join(d, 'r.json', 'inside'), 'x');
    await expect(writeFileAtomically(join(d, 'r.json'), 'report')).rejects.toThrow();
    expect(partials(d)).toEqual([]);
  });

  it('lets writers of one file race: each writes whole, the last rename wins', async () => {
    const d = fresh();
    const path = join(d, 'r.json');
    const texts = Array.from({ length: 8 }, (_, i) => `${i}`.repeat(100_000));
    await Promise.all(texts.map((t) => writeFileAtomically(path, [t.slice(0, 50_000), t.slice(50_000)])));
    expect(texts).toContain(readFileSync(path, 'utf8'));
    expect(partials(d)).toEqual([]);
  });
});

describe('fileErrorReason', () => {
  it('says why in words, with the code', () => {
    expect(fileErrorReason(Object.assign(new Error('EACCES: permission denied, open x'), { code: 'EACCES' }))).toBe(
      'permission denied (EACCES)',
    );
    expect(fileErrorReason(Object.assign(new Error('EROFS: x'), { code: 'EROFS' }))).toBe(
      'read-only file system (EROFS)',
    );
    expect(fileErrorReason(new Error('something else'))).toBe('something else');
  });
});
