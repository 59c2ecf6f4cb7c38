import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expandHome, loadInventory } from '../../../src/inventory/load.js';
import type { Endpoint } from '../../../src/inventory/types.js';

const dir = mkdtempSync(join(tmpdir(), 'distray-sshcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'conf.d'));
const config = join(dir, 'config');
writeFileSync(
  config,
  `Host farm-* !farm-special
  User render
  IdentityFile ~/.ssh/farm_key
  IdentitiesOnly yes

Include ${dir}/conf.d/*.conf

Host farm-special
  HostName 10.9.9.9
  Port 2222

Match host 10.3.*
  User matched
  IdentityFile ~/.ssh/matched_key

Host *
  User fallback
  Port 2200
`,
);
writeFileSync(
  join(dir, 'conf.d', '10-farm.conf'),
  `Host farm-1
  HostName 10.1.0.1
  ProxyJump ops@bastion:2201,jump2
Host farm-?
  HostName 10.2.0.%h
Host lab
  HostName 10.3.0.7
`,
);
writeFileSync(join(dir, 'conf.d', 'ignored.txt'), 'Host farm-1\n  User nobody\n');

/** What OpenSSH itself makes of the config for a host. */
function sshG(host: string): Record<string, string[]> {
  const out = execFileSync('ssh', ['-G', '-F', config, host], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const values: Record<string, string[]> = {};
  for (const line of out.split('\n')) {
    const [key, ...rest] = line.split(' ');
    if (key) (values[key] ??= []).push(rest.join(' '));
  }
  return values;
}

function chain(ep: Endpoint | undefined): string | undefined {
  const hops: string[] = [];
  for (let j = ep; j; j = j.jump) hops.unshift(`${j.user}@${j.host}:${j.port}`);
  return hops.length ? hops.join(',') : undefined;
}

describe('ssh_config resolution matches ssh -G', () => {
  const names = ['farm-1', 'farm-2', 'farm-special', 'lab', 'other'];
  const inv = join(dir, 'hosts.yaml');
  writeFileSync(inv, `hosts:\n${names.map((n) => `  - ${n}`).join('\n')}\n`);
  const hosts = loadInventory(inv, { sshConfigPath: config });

  it.each(names)('%s', (name) => {
    const g = sshG(name);
    const h = hosts.find((x) => x.name === name)!;
    expect(h.host).toBe(g.hostname![0]);
    expect(h.user).toBe(g.user![0]);
    expect(String(h.port)).toBe(g.port![0]);
    expect(h.identitiesOnly).toBe(g.identitiesonly![0] === 'yes');
    const usable = g.identityfile!.map(expandHome).filter((f) => !/_sk$|_xmss$|_dsa$/.test(f));
    expect(h.identityFiles).toEqual(usable);
    const jump = g.proxyjump?.[0];
    if (jump) {
      // ssh -G prints the chain as written; each hop then gets its own config (port 2200 from Host *).
      const hops = jump.split(',').map((hop) => {
        const hg = sshG(hop.replace(/^.*@/, '').replace(/:\d+$/, ''));
        const user = hop.includes('@') ? hop.split('@')[0] : hg.user![0];
        const port = /:(\d+)$/.exec(hop)?.[1] ?? hg.port![0];
        return `${user}@${hg.hostname![0]}:${port}`;
      });
      expect(chain(h.jump)).toBe(hops.join(','));
    } else {
      expect(h.jump).toBeUndefined();
    }
  });

  it('lets inventory fields win over the config', () => {
    const inv2 = join(dir, 'hosts2.yaml');
    writeFileSync(inv2, 'hosts:\n  - host: farm-2\n    user: me\n    port: 22\n    identityFile: ' + config + '\n');
    const [h] = loadInventory(inv2, { sshConfigPath: config });
    expect(h).toMatchObject({ host: '10.2.0.farm-2', user: 'me', port: 22, identityFiles: [config] });
  });
});
