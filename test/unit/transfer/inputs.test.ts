import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalSession } from '../../../src/hosts/localSession.js';
import { LocalHashes, syncInputs } from '../../../src/transfer/inputs.js';

/** A host whose file writes come out wrong: one byte flipped, as a bad transfer would leave it. */
class CorruptingSession extends LocalSession {
  override async putFile(localPath: string, path: string, mode: number): Promise<void> {
    await super.putFile(localPath, path, mode);
    const target = join(this.root, path);
    const data = readFileSync(target);
    data[data.length >> 1] = data[data.length >> 1]! ^ 0xff;
    writeFileSync(target, data);
  }
  root = '';
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'distray-inputs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('syncInputs', () => {
  it('sends what is missing, checks it, and sends nothing the second time', async () => {
    writeFileSync(join(dir, 'scene.bin'), randomBytes(300_000));
    const host = new LocalSession('h', join(dir, 'host'), {}, 1, 0);
    const copies = [{ local: join(dir, 'scene.bin'), remote: 'in/scene.bin' }];
    const first = await syncInputs(host, copies, new LocalHashes());
    expect(first).toMatchObject({ files: 1, sent: 1, unchanged: 0 });
    expect(readFileSync(join(dir, 'host', 'in', 'scene.bin')).equals(readFileSync(join(dir, 'scene.bin')))).toBe(true);
    expect(await syncInputs(host, copies, new LocalHashes())).toMatchObject({ files: 1, sent: 0, unchanged: 1 });
  });

  it('refuses a copy that arrived different from the local file', async () => {
    writeFileSync(join(dir, 'scene.bin'), randomBytes(300_000));
    const host = new CorruptingSession('h', join(dir, 'host'), {}, 1, 0);
    host.root = join(dir, 'host');
    mkdirSync(host.root);
    await expect(syncInputs(host, [{ local: join(dir, 'scene.bin'), remote: 'scene.bin' }], new LocalHashes())).rejects.toThrow(
      /h:scene\.bin differs from .*scene\.bin after sending it \(cksum \d+ 300000, expected \d+ 300000\)/,
    );
  });
});
