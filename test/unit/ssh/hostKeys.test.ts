import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '../../../src/inventory/types.js';
import { HostKeyChecker } from '../../../src/ssh/hostKeys.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-hostkeys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An ssh-ed25519 public key blob, as a server offers it. */
function ed25519Blob(): Buffer {
  const der = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

const endpoint = (knownHosts: string): Endpoint => ({
  host: '127.0.0.1',
  port: 22301,
  user: 'u',
  identityFiles: [],
  identityFilesRequired: false,
  identitiesOnly: false,
  knownHosts,
  hostKeyPolicy: 'strict',
});

describe('HostKeyChecker', () => {
  it('says that a missing known hosts file does not exist, rather than that the key is unknown', () => {
    const missing = join(dir, 'no-such-known_hosts');
    const d = new HostKeyChecker().decide(endpoint(missing), ed25519Blob());
    expect(d.accept).toBe(false);
    if (d.accept) return;
    expect(d.state).toBe('host key unknown');
    expect(d.message).toContain(`${missing} does not exist`);
    expect(d.message).toMatch(/Fix knownHosts:/);
  });

  it('says the key is not in a file that exists', () => {
    const file = join(dir, 'known_hosts');
    writeFileSync(file, '');
    const d = new HostKeyChecker().decide(endpoint(file), ed25519Blob());
    expect(d.accept).toBe(false);
    if (d.accept) return;
    expect(d.message).toMatch(/which is not in .*known_hosts/);
    expect(d.message).not.toMatch(/does not exist/);
  });
});
