import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalSession } from '../../../src/hosts/localSession.js';
import { LocalHashes, syncInputs } from '../../../src/transfer/inputs.js';

/** A host whose file writes come out wrong: one byte flipped, as a bad transfer would leave it. */
class CorruptingSession extends LocalSession {
  override async putFile(localPath: string, path: string, options: { mode: number }): Promise<void> {
    await super.putFile(localPath, path, options);
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
    await expect(
      syncInputs(host, [{ local: join(dir, 'scene.bin'), remote: 'scene.bin' }], new LocalHashes()),
    ).rejects.toThrow(
      /h:scene\.bin differs from .*scene\.bin after sending it \(cksum \d+ 300000, expected \d+ 300000\)/,
    );
  });

  it('sends a directory new to the host as one archive: every file, mode and empty directory, nothing left over', async () => {
    const src = join(dir, 'tex');
    mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
    mkdirSync(join(src, 'empty'));
    const long = `${'n'.repeat(120)}.dat`;
    const names = [
      ...Array.from({ length: 17 }, (_, i) => `t${i}.dat`),
      'with space.dat',
      `sub/${long}`,
      'sub/deeper/run.sh',
    ];
    for (const n of names) writeFileSync(join(src, n), randomBytes(100 + names.indexOf(n)));
    chmodSync(join(src, 'sub/deeper/run.sh'), 0o755);
    symlinkSync('/etc/hostname', join(src, 'link'));
    const host = new LocalSession('h', join(dir, 'host'), {}, 1, 0);
    mkdirSync(join(dir, 'host'));
    const copies = [{ local: src, remote: 'assets/tex' }];
    const hashes = new LocalHashes();
    expect(await syncInputs(host, copies, hashes)).toMatchObject({ files: 20, sent: 20 });
    await hashes.dispose();
    const got = join(dir, 'host', 'assets', 'tex');
    for (const n of names) expect(readFileSync(join(got, n)).equals(readFileSync(join(src, n))), n).toBe(true);
    expect(statSync(join(got, 'sub/deeper/run.sh')).mode & 0o777).toBe(0o755);
    expect(statSync(join(got, 'empty')).isDirectory()).toBe(true);
    // As file by file: a symbolic link is not sent.
    expect(existsSync(join(got, 'link'))).toBe(false);
    expect(readdirSync(join(dir, 'host', 'assets'))).toEqual(['tex']);
    expect(readdirSync(join(dir, 'host')).sort()).toEqual(['.distray', 'assets']);
    // The directory is there now: a second run sends nothing.
    expect(await syncInputs(host, copies, new LocalHashes())).toMatchObject({ files: 20, sent: 0, unchanged: 20 });
    await host.close();
  });

  it('leaves nothing in place when the archive arrives damaged', async () => {
    const src = join(dir, 'tex');
    mkdirSync(src);
    for (let i = 0; i < 20; i++) writeFileSync(join(src, `t${i}.dat`), randomBytes(5000));
    const host = new CorruptingSession('h', join(dir, 'host'), {}, 1, 0);
    host.root = join(dir, 'host');
    mkdirSync(host.root);
    const hashes = new LocalHashes();
    await expect(syncInputs(host, [{ local: src, remote: 'tex' }], hashes)).rejects.toThrow(
      /h:tex\/t\d+\.dat differs|cannot unpack/,
    );
    await hashes.dispose();
    expect(readdirSync(host.root).filter((n) => n !== '.distray')).toEqual([]);
    await host.close();
  });

  it('packs a new directory even when its files are all in subdirectories', async () => {
    const src = join(dir, 'nested');
    mkdirSync(join(src, 'a'), { recursive: true });
    for (let i = 0; i < 16; i++) writeFileSync(join(src, 'a', `t${i}.dat`), randomBytes(100));
    const unpacks: string[] = [];
    const host = new (class extends LocalSession {
      override command(argv: readonly string[]): Promise<{ code: number; output: string }> {
        if (argv[3] === 'distray-unpack') unpacks.push(argv[4]!);
        return super.command(argv);
      }
    })('h', join(dir, 'host'), {}, 1, 0);
    mkdirSync(join(dir, 'host'));
    const hashes = new LocalHashes();
    expect(await syncInputs(host, [{ local: src, remote: 'nested' }], hashes)).toMatchObject({ files: 16, sent: 16 });
    await hashes.dispose();
    expect(unpacks).toHaveLength(1);
    expect(
      readFileSync(join(dir, 'host', 'nested', 'a', 't3.dat')).equals(readFileSync(join(src, 'a', 't3.dat'))),
    ).toBe(true);
    await host.close();
  });
});
