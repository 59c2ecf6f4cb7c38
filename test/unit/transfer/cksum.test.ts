import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cksum, cksumFile } from '../../../src/transfer/cksum.js';

describe('cksum', () => {
  it('gives what POSIX cksum prints, for sizes around every step of the table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distray-cksum-'));
    try {
      for (const size of [0, 1, 7, 8, 9, 255, 256, 257, 65536, 1_000_003]) {
        const file = join(dir, `f${size}`);
        writeFileSync(file, randomBytes(size));
        const theirs = execFileSync('cksum', [file], { encoding: 'utf8' }).split(' ').slice(0, 2).join(' ');
        expect(await cksumFile(file), `size ${size}`).toBe(theirs);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is the same however the bytes are split', () => {
    const data = randomBytes(10_000);
    const whole = new Cksum().update(data).digest();
    const parts = new Cksum();
    for (let i = 0; i < data.length; i += 333) parts.update(data.subarray(i, i + 333));
    expect(parts.digest()).toBe(whole);
  });
});
