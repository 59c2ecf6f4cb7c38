import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../../src/inventory/types.js';
import { addKnownHost, HostKeyChecker, KnownHostsCache, withFileLock } from '../../../src/ssh/hostKeys.js';
import { WAIT_MS, within } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-hostkeys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const fresh = (): string => join(dir, `known_hosts-${files++}`);

/** An ssh-ed25519 public key blob, as a server offers it. */
function ed25519Blob(): Buffer {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

const endpoint = (knownHosts: string, hostKeyPolicy: Endpoint['hostKeyPolicy'] = 'strict'): Endpoint => ({
  host: '127.0.0.1',
  port: 22301,
  user: 'u',
  identityFiles: [],
  identityFilesRequired: false,
  identitiesOnly: false,
  knownHosts,
  hostKeyPolicy,
});
const NAME = '[127.0.0.1]:22301';
const line = (key: Buffer): string => `${NAME} ssh-ed25519 ${key.toString('base64')}`;

describe('HostKeyChecker', () => {
  it('says that a missing known hosts file does not exist, rather than that the key is unknown', async () => {
    const missing = join(dir, 'no-such-known_hosts');
    const d = await new HostKeyChecker().decide(endpoint(missing), ed25519Blob());
    expect(d.accept).toBe(false);
    if (d.accept) return;
    expect(d.state).toBe('host key unknown');
    expect(d.message).toContain(`${missing} does not exist`);
    expect(d.message).toMatch(/Fix knownHosts:/);
  });

  it('says the key is not in a file that exists', async () => {
    const file = fresh();
    writeFileSync(file, '');
    const d = await new HostKeyChecker().decide(endpoint(file), ed25519Blob());
    expect(d.accept).toBe(false);
    if (d.accept) return;
    expect(d.message).toMatch(/which is not in .*known_hosts/);
    expect(d.message).not.toMatch(/does not exist/);
  });

  it('parses a file once for many handshakes, and again only when it changed', async () => {
    const file = fresh();
    const known = ed25519Blob();
    const later = ed25519Blob();
    writeFileSync(file, `${line(known)}\n`);
    const checker = new HostKeyChecker();
    const ep = endpoint(file);
    const decisions = await Promise.all([1, 2, 3, 4].map(() => checker.decide(ep, known)));
    expect(decisions.every((d) => d.accept)).toBe(true);
    expect(await checker.preferredTypes(ep)).toEqual(['ssh-ed25519']);
    expect(checker.cache.reads).toBe(1);

    // ssh (or another run) appends a key: the next handshake sees it.
    appendFileSync(file, `${line(later)}\n`);
    expect((await checker.decide(ep, later)).accept).toBe(true);
    expect(checker.cache.reads).toBe(2);
    writeFileSync(file, `${line(later)}\n`);
    expect((await checker.decide(ep, later)).accept).toBe(true);
    const changed = await checker.decide(ep, known);
    expect(changed.accept).toBe(false);
    if (!changed.accept) expect(changed.state).toBe('host key mismatch');
    expect(checker.cache.reads).toBe(3);

    // Removed: said as such, and a new file is read afresh.
    rmSync(file);
    const gone = await checker.decide(ep, later);
    if (!gone.accept) expect(gone.message).toContain('does not exist');
    writeFileSync(file, `${line(known)}\n`);
    expect((await checker.decide(ep, known)).accept).toBe(true);
  });

  it('accept-new adds an unknown key once, with a warning, and keeps the file mode', async () => {
    const file = fresh();
    writeFileSync(file, '# mine', { mode: 0o600 });
    const key = ed25519Blob();
    const checker = new HostKeyChecker();
    const first = await checker.decide(endpoint(file, 'accept-new'), key);
    expect(first).toEqual({
      accept: true,
      warning: expect.stringMatching(/^added \[127\.0\.0\.1\]:22301 \(ssh-ed25519 SHA256:.*\) to /) as unknown,
    });
    expect(await checker.decide(endpoint(file, 'accept-new'), key)).toEqual({ accept: true });
    expect(readFileSync(file, 'utf8')).toBe(`# mine\n${line(key)}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe("accept-new's lock", () => {
  it('lets two adders in one process (separate runs, separate caches) add a key exactly once', async () => {
    const file = fresh();
    writeFileSync(file, '');
    const key = ed25519Blob();
    const added = await Promise.all([1, 2, 3, 4].map(() => addKnownHost(file, NAME, key, new KnownHostsCache())));
    expect(added.filter(Boolean)).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe(`${line(key)}\n`);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it('waits for a lock another process holds without blocking the event loop', async () => {
    const file = fresh();
    writeFileSync(file, '');
    writeFileSync(`${file}.lock`, '');
    const key = ed25519Blob();
    let settled = false;
    const adding = addKnownHost(file, NAME, key).finally(() => (settled = true));
    // Timers still fire while it waits: with a synchronous wait none would before the lock was gone.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe('');
    rmSync(`${file}.lock`);
    expect(await adding).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(`${line(key)}\n`);
  });

  it('is released when the work under it fails', async () => {
    const file = fresh();
    await expect(withFileLock(file, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(existsSync(`${file}.lock`)).toBe(false);
    expect(await withFileLock(file, () => Promise.resolve(7))).toBe(7);
  });

  it('lets several processes at once add a key exactly once', async () => {
    const file = fresh();
    writeFileSync(file, '# shared\n');
    const key = ed25519Blob();
    // Held until every process is about to try, so that they all contend for it.
    writeFileSync(`${file}.lock`, '');
    const children = [1, 2, 3, 4].map(() => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(import.meta.dirname, '../../helpers/addKnownHost.ts'),
          file,
          NAME,
          key.toString('base64'),
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const ready = new Promise<void>((resolve) => child.stdout.on('data', () => out.includes('ready') && resolve()));
      const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
        child.on('close', (code) => resolve({ code, out, err })),
      );
      return { ready: Promise.race([ready, exited.then(() => undefined)]), exited };
    });
    await within(Promise.all(children.map((c) => c.ready)), WAIT_MS, 'every writer to be ready behind the lock');
    rmSync(`${file}.lock`);
    const results = await within(Promise.all(children.map((c) => c.exited)), WAIT_MS, 'every writer to exit');
    for (const r of results) expect(r.code, r.err).toBe(0);
    expect(results.filter((r) => r.out.includes('added'))).toHaveLength(1);
    expect(results.filter((r) => r.out.includes('known'))).toHaveLength(3);
    expect(readFileSync(file, 'utf8')).toBe(`# shared\n${line(key)}\n`);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
});
