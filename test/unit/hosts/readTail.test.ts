import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalSession } from '../../../src/hosts/localSession.js';
import { MAX_WHOLE_READ } from '../../../src/hosts/session.js';

// What distray reads of a file a host wrote is bounded: the tail of a log, or a small file whole
// (the SSH session does the same over SFTP: test/integration/bounds.test.ts).

let dir: string;
let session: LocalSession;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'distray-read-tail-'));
  mkdirSync(join(dir, 'work'));
  session = await LocalSession.open('local', join(dir, 'work'), {}, 1, 0);
});
afterAll(async () => {
  await session.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('reading what a host wrote', () => {
  it('readTail gives the last bytes and the whole size, or all of a smaller file', async () => {
    writeFileSync(join(dir, 'work', 'log'), '0123456789');
    expect(await session.readTail('log', 4)).toEqual({ data: Buffer.from('6789'), size: 10 });
    expect(await session.readTail('log', 100)).toEqual({ data: Buffer.from('0123456789'), size: 10 });
  });

  it('readFile refuses a file over MAX_WHOLE_READ, naming it and the host, instead of reading it whole', async () => {
    writeFileSync(join(dir, 'work', 'huge'), '');
    truncateSync(join(dir, 'work', 'huge'), 5 * 1024 ** 3);
    await expect(session.readFile('huge')).rejects.toThrow(
      `huge on local is ${5 * 1024 ** 3} bytes, more than distray reads whole (${MAX_WHOLE_READ})`,
    );
    writeFileSync(join(dir, 'work', 'small'), 'ok\n');
    expect((await session.readFile('small')).toString()).toBe('ok\n');
  });
});
